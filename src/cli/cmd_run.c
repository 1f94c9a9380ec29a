/*
 * cmd_run.c - `numatp run`: generate text from a prompt. Only the generated
 * text goes to stdout, flushed token by token; logs and the closing speed
 * line go to stderr. Ctrl-C ends generation after the current token, with
 * the speed line, and exit status 130.
 */
#include "cli/cli.h"
#include "cli/infer.h"
#include "cli/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ run */

static void usage(FILE *f)
{
    fprintf(f, "usage: numatp run -m FILE -p PROMPT [options]\n\n"
               "Generate text from a prompt. The generated text goes to stdout as it is\n"
               "produced; logs and speeds go to stderr. Ctrl-C stops after the current\n"
               "token, prints the speeds and exits with status 130.\n\n"
               "options:\n"
               "  -p, --prompt TEXT       prompt (required)\n"
               "  -n, --n-predict N       tokens to generate at most, 0 .. 2147483647 (default "
               "128)\n"
               "  --no-bos                do not add the BOS token the model asks for\n");
    ntp_cli_infer_help(f, "0");
    ntp_cli_sampling_help(f);
    fprintf(f, "  -h, --help              this help\n");
}

struct run_args {
    const char *prompt;
    int64_t n_predict;
    bool no_bos, help;
    struct ntp_cli_sampling smp;
    struct ntp_cli_infer inf;
};

/* Length of the prefix of s[0, n) that ends on a whole UTF-8 character. */
static size_t utf8_complete(const char *s, size_t n)
{
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        const unsigned char c = (unsigned char)s[n - back];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation byte: look further back for the lead */
        const size_t need = c < 0x80         ? 1
                            : (c >> 5) == 6  ? 2
                            : (c >> 4) == 14 ? 3
                            : (c >> 3) == 30 ? 4
                                             : 1;
        return need > back ? n - back : n;
    }
    return n;
}

/*
 * Print a token's bytes, holding back the start of a UTF-8 character whose
 * remaining bytes come with the next token(s). pend/npend carry them over.
 * false after a write error on stdout.
 */
static bool emit_piece(const ntp_model *m, int32_t tok, char *pend, size_t *npend)
{
    char buf[512];
    size_t len = 0;
    memcpy(buf, pend, *npend);
    if (ntp_token_to_piece(m, tok, buf + *npend, sizeof buf - *npend, &len) != NTP_OK)
        len = 0; /* a piece longer than the buffer is not a real token; skip it */
    const size_t n = *npend + len, ok = utf8_complete(buf, n);
    fwrite(buf, 1, ok, stdout);
    *npend = n - ok;
    memcpy(pend, buf + ok, *npend);
    return ntp_cli_flush();
}

/* Tokenize the prompt into a malloc'd array. */
static int tokenize_prompt(const ntp_model *m, const char *text, bool add_bos, int32_t **out,
                           int32_t *n)
{
    const size_t len = strlen(text);
    ntp_status s = ntp_tokenize(m, text, len, add_bos, true, NULL, 0, n);
    if (s != NTP_OK && s != NTP_E_OVERFLOW) {
        fprintf(stderr, "numatp: tokenizing the prompt: %s\n", ntp_last_error());
        return 1;
    }
    *out = malloc(((size_t)*n + 1) * sizeof(int32_t));
    if (*out == NULL || ntp_tokenize(m, text, len, add_bos, true, *out, *n, n) != NTP_OK) {
        fprintf(stderr, "numatp: tokenizing the prompt: %s\n", ntp_last_error());
        return 1;
    }
    if (*n == 0) {
        fprintf(stderr, "numatp run: the prompt has no tokens\n");
        return 1;
    }
    return 0;
}

struct gen_stats {
    int32_t n_prompt, n_gen; /* tokens evaluated */
    int32_t n_printed;       /* tokens generated and printed */
    double t_prompt, t_gen;  /* seconds */
};

/* Prompt, then sample / print / decode until EOG, -n or a full context. */
static int generate(ntp_context *c, const ntp_model *m, struct ntp_sampler *smp,
                    const struct run_args *a, const int32_t *prompt, struct gen_stats *st)
{
    double t0 = ntp_cli_now();
    if (ntp_decode(c, prompt, st->n_prompt, false) != NTP_OK) {
        fprintf(stderr, "numatp run: %s\n", ntp_last_error());
        return 1;
    }
    st->t_prompt = ntp_cli_now() - t0;
    char pend[8];
    size_t npend = 0;
    t0 = ntp_cli_now();
    for (int64_t i = 0; i < a->n_predict; i++) {
        int32_t tok;
        bool stop;
        if (ntp_cli_sample(smp, ntp_get_logits(c, -1), &tok, &stop) != NTP_OK) {
            fprintf(stderr, "\nnumatp run: sampling: %s\n", ntp_last_error());
            return 1;
        }
        if (ntp_token_is_eog(m, tok))
            break;
        if (!emit_piece(m, tok, pend, &npend))
            return 1; /* main says why */
        st->n_printed++;
        if (i + 1 == a->n_predict || stop)
            break;
        if (ntp_context_pos(c) >= ntp_context_n_ctx(c)) {
            fprintf(stderr, "\nnumatp run: context full (%d positions), stopping\n",
                    ntp_context_n_ctx(c));
            break;
        }
        if (ntp_decode(c, &tok, 1, false) != NTP_OK) {
            fprintf(stderr, "\nnumatp run: %s\n", ntp_last_error());
            return 1;
        }
        st->n_gen++;
    }
    st->t_gen = ntp_cli_now() - t0;
    fwrite(pend, 1, npend, stdout); /* an incomplete character at the very end */
    printf("\n");
    return ntp_cli_flush() ? 0 : 1;
}

static int run_model(ntp_model *m, const struct run_args *a, ntp_context_params cp)
{
    const struct ntp_sampler_params sp = ntp_cli_sampling_params(&a->smp);
    int32_t *prompt = NULL;
    struct gen_stats st = {0};
    ntp_context *c = NULL;
    struct ntp_sampler *smp = NULL;
    int rc = tokenize_prompt(m, a->prompt, !a->no_bos, &prompt, &st.n_prompt);
    if (rc == 0 && ntp__sampler_new(&sp, ntp_model_n_vocab(m), &smp) != NTP_OK) {
        fprintf(stderr, "numatp run: %s\n", ntp_last_error());
        rc = 1;
    }
    if (rc == 0)
        rc = ntp_cli_infer_context("run", &a->inf, m, cp, &c);
    for (int32_t i = 0; rc == 0 && i < st.n_prompt; i++)
        ntp__sampler_accept(smp, prompt[i]);
    if (rc == 0) {
        fprintf(stderr, "numatp: prompt %d tokens, context %d, seed %u\n", st.n_prompt,
                ntp_context_n_ctx(c), ntp__sampler_seed(smp));
        ntp_cli_catch_sigint();
        rc = generate(c, m, smp, a, prompt, &st);
    }
    if (rc == 0 && ntp_cli_interrupted()) {
        fprintf(stderr, "numatp run: interrupted after %d tokens\n", st.n_printed);
        rc = NTP_CLI_EXIT_INTERRUPTED;
    }
    if (rc == 0 || rc == NTP_CLI_EXIT_INTERRUPTED)
        fprintf(stderr, "prompt eval: %.2f tok/s, generation: %.2f tok/s\n",
                st.t_prompt > 0 ? st.n_prompt / st.t_prompt : 0.0,
                st.t_gen > 0 ? st.n_gen / st.t_gen : 0.0);
    ntp__sampler_free(smp);
    ntp_context_free(c);
    free(prompt);
    return rc;
}

int ntp_cli_run(int argc, char **argv)
{
    struct run_args a = {.n_predict = 128, .smp = ntp_cli_sampling_default()};
    const struct ntp_cli_opt own[] = {
        {"--prompt", "-p", NTP_CLI_STR, .dst = &a.prompt},
        {"--n-predict", "-n", NTP_CLI_INT, .dst = &a.n_predict, .lo = 0, .hi = INT32_MAX},
        {"--no-bos", NULL, NTP_CLI_FLAG, .dst = &a.no_bos},
        {"--help", "-h", NTP_CLI_FLAG, .dst = &a.help},
        {NULL},
    };
    struct ntp_cli_opt smp[NTP_CLI_SAMPLING_N_OPTS + 1], inf[NTP_CLI_INFER_N_OPTS + 1];
    ntp_cli_sampling_opts(&a.smp, smp);
    ntp_cli_infer_opts(&a.inf, false, inf);
    int rc =
        ntp_cli_parse("run", argc, argv, (const struct ntp_cli_opt *const[]){own, smp, inf, NULL});
    if (rc != 0 || a.help)
        return rc != 0 ? rc : (usage(stdout), 0);
    if (a.prompt == NULL || a.prompt[0] == '\0') {
        fprintf(stderr, "numatp run: %s (see numatp run --help)\n",
                a.prompt ? "-p '': the prompt is empty" : "-p PROMPT is required");
        return 2;
    }
    ntp_model *m = NULL;
    ntp_context_params cp;
    if ((rc = ntp_cli_infer_load("run", &a.inf, &m, &cp)) != 0)
        return rc;
    rc = run_model(m, &a, cp);
    ntp_model_free(m);
    return rc;
}
