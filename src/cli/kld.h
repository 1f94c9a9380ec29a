/*
 * kld.h - KL divergence for `numatp perplexity`, in the file format of
 * llama.cpp's llama-perplexity (--kl-divergence-base FILE writes it,
 * --kl-divergence reads it), so that a base written by either program is read
 * by the other.
 *
 * The file, all little-endian:
 *
 *   char     magic[8]                 "_logits_"
 *   int32    n_ctx                    tokens per chunk (-c)
 *   int32    n_vocab
 *   int32    n_chunk
 *   int32    tokens[n_chunk * n_ctx]  the text as tokenized (with BOS first when
 *                                     the model adds one), chunk after chunk; the
 *                                     BOS that replaces each chunk's first token
 *                                     at evaluation is not written
 *   then for each chunk, one row per scored position i = 0 .. n_ctx - 2 - n_ctx/2
 *   (the logits at position n_ctx/2 + i, which predict token n_ctx/2 + i + 1 of the
 *   chunk), each row nv = 2 * ((n_vocab + 1) / 2) + 4 uint16 words:
 *     float  scale                    words 0-1
 *     float  min_log_prob             words 2-3
 *     uint16 q[n_vocab]               log p(token v) = scale * q[v] + min_log_prob
 *     uint16 0                        when n_vocab is odd (the row stays 4-aligned)
 *
 * A row keeps the log-probabilities down to 16 below the largest logit: with
 * max and min the row's largest and smallest logits and min raised to max - 16,
 * scale = (max - min) / 65535, min_log_prob = min - max - log(sum exp(l - max)),
 * q[v] = round((l[v] - min) / scale) for l[v] > min, else 0. So a stored
 * log-probability is off by at most scale / 2 <= 16 / 131070 (1.2e-4), and the
 * reader leaves out the tokens whose stored log-probability is -16 or less.
 *
 * Statistics, per scored token: the KL divergence sum over v (log p_base >
 * -16) of p_base(v) * (log p_base(v) - log p(v)); whether the top token (the
 * first largest) of the model and of the base agree; Δp = p(tok) - p_base(tok)
 * of the token that follows; -log p and -log p_base of that token for the two
 * perplexities. Means and uncertainties as llama-perplexity reports them.
 */
#ifndef NTP_CLI_KLD_H
#define NTP_CLI_KLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* uint16 words of one row of n_vocab log-probabilities (scale and minimum included). */
static inline int64_t ntp_kld_row_words(int32_t n_vocab)
{
    return 2 * (((int64_t)n_vocab + 1) / 2) + 4;
}

/* Scored positions (rows) of a chunk of n_ctx tokens: its second half less the last one. */
static inline int32_t ntp_kld_rows(int32_t n_ctx)
{
    return n_ctx - 1 - n_ctx / 2;
}

/* Compress one row of logits into out[0, ntp_kld_row_words(n_vocab)) as the format says. */
void ntp_kld_compress(const float *logits, int32_t n_vocab, uint16_t *out);

/* ------------------------------------------------------------ writer */

struct ntp_kld_writer;

/*
 * Start writing a base file at path, checking it before any work is done: a
 * regular file there is replaced only at the end, anything else (a directory,
 * FIFO, device, symbolic link, read-only file) is refused, as is a folder
 * where no file can be made. Nothing is created yet: the header makes a fresh
 * temporary file beside path, which ntp_kld_writer_close renames over it. 0,
 * or 1 after a message naming path.
 */
int ntp_kld_writer_open(const char *path, struct ntp_kld_writer **w);

/* Create the temporary file; the header and the n_chunk * n_ctx tokens. 0, or 1 after a message. */
int ntp_kld_writer_header(struct ntp_kld_writer *w, int32_t n_ctx, int32_t n_vocab, int32_t n_chunk,
                          const int32_t *tokens);

/* One row (the next scored position's logits). 0, or 1 after a message (a write error). */
int ntp_kld_writer_row(struct ntp_kld_writer *w, const float *logits);

/*
 * keep: flush, sync and rename the file into place (0, or 1 after a
 * message); otherwise (an error or Ctrl-C on the way) remove the temporary
 * file and leave path as it was (1 when a message was printed saying so, else 0).
 * Frees w either way; NULL is ignored.
 */
int ntp_kld_writer_close(struct ntp_kld_writer *w, bool keep);

/* ------------------------------------------------------------ reader */

struct ntp_kld_reader {
    const char *path;
    FILE *f;
    int32_t n_ctx, n_vocab, n_chunk;
    int32_t *tokens; /* n_chunk * n_ctx */
    uint16_t *rows;  /* one chunk: ntp_kld_rows(n_ctx) rows of ntp_kld_row_words(n_vocab) */
    int32_t next;    /* the chunk ntp_kld_reader_chunk reads next */
};

/*
 * Open a base file and read its header and tokens: a missing file, one
 * without the magic, a header out of range, a size other than the header's
 * layout gives (truncated, or bytes after the last chunk) are refused. 0, or
 * 1 after a message naming path and what is wrong.
 */
int ntp_kld_reader_open(const char *path, struct ntp_kld_reader **r);

/*
 * Check the file against the model and text of this run: n_vocab, and the
 * tokens, against text_tokens[0, n_text) when a text was given (it must start
 * with the file's n_chunk * n_ctx tokens), else each one below n_vocab.
 * text_name names the text in messages. 0, or 1 after a message naming the mismatch.
 */
int ntp_kld_reader_check(const struct ntp_kld_reader *r, int32_t n_vocab, const char *model_name,
                         const int32_t *text_tokens, int64_t n_text, const char *text_name);

/* Read the next chunk's rows into r->rows. 0, or 1 after a message (short read, bad row). */
int ntp_kld_reader_chunk(struct ntp_kld_reader *r);

void ntp_kld_reader_close(struct ntp_kld_reader *r);

/* ------------------------------------------------------------ statistics */

struct ntp_kld_stats {
    double sum_nll, sum_nll2;           /* -log p(tok) of the model, and its square */
    double sum_nll_base, sum_nll_base2; /* -log p_base(tok) */
    double sum_nll_nll_base;            /* their product */
    double sum_kld, sum_kld2;
    double sum_p_diff, sum_p_diff2, sum_p_diff4;
    float max_p_diff; /* largest |Δp| */
    int64_t n_same_top;
    int64_t count; /* tokens scored */
    float *kld;    /* each token's KL divergence, [count] */
    float *p_diff; /* each token's Δp, [count] */
    int64_t cap;   /* room in kld and p_diff */
};

/* Room for n tokens' values. 0, or 1 after a message (out of memory). */
int ntp_kld_stats_init(struct ntp_kld_stats *s, int64_t n);
void ntp_kld_stats_free(struct ntp_kld_stats *s);

/*
 * Score one position: logits (n_vocab) of the model, base its row of the file,
 * tok the token that follows. At most cap calls.
 */
void ntp_kld_stats_add(struct ntp_kld_stats *s, const float *logits, int32_t n_vocab,
                       const uint16_t *base, int32_t tok);

/* The line above the per-chunk lines, and the line of a chunk (1-based) with the totals so far. */
void ntp_kld_print_head(FILE *f);
void ntp_kld_print_chunk(FILE *f, const struct ntp_kld_stats *s, int32_t chunk);

/*
 * The closing sections (perplexity, KL divergence and token probability
 * statistics). As llama-perplexity, none below 100 scored tokens: false then.
 * Sorts s->kld and s->p_diff.
 */
bool ntp_kld_print_summary(FILE *f, struct ntp_kld_stats *s);

#endif /* NTP_CLI_KLD_H */
