/*
 * cmd_run.c - `numatp run`: generate text from a prompt. Only the generated
 * text goes to stdout, flushed token by token; logs and the closing speed
 * line go to stderr. Also holds the option parser and model loader the
 * other inference commands share (cli_opts.h).
 */
#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "sampler/sampler.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ------------------------------------------------------ shared helpers */

double ntp_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_value(const char *cmd, const struct ntp_cli_opt *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    if (o->kind == NTP_CLI_INT) {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end) {
            fprintf(stderr, "numatp %s: %s '%s': expected an integer\n", cmd, o->name, v);
            return 2;
        }
        *(int64_t *)o->dst = x;
    } else if (o->kind == NTP_CLI_FLOAT) {
        float x = strtof(v, &end);
        if (errno || end == v || *end || !isfinite(x)) {
            fprintf(stderr, "numatp %s: %s '%s': expected a number\n", cmd, o->name, v);
            return 2;
        }
        *(float *)o->dst = x;
    } else {
        *(const char **)o->dst = v;
    }
    return 0;
}

int ntp_cli_parse_opts(const char *cmd, int argc, char **argv, const struct ntp_cli_opt *opts)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        const size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct ntp_cli_opt *o = opts;
        while (o->name && !((strlen(o->name) == len && strncmp(o->name, arg, len) == 0) ||
                            (o->alias && !eq && strcmp(o->alias, arg) == 0)))
            o++;
        if (o->name == NULL) {
            fprintf(stderr, "numatp %s: unknown option '%s' (see numatp %s --help)\n", cmd, arg,
                    cmd);
            return 2;
        }
        if (o->kind == NTP_CLI_FLAG) {
            if (eq) {
                fprintf(stderr, "numatp %s: %s takes no value\n", cmd, o->name);
                return 2;
            }
            *(bool *)o->dst = true;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (v == NULL) {
            fprintf(stderr, "numatp %s: %s needs a value\n", cmd, o->name);
            return 2;
        }
        int rc = parse_value(cmd, o, v);
        if (rc)
            return rc;
    }
    return 0;
}

/* Progress every 10% on stderr; user points at the last tenth printed. */
static bool load_progress(float fraction, void *user)
{
    int *last = user;
    const int tenth = (int)(fraction * 10.0f);
    if (tenth > *last) {
        *last = tenth;
        fprintf(stderr, "\rnumatp: loading weights %3d%%%s", tenth * 10, tenth >= 10 ? "\n" : "");
        fflush(stderr);
    }
    return true;
}

int ntp_cli_load_model(const char *cmd, const char *path, int n_threads, ntp_model **out)
{
    ntp_model_params mp = ntp_model_default_params();
    mp.n_threads = n_threads;
    return ntp_cli_load_model_params(cmd, path, mp, out);
}

const char ntp_cli_tp_help[] =
    "  --tp auto|N             tensor-parallel devices: auto = one per NUMA node (default);\n"
    "                          more than the nodes splits their cores into virtual devices\n"
    "  --numa-nodes LIST       NUMA nodes to use, e.g. 0,1 or 0-3 (default: all)\n"
    "  --threads-per-device N  threads of each device (default: one per physical core)\n"
    "  --smt                   also use the hyperthreads of each core\n"
    "  --verify-numa           check that every weight, KV cache and scratch page is on its\n"
    "                          device's node (move_pages); a misplaced page is an error\n"
    "  -ngl, --gpu-layers N    run the first N transformer blocks on the GPU (CUDA), the\n"
    "                          rest on the CPU devices; N above the model's count: all\n"
    "  --gpu-output            run the final norm and output head on the GPU as well\n";

void ntp_cli_tp_opts(struct ntp_cli_tp_args *a, struct ntp_cli_opt *opts)
{
    opts[0] = (struct ntp_cli_opt){"--tp", NULL, NTP_CLI_STR, &a->tp};
    opts[1] = (struct ntp_cli_opt){"--numa-nodes", NULL, NTP_CLI_STR, &a->numa_nodes};
    opts[2] = (struct ntp_cli_opt){"--threads-per-device", NULL, NTP_CLI_INT,
                                   &a->threads_per_device};
    opts[3] = (struct ntp_cli_opt){"--smt", NULL, NTP_CLI_FLAG, &a->smt};
    opts[4] = (struct ntp_cli_opt){"--verify-numa", NULL, NTP_CLI_FLAG, &a->verify_numa};
    opts[5] = (struct ntp_cli_opt){"--gpu-layers", "-ngl", NTP_CLI_INT, &a->gpu_layers};
    opts[6] = (struct ntp_cli_opt){"--gpu-output", NULL, NTP_CLI_FLAG, &a->gpu_output};
}

int ntp_cli_tp_apply(const char *cmd, const struct ntp_cli_tp_args *a, ntp_model_params *mp)
{
    if (a->tp && strcmp(a->tp, "auto") != 0) {
        char *end;
        errno = 0;
        long n = strtol(a->tp, &end, 10);
        if (errno || end == a->tp || *end || n < 1 || n > 16) {
            fprintf(stderr, "numatp %s: --tp '%s': expected auto or a count 1..16\n", cmd, a->tp);
            return 2;
        }
        mp->tp = (int32_t)n;
    }
    if (a->threads_per_device < 0 || a->threads_per_device > 4096) {
        fprintf(stderr, "numatp %s: --threads-per-device must be 0..4096\n", cmd);
        return 2;
    }
    mp->threads_per_device = (int32_t)a->threads_per_device;
    mp->numa_nodes = a->numa_nodes;
    mp->smt = a->smt;
    /* GPU offload (CUDA issue); the loader says when there is no GPU or too little memory. */
    if (a->gpu_layers < 0 || (a->gpu_output && a->gpu_layers == 0)) {
        fprintf(stderr, "numatp %s: %s\n", cmd,
                a->gpu_layers < 0 ? "--gpu-layers must be 0 or more"
                                  : "--gpu-output needs --gpu-layers N (N > 0)");
        return 2;
    }
    mp->n_gpu_layers = a->gpu_layers > INT32_MAX ? INT32_MAX : (int32_t)a->gpu_layers;
    mp->gpu_output = a->gpu_output;
    return 0;
}

int ntp_cli_verify_numa(const char *cmd, const ntp_model *m, const ntp_context *c)
{
    char table[4096];
    ntp_status s = ntp_model_verify_numa(m, c, table, sizeof table);
    fprintf(stderr, "numatp: --verify-numa (%s):\n%s", ntp_model_layout_desc(m), table);
    if (s != NTP_OK) {
        fprintf(stderr, "numatp %s: %s\n", cmd, ntp_last_error());
        return 1;
    }
    fprintf(stderr, "numatp: --verify-numa: every page is on its device's node\n");
    return 0;
}

int ntp_cli_load_model_params(const char *cmd, const char *path, ntp_model_params mp,
                              ntp_model **out)
{
    int last = 0;
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > (256 << 20)) {
        mp.progress = load_progress;
        mp.progress_user = &last;
    }
    const double t0 = ntp_cli_now();
    ntp_status s = ntp_model_load(path, mp, out);
    if (s != NTP_OK) {
        fprintf(stderr, "numatp %s: %s\n", cmd, ntp_last_error());
        return 1;
    }
    fprintf(stderr, "numatp: %s: %s, %d layers, %d tokens, %.1f MiB of weights on %s (%.2f s)\n",
            path, ntp_model_arch(*out), ntp_model_n_layer(*out), ntp_model_n_vocab(*out),
            (double)ntp_model_weight_bytes(*out) / (1024.0 * 1024.0), ntp_model_device_desc(*out),
            ntp_cli_now() - t0);
    return 0;
}

/* ------------------------------------------------------------------ run */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: numatp run -m FILE -p PROMPT [options]\n\n"
            "Generate text from a prompt. The generated text goes to stdout as it is\n"
            "produced; logs and speeds go to stderr.\n\n"
            "options:\n"
            "  -m, --model FILE        GGUF model (required)\n"
            "  -p, --prompt TEXT       prompt (required)\n"
            "  -n, --n-predict N       tokens to generate at most (default 128)\n"
            "  --temp T                temperature; 0 = greedy (default 0.8)\n"
            "  --top-k K               keep the K most likely tokens; 0 = off (default 40)\n"
            "  --top-p P               nucleus sampling; 1 = off (default 0.95)\n"
            "  --min-p P               drop tokens below P x the best one; 0 = off (default 0.05)\n"
            "  --repeat-penalty R      penalty of the last 64 tokens; 1 = off (default 1)\n"
            "  --seed S                random seed (default: from the clock)\n"
            "  -t, --threads N         compute threads (default: every CPU)\n"
            "  -c, --ctx-size N        context positions (default: min(training, 4096))\n"
            "  --kv-type f16|f32       KV cache type (default f16)\n"
            "  --no-bos                do not add the BOS token the model asks for\n"
            "%s"
            "  -h, --help              this help\n",
            ntp_cli_tp_help);
}

struct run_args {
    const char *model, *prompt, *kv_type;
    int64_t n_predict, top_k, seed, threads, ctx;
    float temp, top_p, min_p, repeat_penalty;
    bool no_bos, help;
    struct ntp_cli_tp_args tp; /* topology options */
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
 */
static void emit_piece(const ntp_model *m, int32_t tok, char *pend, size_t *npend)
{
    char buf[512];
    size_t len = 0;
    memcpy(buf, pend, *npend);
    if (ntp_token_to_piece(m, tok, buf + *npend, sizeof buf - *npend, &len) != NTP_OK)
        len = 0; /* a piece longer than the buffer is not a real token; skip it */
    const size_t n = *npend + len, ok = utf8_complete(buf, n);
    fwrite(buf, 1, ok, stdout);
    fflush(stdout);
    *npend = n - ok;
    memcpy(pend, buf + ok, *npend);
}

static int run_args_check(struct run_args *a, ntp_context_params *cp)
{
    if (a->help)
        return usage(stdout), -1;
    if (a->model == NULL || a->prompt == NULL) {
        fprintf(stderr, "numatp run: -m FILE and -p PROMPT are required (see numatp run --help)\n");
        return 2;
    }
    if (a->kv_type && strcmp(a->kv_type, "f16") != 0 && strcmp(a->kv_type, "f32") != 0) {
        fprintf(stderr, "numatp run: --kv-type '%s': expected f16 or f32\n", a->kv_type);
        return 2;
    }
    if (a->n_predict < 0 || a->ctx < 0 || a->ctx > INT32_MAX || a->threads < 0 ||
        a->threads > 4096) {
        fprintf(stderr, "numatp run: -n, -c and -t must be >= 0\n");
        return 2;
    }
    *cp = ntp_context_default_params();
    cp->n_ctx = (int32_t)a->ctx;
    cp->kv_type = a->kv_type && strcmp(a->kv_type, "f32") == 0 ? NTP_TYPE_F32 : NTP_TYPE_F16;
    return 0;
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
        if (ntp__sampler_sample(smp, ntp_get_logits(c, -1), &tok) != NTP_OK ||
            ntp__sampler_accept(smp, tok) != NTP_OK) {
            fprintf(stderr, "\nnumatp run: sampling: %s\n", ntp_last_error());
            return 1;
        }
        if (ntp_token_is_eog(m, tok))
            break;
        emit_piece(m, tok, pend, &npend);
        if (i + 1 == a->n_predict)
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
    fflush(stdout);
    return 0;
}

static int run_model(ntp_model *m, struct run_args *a, const ntp_context_params *cp)
{
    struct ntp_sampler_params sp = ntp__sampler_default_params();
    sp.temperature = a->temp;
    sp.top_k = (int32_t)a->top_k;
    sp.top_p = a->top_p;
    sp.min_p = a->min_p;
    sp.repeat_penalty = a->repeat_penalty;
    sp.seed = a->seed < 0 ? NTP_SAMPLER_SEED_RANDOM : (uint32_t)a->seed;
    int32_t *prompt = NULL;
    struct gen_stats st = {0};
    ntp_context *c = NULL;
    struct ntp_sampler *smp = NULL;
    int rc = tokenize_prompt(m, a->prompt, !a->no_bos, &prompt, &st.n_prompt);
    if (rc == 0 && (ntp__sampler_new(&sp, ntp_model_n_vocab(m), &smp) != NTP_OK ||
                    ntp_context_new(m, *cp, &c) != NTP_OK)) {
        fprintf(stderr, "numatp run: %s\n", ntp_last_error());
        rc = 1;
    }
    for (int32_t i = 0; rc == 0 && i < st.n_prompt; i++)
        ntp__sampler_accept(smp, prompt[i]);
    if (rc == 0 && a->tp.verify_numa)
        rc = ntp_cli_verify_numa("run", m, c);
    if (rc == 0) {
        fprintf(stderr, "numatp: prompt %d tokens, context %d, seed %u\n", st.n_prompt,
                ntp_context_n_ctx(c), ntp__sampler_seed(smp));
        rc = generate(c, m, smp, a, prompt, &st);
    }
    if (rc == 0)
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
    struct run_args a = {.n_predict = 128,
                         .top_k = 40,
                         .seed = -1,
                         .temp = 0.8f,
                         .top_p = 0.95f,
                         .min_p = 0.05f,
                         .repeat_penalty = 1.0f};
    struct ntp_cli_opt opts[14 + NTP_CLI_TP_N_OPTS + 1] = {
        {"--model", "-m", NTP_CLI_STR, &a.model},
        {"--prompt", "-p", NTP_CLI_STR, &a.prompt},
        {"--n-predict", "-n", NTP_CLI_INT, &a.n_predict},
        {"--temp", NULL, NTP_CLI_FLOAT, &a.temp},
        {"--top-k", NULL, NTP_CLI_INT, &a.top_k},
        {"--top-p", NULL, NTP_CLI_FLOAT, &a.top_p},
        {"--min-p", NULL, NTP_CLI_FLOAT, &a.min_p},
        {"--repeat-penalty", NULL, NTP_CLI_FLOAT, &a.repeat_penalty},
        {"--seed", NULL, NTP_CLI_INT, &a.seed},
        {"--threads", "-t", NTP_CLI_INT, &a.threads},
        {"--ctx-size", "-c", NTP_CLI_INT, &a.ctx},
        {"--kv-type", NULL, NTP_CLI_STR, &a.kv_type},
        {"--no-bos", NULL, NTP_CLI_FLAG, &a.no_bos},
        {"--help", "-h", NTP_CLI_FLAG, &a.help},
    };
    ntp_cli_tp_opts(&a.tp, &opts[14]);
    opts[14 + NTP_CLI_TP_N_OPTS] = (struct ntp_cli_opt){NULL, NULL, NTP_CLI_FLAG, NULL};
    int rc = ntp_cli_parse_opts("run", argc, argv, opts);
    ntp_context_params cp;
    if (rc == 0)
        rc = run_args_check(&a, &cp);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (a.seed > (int64_t)UINT32_MAX || a.top_k < INT32_MIN || a.top_k > INT32_MAX) {
        fprintf(stderr, "numatp run: --seed or --top-k out of range\n");
        return 2;
    }
    ntp_model_params mp = ntp_model_default_params();
    mp.n_threads = (int32_t)a.threads;
    if ((rc = ntp_cli_tp_apply("run", &a.tp, &mp)) != 0)
        return rc;
    ntp_model *m = NULL;
    if (ntp_cli_load_model_params("run", a.model, mp, &m) != 0)
        return 1;
    rc = run_model(m, &a, &cp);
    ntp_model_free(m);
    return rc;
}
