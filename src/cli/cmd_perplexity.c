/*
 * cmd_perplexity.c - `numatp perplexity`: perplexity of a text file computed
 * as llama.cpp's llama-perplexity does (tools/perplexity, perplexity()):
 * the whole file is tokenized with BOS, cut into n_chunk = n_tokens / n_ctx
 * chunks (at least two chunks' worth of tokens are required, as there), each
 * chunk is evaluated from an empty KV cache with its first token replaced by
 * BOS when the model adds one, and only the second half of each chunk is
 * scored: the logits at position first + i (first = n_ctx / 2) predict the
 * token at first + i + 1. Running sums of the negative log-likelihood and of
 * its square give the "+/-" estimate.
 */
#include "cli/cli.h"
#include "cli/cli_opts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: numatp perplexity -m FILE -f TEXT [options]\n\n"
               "Perplexity of a text file, computed as llama-perplexity does. Progress per\n"
               "chunk and the final estimate go to stdout.\n\n"
               "options:\n"
               "  -m, --model FILE      GGUF model (required)\n"
               "  -f, --file TEXT       text file (required); needs 2 x CTX tokens or more\n"
               "  -c, --ctx-size N      tokens per chunk (default 512)\n"
               "  -b, --batch-size N    tokens computed at once (default 512)\n"
               "  -t, --threads N       compute threads (default: every CPU)\n"
               "  --kv-type f16|f32     KV cache type (default f16)\n"
               "  -h, --help            this help\n");
}

/* The whole file in a malloc'd NUL-terminated buffer. */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        char *nb = realloc(buf, cap * 2);
        if (nb == NULL) {
            free(buf);
            buf = NULL;
        }
        buf = nb;
        cap *= 2;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
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

static int tokenize_file(const ntp_model *m, const char *path, int32_t **toks, int32_t *n)
{
    size_t len = 0;
    char *text = read_text(path, &len);
    if (text == NULL) {
        fprintf(stderr, "numatp perplexity: %s: cannot read the file\n", path);
        return 1;
    }
    ntp_status s = ntp_tokenize(m, text, len, true, false, NULL, 0, n);
    *toks =
        (s == NTP_OK || s == NTP_E_OVERFLOW) ? malloc(((size_t)*n + 1) * sizeof(int32_t)) : NULL;
    if (*toks == NULL || ntp_tokenize(m, text, len, true, false, *toks, *n, n) != NTP_OK) {
        fprintf(stderr, "numatp perplexity: %s: %s\n", path, ntp_last_error());
        free(text);
        return 1;
    }
    free(text);
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

static int perplexity(ntp_model *m, const int32_t *toks, int32_t n_tok, ntp_context_params cp)
{
    const int32_t n_ctx = cp.n_ctx, n_chunk = n_tok / n_ctx;
    ntp_context *c = NULL;
    if (ntp_context_new(m, cp, &c) != NTP_OK) {
        fprintf(stderr, "numatp perplexity: %s\n", ntp_last_error());
        return 1;
    }
    /* The stderr lines read as llama-perplexity's do; it may put several chunks in one batch
     * (n_seq), numatp evaluates one chunk at a time. */
    fprintf(stderr,
            "perplexity: calculating perplexity over %d chunks, n_ctx=%d, batch_size=%d, "
            "n_seq=1\n",
            n_chunk, n_ctx, cp.n_batch);
    struct ppl_sums s = {0};
    int rc = 0;
    for (int32_t i = 0; i < n_chunk && rc == 0; i++) {
        const double t0 = ntp_cli_now();
        rc = eval_chunk(c, m, toks + (size_t)i * n_ctx, n_ctx, &s);
        if (i == 0 && rc == 0)
            print_eta(ntp_cli_now() - t0, n_chunk);
        if (rc == 0) {
            printf("[%d]%.4lf,", i + 1, exp(s.nll / (double)s.count));
            fflush(stdout);
        }
    }
    ntp_context_free(c);
    if (rc != 0)
        return rc;
    printf("\n");
    const double nll = s.nll / (double)s.count, ppl = exp(nll);
    const double var = s.nll2 / (double)s.count - nll * nll;
    if (var > 0 && s.count > 1)
        printf("Final estimate: PPL = %.4lf +/- %.5lf\n", ppl,
               sqrt(var / (double)(s.count - 1)) * ppl);
    else
        printf("Unexpected negative standard deviation of log(prob)\n");
    return 0;
}

int ntp_cli_perplexity(int argc, char **argv)
{
    const char *model = NULL, *file = NULL, *kv = NULL;
    int64_t ctx = 512, batch = 512, threads = 0;
    bool help = false;
    const struct ntp_cli_opt opts[] = {
        {"--model", "-m", NTP_CLI_STR, &model},     {"--file", "-f", NTP_CLI_STR, &file},
        {"--ctx-size", "-c", NTP_CLI_INT, &ctx},    {"--batch-size", "-b", NTP_CLI_INT, &batch},
        {"--threads", "-t", NTP_CLI_INT, &threads}, {"--kv-type", NULL, NTP_CLI_STR, &kv},
        {"--help", "-h", NTP_CLI_FLAG, &help},      {NULL, NULL, NTP_CLI_FLAG, NULL},
    };
    int rc = ntp_cli_parse_opts("perplexity", argc, argv, opts);
    if (rc != 0)
        return rc;
    if (help)
        return usage(stdout), 0;
    if (model == NULL || file == NULL || ctx < 4 || ctx > (1 << 24) || batch < 1 ||
        batch > (1 << 24) || threads < 0 || threads > 4096 ||
        (kv && strcmp(kv, "f16") != 0 && strcmp(kv, "f32") != 0)) {
        fprintf(stderr, "numatp perplexity: needs -m FILE -f TEXT, -c >= 4, -b >= 1, --kv-type "
                        "f16|f32 (see numatp perplexity --help)\n");
        return 2;
    }
    ntp_model *m = NULL;
    if (ntp_cli_load_model("perplexity", model, (int)threads, &m) != 0)
        return 1;
    int32_t *toks = NULL, n_tok = 0;
    rc = tokenize_file(m, file, &toks, &n_tok);
    if (rc == 0 && n_tok < 2 * ctx) {
        fprintf(stderr,
                "numatp perplexity: %s: %d tokens; at least %lld (2 x the context %lld) "
                "are needed\n",
                file, n_tok, 2 * (long long)ctx, (long long)ctx);
        rc = 1;
    }
    if (rc == 0) {
        ntp_context_params cp = ntp_context_default_params();
        cp.n_ctx = (int32_t)ctx;
        cp.n_batch = (int32_t)(batch < ctx ? batch : ctx);
        cp.kv_type = kv && strcmp(kv, "f32") == 0 ? NTP_TYPE_F32 : NTP_TYPE_F16;
        rc = perplexity(m, toks, n_tok, cp);
    }
    free(toks);
    ntp_model_free(m);
    return rc;
}
