/*
 * kld.c - the KL-divergence base file of `numatp perplexity` (kld.h): its
 * writer, its reader with the checks of a file against the run, and the
 * statistics llama-perplexity --kl-divergence reports.
 */
#include "cli/kld.h"
#include "cli/infer.h"
#include "gguf/gguf_file.h"
#include "ntp.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD          "numatp perplexity"
#define MAGIC        "_logits_"
#define HEADER_BYTES 20 /* magic, n_ctx, n_vocab, n_chunk */

/* Stored log-probabilities reach 16 below the largest; the reader skips those at -16 or less. */
#define LOG_PROB_RANGE 16.0f

/* ------------------------------------------------------------ byte order */

static bool big_endian(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Rows are kept in host order in memory; on a big-endian host they are swapped at the file. */
static void swap_row(uint16_t *row, int64_t nv)
{
    for (int64_t i = 0; i < nv; i++)
        row[i] = (uint16_t)(row[i] << 8 | row[i] >> 8);
    /* A float spans words 0-1 and 2-3: after the bytes, its two words change places. */
    for (int i = 0; i < 4; i += 2) {
        const uint16_t t = row[i];
        row[i] = row[i + 1];
        row[i + 1] = t;
    }
}

static float row_float(const uint16_t *row, int at)
{
    float v;
    memcpy(&v, row + at, sizeof v);
    return v;
}

/* ------------------------------------------------------------ compression */

void ntp_kld_compress(const float *logits, int32_t n_vocab, uint16_t *out)
{
    float hi = logits[0], lo = logits[0];
    for (int32_t v = 1; v < n_vocab; v++) {
        hi = logits[v] > hi ? logits[v] : hi;
        lo = logits[v] < lo ? logits[v] : lo;
    }
    if (lo < hi - LOG_PROB_RANGE)
        lo = hi - LOG_PROB_RANGE;
    double z = 0.0;
    for (int32_t v = 0; v < n_vocab; v++)
        z += expf(logits[v] - hi);
    const float log_z = (float)log(z);
    const float min_log_prob = lo - hi - log_z;
    const float scale = (hi - lo) / 65535.0f;
    memcpy(out, &scale, sizeof scale);
    memcpy(out + 2, &min_log_prob, sizeof min_log_prob);
    uint16_t *q = out + 4;
    /* Round half to even, as llama.cpp's nearest_int does (lrintf in the default mode). */
    const float inv = scale > 0 ? 1.0f / scale : 0.0f;
    for (int32_t v = 0; v < n_vocab; v++) {
        const long r = logits[v] > lo && scale > 0 ? lrintf(inv * (logits[v] - lo)) : 0;
        q[v] = (uint16_t)(r < 0 ? 0 : r > 65535 ? 65535 : r);
    }
    if (n_vocab % 2)
        q[n_vocab] = 0;
}

/* ------------------------------------------------------------ writer */

struct ntp_kld_writer {
    char *path, *tmp;
    FILE *f;
    int32_t n_vocab;
    int64_t nv;
    uint16_t *row;
    int err; /* errno of the first failed write; 0: none */
};

/* The folder path would be created in: it must exist and let us add a file. */
static int check_folder(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL) {
        fprintf(stderr, CMD ": --kl-divergence-base %s: out of memory\n", path);
        return 1;
    }
    const char *folder = dirname(copy);
    const int rc = access(folder, W_OK | X_OK);
    if (rc != 0)
        fprintf(stderr, CMD ": --kl-divergence-base %s: cannot create a file in '%s': %s\n", path,
                folder, strerror(errno));
    free(copy);
    return rc != 0;
}

int ntp_kld_writer_open(const char *path, struct ntp_kld_writer **out)
{
    *out = NULL;
    if (ntp__gguf_check_target(path) != NTP_OK) {
        fprintf(stderr, CMD ": --kl-divergence-base: %s\n", ntp_last_error());
        return 1;
    }
    if (check_folder(path) != 0)
        return 1;
    struct ntp_kld_writer *w = calloc(1, sizeof *w);
    if (w == NULL || (w->path = strdup(path)) == NULL) {
        fprintf(stderr, CMD ": --kl-divergence-base %s: out of memory\n", path);
        ntp_kld_writer_close(w, false);
        return 1;
    }
    *out = w;
    return 0;
}

/* The temporary file beside path, made when the first bytes are ready. 0, or 1 after a message. */
static int create(struct ntp_kld_writer *w)
{
    /* Checked again: the run took a while, and rename replaces whatever is there now. */
    if (ntp__gguf_check_target(w->path) != NTP_OK) {
        fprintf(stderr, CMD ": --kl-divergence-base: %s\n", ntp_last_error());
        return 1;
    }
    const size_t size = strlen(w->path) + 40;
    w->tmp = malloc(size);
    if (w->tmp == NULL) {
        fprintf(stderr, CMD ": --kl-divergence-base %s: out of memory\n", w->path);
        return 1;
    }
    const int fd = ntp__create_temp(w->path, w->tmp, size);
    w->f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (w->f == NULL) {
        fprintf(stderr, CMD ": --kl-divergence-base %s: cannot create '%s': %s\n", w->path, w->tmp,
                strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(w->tmp);
        }
        return 1;
    }
    return 0;
}

/* fwrite, remembering the first failure. */
static int put(struct ntp_kld_writer *w, const void *p, size_t n)
{
    if (w->err == 0 && n > 0 && fwrite(p, 1, n, w->f) != n)
        w->err = errno ? errno : EIO;
    if (w->err == 0)
        return 0;
    fprintf(stderr, CMD ": --kl-divergence-base %s: write error: %s\n", w->path, strerror(w->err));
    return 1;
}

int ntp_kld_writer_header(struct ntp_kld_writer *w, int32_t n_ctx, int32_t n_vocab, int32_t n_chunk,
                          const int32_t *tokens)
{
    if (create(w) != 0)
        return 1;
    w->n_vocab = n_vocab;
    w->nv = ntp_kld_row_words(n_vocab);
    w->row = malloc((size_t)w->nv * sizeof(uint16_t));
    if (w->row == NULL) {
        fprintf(stderr, CMD ": --kl-divergence-base %s: out of memory\n", w->path);
        return 1;
    }
    uint8_t head[HEADER_BYTES];
    memcpy(head, MAGIC, 8);
    put_le32(head + 8, (uint32_t)n_ctx);
    put_le32(head + 12, (uint32_t)n_vocab);
    put_le32(head + 16, (uint32_t)n_chunk);
    if (put(w, head, sizeof head) != 0)
        return 1;
    /* The tokens in pieces of 4 KiB, little-endian. */
    const int64_t n = (int64_t)n_chunk * n_ctx;
    uint8_t buf[4096];
    for (int64_t i = 0; i < n;) {
        size_t k = 0;
        for (; k + 4 <= sizeof buf && i < n; k += 4, i++)
            put_le32(buf + k, (uint32_t)tokens[i]);
        if (put(w, buf, k) != 0)
            return 1;
    }
    return 0;
}

int ntp_kld_writer_row(struct ntp_kld_writer *w, const float *logits)
{
    ntp_kld_compress(logits, w->n_vocab, w->row);
    if (big_endian())
        swap_row(w->row, w->nv);
    return put(w, w->row, (size_t)w->nv * sizeof(uint16_t));
}

int ntp_kld_writer_close(struct ntp_kld_writer *w, bool keep)
{
    if (w == NULL)
        return 0;
    int rc = 0;
    if (w->f) {
        if (keep && w->err == 0 && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0))
            w->err = errno ? errno : EIO;
        if (fclose(w->f) != 0 && keep && w->err == 0)
            w->err = errno ? errno : EIO;
        if (keep && w->err != 0) {
            fprintf(stderr, CMD ": --kl-divergence-base %s: write error: %s\n", w->path,
                    strerror(w->err));
            rc = 1;
        }
        if (keep && rc == 0 && rename(w->tmp, w->path) != 0) {
            fprintf(stderr, CMD ": --kl-divergence-base %s: cannot rename '%s' into place: %s\n",
                    w->path, w->tmp, strerror(errno));
            rc = 1;
        }
        if (!keep || rc != 0) {
            unlink(w->tmp);
            /* Said once the header was on its way; an earlier failure has its own message. */
            if (w->row) {
                fprintf(stderr, CMD ": --kl-divergence-base %s: not written\n", w->path);
                rc = 1;
            }
        }
    }
    free(w->row);
    free(w->tmp);
    free(w->path);
    free(w);
    return rc;
}

/* ------------------------------------------------------------ reader */

static int reader_fail(struct ntp_kld_reader *r)
{
    ntp_kld_reader_close(r);
    return 1;
}

/* Bytes of one chunk in the file: its tokens and its rows; 0 when that overflows. */
static int64_t chunk_bytes(int32_t n_ctx, int32_t n_vocab)
{
    const int64_t rows = ntp_kld_rows(n_ctx), nv = ntp_kld_row_words(n_vocab);
    if (rows > 0 && nv > (INT64_MAX / 4 - 4 * (int64_t)n_ctx) / rows)
        return 0;
    return 4 * (int64_t)n_ctx + 2 * rows * nv;
}

/* The header's three numbers, each in range; 0, or 1 after a message. */
static int check_header(const struct ntp_kld_reader *r, int64_t *total)
{
    const char *what = NULL;
    long long v = 0, lo = 0, hi = 0;
    if (r->n_ctx < 4 || r->n_ctx > NTP_CLI_MAX_CTX)
        what = "context size", v = r->n_ctx, lo = 4, hi = NTP_CLI_MAX_CTX;
    else if (r->n_vocab < 1 || r->n_vocab > INT32_MAX - 8)
        what = "vocabulary size", v = r->n_vocab, lo = 1, hi = INT32_MAX - 8;
    else if (r->n_chunk < 1)
        what = "number of chunks", v = r->n_chunk, lo = 1, hi = INT32_MAX;
    if (what) {
        fprintf(stderr,
                CMD ": '%s' is not a usable KL-divergence base: its header gives a %s of %lld "
                    "(%lld .. %lld)\n",
                r->path, what, v, lo, hi);
        return 1;
    }
    const int64_t per = chunk_bytes(r->n_ctx, r->n_vocab);
    if (per == 0 || r->n_chunk > (INT64_MAX - HEADER_BYTES) / per) {
        fprintf(stderr,
                CMD ": '%s' is not a usable KL-divergence base: its header (%d chunks of "
                    "%d tokens, vocabulary %d) describes more bytes than a file can hold\n",
                r->path, r->n_chunk, r->n_ctx, r->n_vocab);
        return 1;
    }
    *total = HEADER_BYTES + r->n_chunk * per;
    return 0;
}

/* Compare the file's size with the layout of its header, when it is a regular file (a pipe's
 * short read is caught as it happens). */
static int check_size(struct ntp_kld_reader *r, int64_t total)
{
    struct stat st;
    if (fstat(fileno(r->f), &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    if (st.st_size == total)
        return 0;
    if (st.st_size < total)
        fprintf(stderr,
                CMD ": '%s' is truncated: %lld bytes, where its header (%d chunks of %d tokens, "
                    "vocabulary %d) needs %lld\n",
                r->path, (long long)st.st_size, r->n_chunk, r->n_ctx, r->n_vocab, (long long)total);
    else
        fprintf(stderr,
                CMD ": '%s' has %lld bytes after the end its header (%d chunks of %d tokens, "
                    "vocabulary %d) gives at byte %lld: not a KL-divergence base of that layout\n",
                r->path, (long long)(st.st_size - total), r->n_chunk, r->n_ctx, r->n_vocab,
                (long long)total);
    return 1;
}

/* fread of n bytes; false on a short read. */
static bool get(struct ntp_kld_reader *r, void *p, size_t n)
{
    return fread(p, 1, n, r->f) == n;
}

static void short_read(const struct ntp_kld_reader *r, const char *what)
{
    if (ferror(r->f))
        fprintf(stderr, CMD ": cannot read '%s': %s\n", r->path, strerror(errno ? errno : EIO));
    else
        fprintf(stderr, CMD ": '%s' is truncated: it ends in %s\n", r->path, what);
}

int ntp_kld_reader_open(const char *path, struct ntp_kld_reader **out)
{
    *out = NULL;
    struct ntp_kld_reader *r = calloc(1, sizeof *r);
    if (r == NULL) {
        fprintf(stderr, CMD ": out of memory\n");
        return 1;
    }
    r->path = path;
    r->f = fopen(path, "rb");
    if (r->f == NULL) {
        fprintf(stderr, CMD ": --kl-divergence-base: cannot open '%s': %s\n", path,
                strerror(errno));
        return reader_fail(r);
    }
    uint8_t head[HEADER_BYTES];
    const size_t got = fread(head, 1, sizeof head, r->f);
    if (got < sizeof head && ferror(r->f)) { /* a folder, say */
        fprintf(stderr, CMD ": --kl-divergence-base: cannot read '%s': %s\n", path,
                strerror(errno ? errno : EIO));
        return reader_fail(r);
    }
    if (got < 8 || memcmp(head, MAGIC, 8) != 0) {
        fprintf(stderr,
                CMD ": '%s' is not a KL-divergence base file (it does not start with \"" MAGIC
                    "\"; write one with --kl-divergence-base FILE without --kl-divergence)\n",
                path);
        return reader_fail(r);
    }
    if (got < sizeof head) {
        short_read(r, "its header");
        return reader_fail(r);
    }
    r->n_ctx = (int32_t)get_le32(head + 8);
    r->n_vocab = (int32_t)get_le32(head + 12);
    r->n_chunk = (int32_t)get_le32(head + 16);
    int64_t total = 0;
    if (check_header(r, &total) != 0 || check_size(r, total) != 0)
        return reader_fail(r);
    const int64_t n_tok = (int64_t)r->n_chunk * r->n_ctx;
    const int64_t row_bytes = (int64_t)ntp_kld_rows(r->n_ctx) * ntp_kld_row_words(r->n_vocab) * 2;
    if ((uint64_t)n_tok > SIZE_MAX / 4 || (uint64_t)row_bytes > SIZE_MAX ||
        (r->tokens = malloc((size_t)n_tok * 4)) == NULL ||
        (r->rows = malloc((size_t)row_bytes)) == NULL) {
        fprintf(stderr, CMD ": '%s': no memory for %lld tokens and a chunk of %lld bytes\n", path,
                (long long)n_tok, (long long)row_bytes);
        return reader_fail(r);
    }
    if (!get(r, r->tokens, (size_t)n_tok * 4)) {
        short_read(r, "its tokens");
        return reader_fail(r);
    }
    for (int64_t i = 0; i < n_tok; i++)
        r->tokens[i] = (int32_t)get_le32((const uint8_t *)&r->tokens[i]);
    *out = r;
    return 0;
}

int ntp_kld_reader_check(const struct ntp_kld_reader *r, int32_t n_vocab, const char *model_name,
                         const int32_t *text_tokens, int64_t n_text, const char *text_name)
{
    if (r->n_vocab != n_vocab) {
        fprintf(stderr,
                CMD ": '%s' holds log-probabilities over a vocabulary of %d tokens, but the "
                    "model '%s' has %d: the base was made with another model's vocabulary\n",
                r->path, r->n_vocab, model_name, n_vocab);
        return 1;
    }
    const int64_t n = (int64_t)r->n_chunk * r->n_ctx;
    if (text_tokens && n_text < n) {
        fprintf(stderr,
                CMD ": '%s' holds %d chunks of %d tokens (%lld), but '%s' tokenizes to %lld: the "
                    "base is of another text (or was made with another tokenizer)\n",
                r->path, r->n_chunk, r->n_ctx, (long long)n, text_name, (long long)n_text);
        return 1;
    }
    for (int64_t i = 0; i < n; i++) {
        if (text_tokens && r->tokens[i] != text_tokens[i]) {
            fprintf(stderr,
                    CMD ": '%s' is of another text: its token %lld (chunk %lld, position %lld) is "
                        "%d, where '%s' tokenizes to %d (or the base was made with another "
                        "tokenizer)\n",
                    r->path, (long long)i, (long long)(i / r->n_ctx + 1), (long long)(i % r->n_ctx),
                    r->tokens[i], text_name, text_tokens[i]);
            return 1;
        }
        if (r->tokens[i] < 0 || r->tokens[i] >= n_vocab) {
            fprintf(stderr,
                    CMD ": '%s' is damaged: its token %lld is %d, outside the vocabulary "
                        "(0 .. %d)\n",
                    r->path, (long long)i, r->tokens[i], n_vocab - 1);
            return 1;
        }
    }
    return 0;
}

int ntp_kld_reader_chunk(struct ntp_kld_reader *r)
{
    const int32_t rows = ntp_kld_rows(r->n_ctx);
    const int64_t nv = ntp_kld_row_words(r->n_vocab);
    if (r->next >= r->n_chunk || !get(r, r->rows, (size_t)(rows * nv) * sizeof(uint16_t))) {
        char what[64];
        snprintf(what, sizeof what, "chunk %d of %d", r->next + 1, r->n_chunk);
        short_read(r, what);
        return 1;
    }
    for (int32_t i = 0; i < rows; i++) {
        uint16_t *row = r->rows + i * nv;
        if (big_endian())
            swap_row(row, nv);
        const float scale = row_float(row, 0), min_log_prob = row_float(row, 2);
        if (!isfinite(scale) || scale < 0 || !isfinite(min_log_prob)) {
            fprintf(stderr,
                    CMD ": '%s' is damaged: row %d of chunk %d has scale %g and minimum "
                        "log-probability %g\n",
                    r->path, i, r->next + 1, (double)scale, (double)min_log_prob);
            return 1;
        }
    }
    r->next++;
    return 0;
}

void ntp_kld_reader_close(struct ntp_kld_reader *r)
{
    if (r == NULL)
        return;
    if (r->f)
        fclose(r->f);
    free(r->tokens);
    free(r->rows);
    free(r);
}

/* ------------------------------------------------------------ statistics */

int ntp_kld_stats_init(struct ntp_kld_stats *s, int64_t n)
{
    memset(s, 0, sizeof *s);
    s->kld = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    s->p_diff = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (s->kld == NULL || s->p_diff == NULL) {
        fprintf(stderr, CMD ": no memory for the statistics of %lld tokens\n", (long long)n);
        ntp_kld_stats_free(s);
        return 1;
    }
    s->cap = n;
    return 0;
}

void ntp_kld_stats_free(struct ntp_kld_stats *s)
{
    free(s->kld);
    free(s->p_diff);
    s->kld = s->p_diff = NULL;
    s->cap = 0;
}

/* Single-precision steps where llama-perplexity takes them, so the figures agree to the digit. */
void ntp_kld_stats_add(struct ntp_kld_stats *s, const float *logits, int32_t n_vocab,
                       const uint16_t *base, int32_t tok)
{
    float hi = logits[0];
    int32_t top = 0;
    for (int32_t v = 1; v < n_vocab; v++)
        if (logits[v] > hi) {
            hi = logits[v];
            top = v;
        }
    double z = 0.0;
    for (int32_t v = 0; v < n_vocab; v++)
        z += expf(logits[v] - hi);
    const float log_z = (float)log(z);
    const float scale = row_float(base, 0), min_log_prob = row_float(base, 2);
    const uint16_t *q = base + 4;

    const float nll = hi + log_z - logits[tok];
    const float nll_base = -(scale * q[tok] + min_log_prob);
    s->sum_nll += nll;
    s->sum_nll2 += nll * nll; /* products in float, as there */
    s->sum_nll_base += nll_base;
    s->sum_nll_base2 += nll_base * nll_base;
    s->sum_nll_nll_base += nll * nll_base;

    /* log p(v) = logits[v] - norm */
    const float norm = hi + log_z;
    double kld = 0.0;
    int32_t top_base = 0;
    float best_base = 0.0f;
    for (int32_t v = 0; v < n_vocab; v++) {
        const float lp_base = scale * q[v] + min_log_prob;
        if (v == 0 || lp_base > best_base) {
            best_base = lp_base;
            top_base = v;
        }
        if (lp_base > -LOG_PROB_RANGE)
            kld += expf(lp_base) * (lp_base - logits[v] + norm);
    }
    s->sum_kld += kld;
    s->sum_kld2 += kld * kld;
    s->n_same_top += top == top_base;

    const float p_diff = expf(-nll) - expf(-nll_base);
    const double d2 = p_diff * p_diff;
    s->sum_p_diff += p_diff;
    s->sum_p_diff2 += d2;
    s->sum_p_diff4 += d2 * d2;
    s->max_p_diff = fabsf(p_diff) > s->max_p_diff ? fabsf(p_diff) : s->max_p_diff;
    if (s->count < s->cap) {
        s->kld[s->count] = (float)kld;
        s->p_diff[s->count] = p_diff;
    }
    s->count++;
}

struct est {
    double val, unc;
};

/* Mean of n values from their sum and sum of squares, and its standard error (0 for n <= 10). */
static struct est mean_unc(double sum, double sum2, int64_t n)
{
    if (n < 1)
        return (struct est){0, 0};
    const double mean = sum / (double)n, var = sum2 / (double)n - mean * mean;
    return (struct est){mean, var > 0 && n > 10 ? sqrt(var / (double)(n - 1)) : 0.0};
}

/* Covariance of the two means (0 for n < 10). */
static double mean_cov(double sum_a, double sum_b, double sum_ab, int64_t n)
{
    if (n < 10)
        return 0.0;
    const double c = sum_ab / (double)n - (sum_a / (double)n) * (sum_b / (double)n);
    return c / (double)(n - 1);
}

/* sqrt that reads a difference rounded below zero as zero. */
static double sqrt0(double x)
{
    return x > 0 ? sqrt(x) : 0.0;
}

/* Root of the mean square Δp and its uncertainty (half the relative one of the mean square). */
static struct est rms_p_diff(const struct ntp_kld_stats *s)
{
    const struct est ms = mean_unc(s->sum_p_diff2, s->sum_p_diff4, s->count);
    const double rms = sqrt0(ms.val);
    return (struct est){rms, rms > 0 ? 0.5 / rms * ms.unc : 0.0};
}

/* The share of tokens whose top token agrees, and its binomial standard error. */
static struct est same_top(const struct ntp_kld_stats *s)
{
    const double p = s->count ? (double)s->n_same_top / (double)s->count : 0.0;
    return (struct est){p, s->count > 1 ? sqrt0(p * (1 - p) / (double)(s->count - 1)) : 0.0};
}

/* ln PPL(Q) - ln PPL(base), its uncertainty counting their covariance. */
static struct est ln_ratio(const struct ntp_kld_stats *s)
{
    const struct est q = mean_unc(s->sum_nll, s->sum_nll2, s->count);
    const struct est b = mean_unc(s->sum_nll_base, s->sum_nll_base2, s->count);
    const double cov = mean_cov(s->sum_nll, s->sum_nll_base, s->sum_nll_nll_base, s->count);
    return (struct est){q.val - b.val, sqrt0(q.unc * q.unc + b.unc * b.unc - 2.0 * cov)};
}

void ntp_kld_print_head(FILE *f)
{
    fprintf(f, "\nchunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence"
               "              Δp RMS            Same top p\n");
}

void ntp_kld_print_chunk(FILE *f, const struct ntp_kld_stats *s, int32_t chunk)
{
    const struct est lq = mean_unc(s->sum_nll, s->sum_nll2, s->count);
    const struct est ratio = ln_ratio(s), kld = mean_unc(s->sum_kld, s->sum_kld2, s->count);
    const struct est rms = rms_p_diff(s), top = same_top(s);
    const double ppl = exp(lq.val);
    fprintf(f,
            "%4d    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%    "
            "%6.3f ± %6.3f %%\n",
            chunk, ppl, ppl * lq.unc, ratio.val, ratio.unc, kld.val, kld.unc, 100.0 * rms.val,
            100.0 * rms.unc, 100.0 * top.val, 100.0 * top.unc);
}

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Linear interpolation between the sorted values around fraction * (n - 1), in single precision. */
static float percentile(const float *v, int64_t n, float fraction)
{
    if (fraction <= 0)
        return v[0];
    if (fraction >= 1)
        return v[n - 1];
    float p = fraction * (float)(n - 1);
    const int64_t i = (int64_t)p;
    p -= (float)i;
    return (1 - p) * v[i] + p * v[i + 1 < n ? i + 1 : n - 1];
}

static float median(const float *v, int64_t n)
{
    return n % 2 == 0 ? 0.5f * (v[n / 2] + v[n / 2 - 1]) : v[n / 2];
}

static void print_ppl(FILE *f, const struct ntp_kld_stats *s)
{
    const struct est lq = mean_unc(s->sum_nll, s->sum_nll2, s->count);
    const struct est lb = mean_unc(s->sum_nll_base, s->sum_nll_base2, s->count);
    const double cov = mean_cov(s->sum_nll, s->sum_nll_base, s->sum_nll_nll_base, s->count);
    const double ppl = exp(lq.val), ppl_unc = ppl * lq.unc;
    const double base = exp(lb.val), base_unc = base * lb.unc;
    const struct est ratio = ln_ratio(s);
    const double cor = lq.unc * lb.unc > 0 ? cov / (lq.unc * lb.unc) : 0.0;
    fprintf(f, "====== Perplexity statistics ======\n");
    fprintf(f, "Mean PPL(Q)                   : %10.6f ± %10.6f\n", ppl, ppl_unc);
    fprintf(f, "Mean PPL(base)                : %10.6f ± %10.6f\n", base, base_unc);
    fprintf(f, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100.0 * cor);
    fprintf(f, "Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", ratio.val, ratio.unc);
    fprintf(f, "Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", exp(ratio.val),
            exp(ratio.val) * ratio.unc);
    fprintf(f, "Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n\n", ppl - base,
            sqrt0(ppl_unc * ppl_unc + base_unc * base_unc - 2.0 * ppl * base * cov));
}

bool ntp_kld_print_summary(FILE *f, struct ntp_kld_stats *s)
{
    const int64_t n = s->count < s->cap ? s->count : s->cap;
    if (n < 100)
        return false;
    qsort(s->kld, (size_t)n, sizeof(float), cmp_float);
    qsort(s->p_diff, (size_t)n, sizeof(float), cmp_float);
    print_ppl(f, s);

    static const struct {
        const char *label;
        float fraction;
    } kld_at[] = {{"99.9%", 0.999f}, {"99.0%", 0.990f}, {"95.0%", 0.950f},
                  {"90.0%", 0.900f}, {NULL, 0.5f},      {"10.0%", 0.100f},
                  {" 5.0%", 0.050f}, {" 1.0%", 0.010f}, {" 0.1%", 0.001f}},
      p_at[] = {{"99.9%", 0.999f}, {"99.0%", 0.990f}, {"95.0%", 0.950f}, {"90.0%", 0.900f},
                {"75.0%", 0.750f}, {NULL, 0.5f},      {"25.0%", 0.250f}, {"10.0%", 0.100f},
                {" 5.0%", 0.050f}, {" 1.0%", 0.010f}, {" 0.1%", 0.001f}};
    const struct est kld = mean_unc(s->sum_kld, s->sum_kld2, s->count);
    fprintf(f, "====== KL divergence statistics ======\n");
    fprintf(f, "Mean    KLD: %10.6f ± %10.6f\n", kld.val, kld.unc);
    fprintf(f, "Maximum KLD: %10.6f\n", (double)s->kld[n - 1]);
    for (size_t i = 0; i < sizeof kld_at / sizeof kld_at[0]; i++)
        if (kld_at[i].label)
            fprintf(f, "%s   KLD: %10.6f\n", kld_at[i].label,
                    (double)percentile(s->kld, n, kld_at[i].fraction));
        else
            fprintf(f, "Median  KLD: %10.6f\n", (double)median(s->kld, n));
    fprintf(f, "Minimum KLD: %10.6f\n\n", (double)s->kld[0]);

    const struct est dp = mean_unc(s->sum_p_diff, s->sum_p_diff2, s->count);
    fprintf(f, "====== Token probability statistics ======\n");
    fprintf(f, "Mean    Δp: %6.3f ± %5.3f %%\n", 100.0 * dp.val, 100.0 * dp.unc);
    fprintf(f, "Maximum Δp: %6.3f%%\n", 100.0 * s->p_diff[n - 1]);
    for (size_t i = 0; i < sizeof p_at / sizeof p_at[0]; i++)
        if (p_at[i].label)
            fprintf(f, "%s   Δp: %6.3f%%\n", p_at[i].label,
                    100.0 * percentile(s->p_diff, n, p_at[i].fraction));
        else
            fprintf(f, "Median  Δp: %6.3f%%\n", 100.0 * median(s->p_diff, n));
    fprintf(f, "Minimum Δp: %6.3f%%\n", 100.0 * s->p_diff[0]);
    const struct est rms = rms_p_diff(s), top = same_top(s);
    fprintf(f, "RMS Δp    : %6.3f ± %5.3f %%\n", 100.0 * rms.val, 100.0 * rms.unc);
    fprintf(f, "Same top p: %6.3f ± %5.3f %%\n", 100.0 * top.val, 100.0 * top.unc);
    return true;
}
