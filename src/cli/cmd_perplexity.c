/*
 * cmd_perplexity.c - `numatp perplexity`: perplexity of a text file computed
 * as llama.cpp's llama-perplexity does (tools/perplexity, perplexity()):
 * the whole file is tokenized with BOS, cut into n_chunk = n_tokens / n_ctx
 * chunks (at least two chunks' worth of tokens are required, as there), each
 * chunk is evaluated from an empty KV cache with its first token replaced by
 * BOS when the model adds one, and only the second half of each chunk is
 * scored: the logits at position first + i (first = n_ctx / 2) predict the
 * token at first + i + 1. Running sums of the negative log-likelihood and of
 * its square give the "+/-" estimate. Ctrl-C stops after the current chunk
 * with the estimate so far on stderr and exit status 130.
 */
#include "cli/cli.h"
#include "cli/infer.h"
#include "cli/io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: numatp perplexity -m FILE -f TEXT [options]\n\n"
            "Perplexity of a text file, computed as llama-perplexity does. Progress per\n"
            "chunk and the final estimate go to stdout. -c is the tokens per chunk; the\n"
            "text needs two chunks' worth or more. Ctrl-C stops after the current chunk,\n"
            "prints the estimate so far to stderr and exits with status 130.\n\n"
            "options:\n"
            "  -f, --file TEXT         text file (required; '-': stdin)\n"
            "  --max-input-bytes SIZE  refuse a text longer than SIZE, e.g. 64K, 512M, 2G\n"
            "                          (default %lluM)\n"
            "  -b, --batch-size N      tokens computed at once, 1 .. %d (default 512)\n",
            NTP_CLI_MAX_INPUT_DEFAULT >> 20, NTP_CLI_MAX_CTX);
    ntp_cli_infer_help(f, "512");
    fprintf(f, "  -h, --help              this help\n");
}

/* -log p(tok) from one row of logits, with llama.cpp's log_softmax arithmetic. */
static double nll_of(const float *logits, int32_t n_vocab, int32_t tok)
{
    float max = logits[0];
    for (int32_t i = 1; i < n_vocab; i++)
        max = logits[i] > max ? logits[i] : max;
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++)
        sum += expf(logits[i] - max);
    return -((double)(logits[tok] - max) - log(sum));
}

struct ppl_sums {
    double nll, nll2; /* sums of -log p and its square */
    int64_t count;    /* tokens scored */
};

/* Evaluate chunk tokens[0, n_ctx) and score its second half. */
static int eval_chunk(ntp_context *c, const ntp_model *m, const int32_t *chunk, int32_t n_ctx,
                      struct ppl_sums *s)
{
    const int32_t first = n_ctx / 2, n_vocab = ntp_model_n_vocab(m);
    int32_t head = chunk[0];
    if (ntp_model_add_bos(m) && ntp_token_bos(m) >= 0)
        head = ntp_token_bos(m);
    ntp_context_reset(c);
    /* The first half's logits are never read, so only the second half keeps them. */
    if (ntp_decode(c, &head, 1, false) != NTP_OK ||
        (first > 1 && ntp_decode(c, chunk + 1, first - 1, false) != NTP_OK) ||
        ntp_decode(c, chunk + first, n_ctx - first, true) != NTP_OK) {
        fprintf(stderr, "\nnumatp perplexity: %s\n", ntp_last_error());
        return 1;
    }
    for (int32_t i = 0; i < n_ctx - first - 1; i++) {
        const double v = nll_of(ntp_get_logits(c, i), n_vocab, chunk[first + i + 1]);
        s->nll += v;
        s->nll2 += v * v;
    }
    s->count += n_ctx - first - 1;
    return 0;
}

static int tokenize_text(const ntp_model *m, const char *path, const char *text, size_t len,
                         int32_t **toks, int32_t *n)
{
    ntp_status s = ntp_tokenize(m, text, len, true, false, NULL, 0, n);
    *toks =
        (s == NTP_OK || s == NTP_E_OVERFLOW) ? malloc(((size_t)*n + 1) * sizeof(int32_t)) : NULL;
    if (*toks == NULL || ntp_tokenize(m, text, len, true, false, *toks, *n, n) != NTP_OK) {
        fprintf(stderr, "numatp perplexity: %s: %s\n", path, ntp_last_error());
        return 1;
    }
    return 0;
}

/* llama-perplexity's estimate after the first chunk: whole hours, then minutes. */
static void print_eta(double t_pass, int32_t n_chunk)
{
    int total = (int)(t_pass * n_chunk);
    fprintf(stderr, "perplexity: %.2f seconds per pass - ETA ", t_pass);
    if (total >= 60 * 60) {
        fprintf(stderr, "%d hours ", total / (60 * 60));
        total %= 60 * 60;
    }
    fprintf(stderr, "%.2f minutes\n", total / 60.0);
}

/* llama-perplexity's closing line, from the chunks scored so far. */
static void print_estimate(FILE *f, const struct ppl_sums *s)
{
    if (s->count == 0) {
        fprintf(f, "No chunk was scored\n");
        return;
    }
    const double nll = s->nll / (double)s->count, ppl = exp(nll);
    const double var = s->nll2 / (double)s->count - nll * nll;
    if (var > 0 && s->count > 1)
        fprintf(f, "Final estimate: PPL = %.4lf +/- %.5lf\n", ppl,
                sqrt(var / (double)(s->count - 1)) * ppl);
    else
        fprintf(f, "Unexpected negative standard deviation of log(prob)\n");
}

/* Score every chunk, or those before Ctrl-C; c's n_ctx is the chunk length. */
static int perplexity(ntp_context *c, const ntp_model *m, const int32_t *toks, int32_t n_tok,
                      int32_t n_batch)
{
    const int32_t n_ctx = ntp_context_n_ctx(c), n_chunk = n_tok / n_ctx;
    /* The stderr lines read as llama-perplexity's do; it may put several chunks in one batch
     * (n_seq), numatp evaluates one chunk at a time. */
    fprintf(stderr,
            "perplexity: calculating perplexity over %d chunks, n_ctx=%d, batch_size=%d, "
            "n_seq=1\n",
            n_chunk, n_ctx, n_batch);
    struct ppl_sums s = {0};
    int rc = 0;
    int32_t i = 0;
    for (; i < n_chunk && rc == 0 && !ntp_cli_interrupted(); i++) {
        const double t0 = ntp_cli_now();
        rc = eval_chunk(c, m, toks + (size_t)i * n_ctx, n_ctx, &s);
        if (i == 0 && rc == 0)
            print_eta(ntp_cli_now() - t0, n_chunk);
        if (rc == 0) {
            printf("[%d]%.4lf,", i + 1, exp(s.nll / (double)s.count));
            rc = ntp_cli_flush() ? 0 : 1; /* main says why */
        }
    }
    if (rc != 0)
        return rc;
    printf("\n");
    if (!ntp_cli_interrupted()) {
        print_estimate(stdout, &s);
        return 0;
    }
    fprintf(stderr, "numatp perplexity: interrupted after %d of %d chunks\n", i, n_chunk);
    print_estimate(stderr, &s);
    return NTP_CLI_EXIT_INTERRUPTED;
}

/* Tokenize the text, make the context and check that the text fills two chunks. */
static int ppl_text(ntp_model *m, const struct ntp_cli_infer *o, const char *file, const char *text,
                    size_t len, ntp_context_params cp)
{
    int32_t *toks = NULL, n_tok = 0;
    ntp_context *c = NULL;
    int rc = tokenize_text(m, file, text, len, &toks, &n_tok);
    if (rc == 0)
        rc = ntp_cli_infer_context("perplexity", o, m, cp, &c);
    const int32_t n_ctx = rc == 0 ? ntp_context_n_ctx(c) : 0;
    if (rc == 0 && n_tok < 2 * (int64_t)n_ctx) {
        fprintf(stderr,
                "numatp perplexity: %s: %d tokens; at least %lld (2 x the context %d) are needed\n",
                file, n_tok, 2 * (long long)n_ctx, n_ctx);
        rc = 1;
    }
    if (rc == 0) {
        ntp_cli_catch_sigint();
        rc = perplexity(c, m, toks, n_tok, cp.n_batch < n_ctx ? cp.n_batch : n_ctx);
    }
    ntp_context_free(c);
    free(toks);
    return rc;
}

int ntp_cli_perplexity(int argc, char **argv)
{
    const char *file = NULL;
    int64_t batch = 512;
    uint64_t max_input = NTP_CLI_MAX_INPUT_DEFAULT;
    bool help = false;
    struct ntp_cli_infer o = {.ctx = 512};
    const struct ntp_cli_opt own[] = {
        {"--file", "-f", NTP_CLI_STR, .dst = &file},
        {"--max-input-bytes", NULL, NTP_CLI_SIZE, .dst = &max_input},
        {"--batch-size", "-b", NTP_CLI_INT, .dst = &batch, .lo = 1, .hi = NTP_CLI_MAX_CTX},
        {"--help", "-h", NTP_CLI_FLAG, .dst = &help},
        {NULL},
    };
    struct ntp_cli_opt inf[NTP_CLI_INFER_N_OPTS + 1];
    ntp_cli_infer_opts(&o, false, inf);
    int rc = ntp_cli_parse("perplexity", argc, argv,
                           (const struct ntp_cli_opt *const[]){own, inf, NULL});
    if (rc != 0 || help)
        return rc != 0 ? rc : (usage(stdout), 0);
    if (file == NULL) {
        fprintf(stderr, "numatp perplexity: -f TEXT is required (see numatp perplexity --help)\n");
        return 2;
    }
    if (o.ctx > 0 && o.ctx < 4) {
        fprintf(stderr,
                "numatp perplexity: --ctx-size %lld is out of range (0, or 4 .. %d: the second "
                "half of a chunk is scored)\n",
                (long long)o.ctx, NTP_CLI_MAX_CTX);
        return 2;
    }
    /* Usage errors first, then the text, then the model: the cheap failures come first. */
    ntp_model_params mp;
    ntp_context_params cp;
    if ((rc = ntp_cli_infer_apply("perplexity", &o, &mp, &cp)) != 0)
        return rc;
    size_t len = 0;
    char *text = ntp_cli_read_text("perplexity", file, max_input, &len);
    ntp_model *m = NULL;
    rc = text ? ntp_cli_infer_load("perplexity", &o, &m, &cp) : 1;
    cp.n_batch = (int32_t)batch;
    if (rc == 0)
        rc = ppl_text(m, &o, file, text, len, cp);
    ntp_model_free(m);
    free(text);
    return rc;
}
