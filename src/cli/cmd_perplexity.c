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
 *
 * --kl-divergence-base FILE also saves every scored row's log-probabilities
 * in llama-perplexity's file format; with --kl-divergence it instead reads
 * such a file (its chunks and tokens; the text, when given, must tokenize to
 * them) and reports the KL divergence of this model from the base, per chunk
 * and at the end, as llama-perplexity does (kld.h has the file and the figures).
 */
#include "cli/cli.h"
#include "cli/infer.h"
#include "cli/io.h"
#include "cli/kld.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: numatp perplexity -m FILE -f TEXT [--kl-divergence-base BASE] [options]\n"
            "       numatp perplexity -m FILE --kl-divergence-base BASE --kl-divergence\n"
            "                         [-f TEXT] [options]\n\n"
            "Perplexity of a text file, computed as llama-perplexity does. Progress per\n"
            "chunk and the final estimate go to stdout. -c is the tokens per chunk; the\n"
            "text needs two chunks' worth or more. Ctrl-C stops after the current chunk,\n"
            "prints the estimate so far to stderr and exits with status 130.\n"
            "With --kl-divergence, the model is compared with a base (llama-perplexity's\n"
            "KL divergence): a table per chunk, then the statistics, go to stdout.\n\n"
            "options:\n"
            "  -f, --file TEXT         text file ('-': stdin); required but with\n"
            "                          --kl-divergence, which takes the text from BASE\n"
            "  --max-input-bytes SIZE  refuse a text longer than SIZE, e.g. 64K, 512M, 2G\n"
            "                          (default %lluM)\n"
            "  -b, --batch-size N      tokens computed at once, 1 .. %d (default 512)\n"
            "  --kl-divergence-base BASE\n"
            "                          also save the log-probabilities of every scored\n"
            "                          token to BASE in llama-perplexity's format (BASE is\n"
            "                          replaced once complete); with --kl-divergence: the\n"
            "                          base to read, written by numatp or llama-perplexity\n"
            "  --kl-divergence         compare this model with BASE: KL divergence, same\n"
            "                          top token, probability change of the next token and\n"
            "                          both perplexities. BASE's chunks and tokens are\n"
            "                          scored; -c defaults to its context; -f TEXT, if\n"
            "                          given, must tokenize to its tokens\n",
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

/* One run over the chunks of toks: perplexity, and the base file or the KL divergence. */
struct ppl_job {
    ntp_context *c;
    const ntp_model *m;
    const int32_t *toks;
    int32_t n_ctx, n_chunk, n_batch;
    struct ppl_sums s;
    struct ntp_kld_writer *w; /* --kl-divergence-base alone: rows go here */
    struct ntp_kld_reader *r; /* --kl-divergence: rows come from here */
    struct ntp_kld_stats k;   /* --kl-divergence */
};

/* Evaluate chunk[0, n_ctx) from an empty cache; the logits of its second half are kept. */
static int eval_chunk(ntp_context *c, const ntp_model *m, const int32_t *chunk, int32_t n_ctx)
{
    const int32_t first = n_ctx / 2;
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
    return 0;
}

/* Evaluate chunk i and score its second half: the logits at first + j predict first + j + 1. */
static int score_chunk(struct ppl_job *j, int32_t i)
{
    const int32_t first = j->n_ctx / 2, n_vocab = ntp_model_n_vocab(j->m);
    const int32_t rows = ntp_kld_rows(j->n_ctx);
    const int32_t *chunk = j->toks + (size_t)i * j->n_ctx;
    /* The base's rows first: a damaged file fails before the work. */
    if ((j->r && ntp_kld_reader_chunk(j->r) != 0) || eval_chunk(j->c, j->m, chunk, j->n_ctx) != 0)
        return 1;
    for (int32_t t = 0; t < rows; t++) {
        const float *logits = ntp_get_logits(j->c, t);
        const int32_t next = chunk[first + t + 1];
        if (j->r) {
            const uint16_t *base = j->r->rows + (size_t)t * ntp_kld_row_words(n_vocab);
            ntp_kld_stats_add(&j->k, logits, n_vocab, base, next);
            continue;
        }
        const double v = nll_of(logits, n_vocab, next);
        j->s.nll += v;
        j->s.nll2 += v * v;
        if (j->w && ntp_kld_writer_row(j->w, logits) != 0)
            return 1;
    }
    j->s.count += rows;
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
static void print_eta(const char *what, double t_pass, int32_t n_chunk)
{
    int total = (int)(t_pass * n_chunk);
    fprintf(stderr, "%s: %.2f seconds per pass - ETA ", what, t_pass);
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

/* The closing figures of the run: perplexity's estimate, or the KL-divergence statistics. */
static void print_result(FILE *f, struct ppl_job *j)
{
    if (!j->r)
        print_estimate(f, &j->s);
    else if (!ntp_kld_print_summary(f, &j->k))
        fprintf(stderr,
                "numatp perplexity: %lld tokens scored; the statistics need 100 or more (as in "
                "llama-perplexity)\n",
                (long long)j->k.count);
}

/* Score every chunk, or those before Ctrl-C. */
static int run_chunks(struct ppl_job *j)
{
    const char *what = j->r ? "kl_divergence" : "perplexity";
    /* The stderr lines read as llama-perplexity's do; it may put several chunks in one batch
     * (n_seq), numatp evaluates one chunk at a time. */
    fprintf(stderr, "%s: %s %d chunks, n_ctx=%d, batch_size=%d, n_seq=1\n", what,
            j->r ? "computing over" : "calculating perplexity over", j->n_chunk, j->n_ctx,
            j->n_batch);
    int rc = 0;
    int32_t i = 0;
    for (; i < j->n_chunk && rc == 0 && !ntp_cli_interrupted(); i++) {
        const double t0 = ntp_cli_now();
        rc = score_chunk(j, i);
        if (i == 0 && rc == 0) {
            print_eta(what, ntp_cli_now() - t0, j->n_chunk);
            if (j->r)
                ntp_kld_print_head(stdout);
        }
        if (rc == 0) {
            if (j->r)
                ntp_kld_print_chunk(stdout, &j->k, i + 1);
            else
                printf("[%d]%.4lf,", i + 1, exp(j->s.nll / (double)j->s.count));
            rc = ntp_cli_flush() ? 0 : 1; /* main says why */
        }
    }
    if (rc != 0)
        return rc;
    printf("\n");
    if (!ntp_cli_interrupted()) {
        print_result(stdout, j);
        return 0;
    }
    fprintf(stderr, "numatp perplexity: interrupted after %d of %d chunks\n", i, j->n_chunk);
    print_result(stderr, j);
    return NTP_CLI_EXIT_INTERRUPTED;
}

/* Tokenize the text, make the context, check that the text fills two chunks, and run. */
static int ppl_text(ntp_model *m, const struct ntp_cli_infer *o, const char *file, const char *text,
                    size_t len, ntp_context_params cp, struct ntp_kld_writer *w)
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
    struct ppl_job j = {.c = c,
                        .m = m,
                        .toks = toks,
                        .n_ctx = n_ctx,
                        .n_chunk = n_ctx ? n_tok / n_ctx : 0,
                        .n_batch = cp.n_batch < n_ctx ? cp.n_batch : n_ctx,
                        .w = w};
    if (rc == 0 && w)
        rc = ntp_kld_writer_header(w, n_ctx, ntp_model_n_vocab(m), j.n_chunk, toks);
    if (rc == 0) {
        ntp_cli_catch_sigint();
        rc = run_chunks(&j);
    }
    ntp_context_free(c);
    free(toks);
    return rc;
}

/*
 * --kl-divergence: check the base against the model (and the text, if any),
 * make the context at the base's size, and score its chunks.
 */
static int kld_run(ntp_model *m, const struct ntp_cli_infer *o, const char *file, const char *text,
                   size_t len, ntp_context_params cp, struct ntp_kld_reader *r)
{
    int32_t *toks = NULL, n_tok = 0;
    ntp_context *c = NULL;
    int rc = text ? tokenize_text(m, file, text, len, &toks, &n_tok) : 0;
    if (rc == 0)
        rc = ntp_kld_reader_check(r, ntp_model_n_vocab(m), o->model, toks, n_tok, file);
    if (rc == 0)
        rc = ntp_cli_infer_context("perplexity", o, m, cp, &c);
    const int32_t n_ctx = rc == 0 ? ntp_context_n_ctx(c) : 0;
    if (rc == 0 && n_ctx != r->n_ctx) {
        fprintf(stderr,
                "numatp perplexity: '%s' was computed with a context of %d tokens, this run's "
                "is %d: give -c %d, or no -c\n",
                r->path, r->n_ctx, n_ctx, r->n_ctx);
        rc = 1;
    }
    struct ppl_job j = {.c = c,
                        .m = m,
                        .toks = r->tokens,
                        .n_ctx = r->n_ctx,
                        .n_chunk = r->n_chunk,
                        .n_batch = cp.n_batch < r->n_ctx ? cp.n_batch : r->n_ctx,
                        .r = r};
    if (rc == 0)
        rc = ntp_kld_stats_init(&j.k, (int64_t)r->n_chunk * ntp_kld_rows(r->n_ctx));
    if (rc == 0) {
        ntp_cli_catch_sigint();
        rc = run_chunks(&j);
        ntp_kld_stats_free(&j.k);
    }
    ntp_context_free(c);
    free(toks);
    return rc;
}

/* Whether a and b name one existing file (a link or another spelling of it, too). */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* The base must not replace the model or the text it is computed from. */
static int check_base_target(const char *base, const char *model, const char *text)
{
    const char *what = same_file(base, model)  ? "the model"
                       : same_file(base, text) ? "the text"
                                               : NULL;
    if (what)
        fprintf(stderr, "numatp perplexity: --kl-divergence-base %s is %s file: not replaced\n",
                base, what);
    return what != NULL;
}

int ntp_cli_perplexity(int argc, char **argv)
{
    const char *file = NULL, *kl_base = NULL;
    int64_t batch = 512;
    uint64_t max_input = NTP_CLI_MAX_INPUT_DEFAULT;
    bool help = false, kl = false;
    struct ntp_cli_infer o = {.ctx = -1}; /* -1: -c not given */
    const struct ntp_cli_opt own[] = {
        {"--file", "-f", NTP_CLI_STR, .dst = &file},
        {"--max-input-bytes", NULL, NTP_CLI_SIZE, .dst = &max_input},
        {"--batch-size", "-b", NTP_CLI_INT, .dst = &batch, .lo = 1, .hi = NTP_CLI_MAX_CTX},
        {"--kl-divergence-base", NULL, NTP_CLI_STR, .dst = &kl_base},
        {"--kl-divergence", NULL, NTP_CLI_FLAG, .dst = &kl},
        {"--help", "-h", NTP_CLI_FLAG, .dst = &help},
        {NULL},
    };
    struct ntp_cli_opt inf[NTP_CLI_INFER_N_OPTS + 1];
    ntp_cli_infer_opts(&o, false, inf);
    int rc = ntp_cli_parse("perplexity", argc, argv,
                           (const struct ntp_cli_opt *const[]){own, inf, NULL});
    if (rc != 0 || help)
        return rc != 0 ? rc : (usage(stdout), 0);
    if (kl && kl_base == NULL) {
        fprintf(stderr, "numatp perplexity: --kl-divergence needs --kl-divergence-base BASE (the "
                        "file of the base model's log-probabilities to compare with)\n");
        return 2;
    }
    if (file == NULL && !kl) {
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
    /* Usage errors first, then the files, then the model: the cheap failures come first. */
    ntp_model_params mp;
    ntp_context_params cp;
    if ((rc = ntp_cli_infer_apply("perplexity", &o, &mp, &cp)) != 0)
        return rc;
    struct ntp_kld_reader *r = NULL;
    struct ntp_kld_writer *w = NULL;
    if (kl)
        rc = ntp_kld_reader_open(kl_base, &r);
    else if (kl_base && (rc = check_base_target(kl_base, o.model, file)) == 0 &&
             (rc = ntp_kld_writer_open(kl_base, &w)) == 0)
        fprintf(stderr, "perplexity: saving all logits to %s\n", kl_base);
    if (rc == 0 && r && o.ctx > 0 && o.ctx != r->n_ctx) {
        fprintf(stderr,
                "numatp perplexity: '%s' was computed with a context of %d tokens, but -c is "
                "%lld: give -c %d, or no -c\n",
                kl_base, r->n_ctx, (long long)o.ctx, r->n_ctx);
        rc = 1;
    }
    o.ctx = o.ctx >= 0 ? o.ctx : r ? r->n_ctx : 512;
    size_t len = 0;
    char *text = NULL;
    if (rc == 0 && file && (text = ntp_cli_read_text("perplexity", file, max_input, &len)) == NULL)
        rc = 1;
    ntp_model *m = NULL;
    if (rc == 0)
        rc = ntp_cli_infer_load("perplexity", &o, &m, &cp);
    cp.n_batch = (int32_t)batch;
    if (rc == 0)
        rc = r ? kld_run(m, &o, file, text, len, cp, r) : ppl_text(m, &o, file, text, len, cp, w);
    /* The base is kept only when every chunk was scored (not on Ctrl-C or an error). */
    const int wrc = ntp_kld_writer_close(w, rc == 0);
    rc = rc != 0 ? rc : wrc;
    ntp_kld_reader_close(r);
    ntp_model_free(m);
    free(text);
    return rc;
}
