/*
 * encode.c - text to token ids, following llama.cpp's llama_vocab::tokenize:
 * special tokens are cut out of the text first (longest first), then each
 * stretch of plain text goes through the vocabulary's algorithm:
 *  - SPM (llm_tokenizer_spm): spaces become U+2581, a space is put in front
 *    when asked, and adjacent symbols are merged best score first while the
 *    merged text is a token; what is left unmatched falls back to bytes;
 *  - BPE (llm_tokenizer_bpe): the pre-tokenizer cuts words, each word's bytes
 *    become GPT-2 symbols, and pairs are merged lowest merge rank first.
 * Both pick the next merge from a priority queue; ties go to the leftmost
 * pair, as llama.cpp's comparators do.
 */
#include "tokenizer/tok_int.h"
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

#define SPM_SP "\xe2\x96\x81"

/* ------------------------------------------------------- small vectors */

/* A growable array of elem-sized entries; the first allocation failure sticks. */
struct vec {
    void *p;
    size_t n, cap;
    bool oom;
};

static void *vec_push(struct vec *v, size_t elem)
{
    if (v->oom)
        return NULL;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        void *q = realloc(v->p, cap * elem);
        if (!q) {
            v->oom = true;
            return NULL;
        }
        v->p = q;
        v->cap = cap;
    }
    return (char *)v->p + elem * v->n++;
}

static void push_id(struct vec *ids, int32_t id)
{
    int32_t *slot = vec_push(ids, sizeof id);
    if (slot)
        *slot = id;
}

/* --------------------------------------------------- special-token cut */

/* A piece of the text to tokenize, or a special token already found. */
struct frag {
    int32_t tok; /* token id, or NTP_TOKEN_NONE for text */
    size_t off;  /* text: start in the input */
    size_t len;  /* text: bytes (at least 1) */
};

static bool c_isspace(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static void push_frag(struct vec *v, int32_t tok, size_t off, size_t len)
{
    struct frag *f = vec_push(v, sizeof *f);
    if (f)
        *f = (struct frag){tok, off, len};
}

/* Cut every occurrence of token id out of text fragment f, as tokenizer_st_partition does. */
static void cut_token(const ntp_tokenizer *t, int32_t id, const char *text, const struct frag *f,
                      struct vec *out)
{
    const struct ntp__tok *e = &t->tok[id];
    const char *tt = t->text + e->off;
    size_t pos = f->off, end = f->off + f->len;
    while (end - pos >= e->len) {
        const char *m = memmem(text + pos, end - pos, tt, e->len);
        if (!m)
            break;
        size_t at = (size_t)(m - text), left = at - pos;
        if (e->attr & NTP__TOK_LSTRIP)
            while (left > 0 && c_isspace(text[pos + left - 1]))
                left--;
        if (left > 0)
            push_frag(out, NTP_TOKEN_NONE, pos, left);
        push_frag(out, id, 0, 0);
        pos = at + e->len;
        if (e->attr & NTP__TOK_RSTRIP)
            while (pos < end && c_isspace(text[pos]))
                pos++;
    }
    if (pos < end)
        push_frag(out, NTP_TOKEN_NONE, pos, end - pos);
}

static ntp_status partition(const ntp_tokenizer *t, const char *text, size_t len,
                            bool parse_special, struct vec *frags)
{
    struct vec next = {0};
    frags->n = 0;
    if (len > 0)
        push_frag(frags, NTP_TOKEN_NONE, 0, len);
    for (size_t k = 0; k < t->n_special && !frags->oom; k++) {
        int32_t id = t->special[k];
        /* Without parse_special only user-defined tokens are recognised. */
        if (!parse_special && (t->tok[id].attr & (NTP__TOK_CONTROL | NTP__TOK_UNKNOWN)))
            continue;
        next.n = 0;
        for (size_t i = 0; i < frags->n; i++) {
            const struct frag *f = (const struct frag *)frags->p + i;
            if (f->tok != NTP_TOKEN_NONE)
                push_frag(&next, f->tok, 0, 0);
            else
                cut_token(t, id, text, f, &next);
        }
        struct vec tmp = *frags;
        *frags = next;
        next = tmp;
        frags->oom |= next.oom;
    }
    free(next.p);
    if (frags->oom)
        return ntp__error(NTP_E_NOMEM, "tokenizer: out of memory cutting special tokens");
    return NTP_OK;
}

/* ------------------------------------------------------ merge machinery */

/* One symbol of the text being merged; merged-away symbols have n == 0. */
struct sym {
    int32_t prev, next; /* neighbours in the chain, -1 at the ends */
    size_t off;         /* start of its bytes in the text being merged */
    size_t n;           /* bytes */
};

/* A candidate merge of symbols left and right (their sizes summed to size when queued). */
struct bigram {
    double prio; /* higher first: SPM score, or minus the BPE rank */
    int32_t left, right;
    size_t size;
};

static bool bigram_before(const struct bigram *a, const struct bigram *b)
{
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

static void heap_push(struct vec *h, struct bigram b)
{
    struct bigram *slot = vec_push(h, sizeof b);
    if (!slot)
        return;
    struct bigram *a = h->p;
    size_t i = h->n - 1;
    while (i > 0 && bigram_before(&b, &a[(i - 1) / 2])) {
        a[i] = a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    a[i] = b;
}

static struct bigram heap_pop(struct vec *h)
{
    struct bigram *a = h->p, top = a[0], last = a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && bigram_before(&a[c + 1], &a[c]))
            c++;
        if (!bigram_before(&a[c], &last))
            break;
        a[i] = a[c];
        i = c;
    }
    if (h->n > 0)
        a[i] = last;
    return top;
}

/* Split s[0, n) into one symbol per UTF-8 sequence (a cut-off tail is its own symbol). */
static void split_symbols(const char *s, size_t n, struct vec *syms)
{
    syms->n = 0;
    for (size_t off = 0; off < n;) {
        size_t len = ntp__utf8_seq_len((unsigned char)s[off]);
        if (len > n - off)
            len = n - off;
        struct sym *y = vec_push(syms, sizeof *y);
        if (!y)
            return;
        *y = (struct sym){(int32_t)syms->n - 2, off + len == n ? -1 : (int32_t)syms->n, off, len};
        off += len;
    }
}

/* Merge the right symbol of b into its left one; false when b is stale. */
static bool apply_bigram(struct sym *sy, const struct bigram *b)
{
    struct sym *l = &sy[b->left], *r = &sy[b->right];
    if (l->n == 0 || r->n == 0 || l->n + r->n != b->size)
        return false;
    l->n += r->n;
    r->n = 0;
    l->next = r->next;
    if (r->next >= 0)
        sy[r->next].prev = b->left;
    return true;
}

/* Scratch space of one encode call. */
struct work {
    struct vec ids;        /* int32_t: the result */
    struct vec frags;      /* struct frag: text and special tokens */
    struct vec bytes;      /* char: the text being merged */
    struct vec syms;       /* struct sym: its symbols */
    struct vec heap;       /* struct bigram: candidate merges */
    struct vec cps;        /* uint32_t: code points of a BPE fragment */
    struct ntp__segs segs; /* word lengths of a BPE fragment */
};

static bool work_oom(const struct work *w)
{
    return w->ids.oom || w->frags.oom || w->bytes.oom || w->syms.oom || w->heap.oom || w->cps.oom;
}

static void work_free(struct work *w)
{
    free(w->ids.p);
    free(w->frags.p);
    free(w->bytes.p);
    free(w->syms.p);
    free(w->heap.p);
    free(w->cps.p);
    ntp__segs_free(&w->segs);
}

static void put_bytes(struct vec *v, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *slot = vec_push(v, 1);
        if (!slot)
            return;
        *slot = s[i];
    }
}

/* Merge w->syms over w->bytes until the queue runs dry; try() queues one pair. */
typedef void (*try_fn)(const ntp_tokenizer *t, struct work *w, int32_t left, int32_t right);

static void merge_all(const ntp_tokenizer *t, struct work *w, try_fn try)
{
    w->heap.n = 0;
    for (size_t i = 1; i < w->syms.n; i++)
        try(t, w, (int32_t)i - 1, (int32_t)i);
    while (w->heap.n > 0 && !w->heap.oom) {
        struct bigram b = heap_pop(&w->heap);
        struct sym *sy = w->syms.p;
        if (!apply_bigram(sy, &b))
            continue;
        try(t, w, sy[b.left].prev, b.left);
        try(t, w, b.left, sy[b.left].next);
    }
}

/* ------------------------------------------------------------------ SPM */

static void spm_try(const ntp_tokenizer *t, struct work *w, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return;
    const struct sym *sy = w->syms.p;
    const char *s = w->bytes.p;
    size_t size = sy[left].n + sy[right].n;
    int32_t id = ntp__tokenizer_find(t, s + sy[left].off, size);
    if (id != NTP_TOKEN_NONE)
        heap_push(&w->heap, (struct bigram){t->tok[id].score, left, right, size});
}

/*
 * A final symbol is a token, or a single character no token spells; llama.cpp
 * then looks the text up among earlier merges, which can only hold texts of
 * two characters or more, so for valid UTF-8 it always ends in byte tokens.
 */
static void spm_emit(const ntp_tokenizer *t, struct work *w, const struct sym *y)
{
    const char *s = (const char *)w->bytes.p + y->off;
    int32_t id = ntp__tokenizer_find(t, s, y->n);
    if (id != NTP_TOKEN_NONE) {
        push_id(&w->ids, id);
        return;
    }
    for (size_t j = 0; j < y->n; j++) {
        int32_t b = t->byte_tok[(unsigned char)s[j]];
        /* llama.cpp throws when a vocabulary lacks byte tokens; we fall back to <unk>. */
        if (b == NTP_TOKEN_NONE)
            b = t->unk;
        if (b != NTP_TOKEN_NONE)
            push_id(&w->ids, b);
    }
}

/* One text fragment: spaces become U+2581 (with an optional leading one), then merge by score. */
static void spm_fragment(const ntp_tokenizer *t, struct work *w, const char *text, size_t len,
                         bool prefix)
{
    w->bytes.n = 0;
    if (prefix)
        put_bytes(&w->bytes, SPM_SP, 3);
    for (size_t i = 0; i < len; i++)
        put_bytes(&w->bytes, text[i] == ' ' ? SPM_SP : text + i, text[i] == ' ' ? 3 : 1);
    split_symbols(w->bytes.p, w->bytes.n, &w->syms);
    if (work_oom(w))
        return;
    merge_all(t, w, spm_try);
    for (int32_t i = w->syms.n ? 0 : -1; i != -1 && !work_oom(w);
         i = ((const struct sym *)w->syms.p)[i].next)
        spm_emit(t, w, (const struct sym *)w->syms.p + i);
}

static void spm_encode(const ntp_tokenizer *t, struct work *w, const char *text, bool add_special)
{
    bool prev_special = true; /* the text's start counts as following a special token */
    if (add_special && t->add_bos)
        push_id(&w->ids, t->bos);
    for (size_t i = 0; i < w->frags.n && !work_oom(w); i++) {
        const struct frag f = ((const struct frag *)w->frags.p)[i];
        if (f.tok != NTP_TOKEN_NONE) {
            push_id(&w->ids, f.tok);
            prev_special = true;
        } else {
            spm_fragment(t, w, text + f.off, f.len, t->add_space_prefix && prev_special);
            prev_special = false;
        }
    }
    if (add_special && t->add_eos)
        push_id(&w->ids, t->eos);
}

/* ------------------------------------------------------------------ BPE */

static void bpe_try(const ntp_tokenizer *t, struct work *w, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return;
    const struct sym *sy = w->syms.p;
    const char *s = w->bytes.p;
    int32_t rank =
        ntp__tok_merge_rank(t, s + sy[left].off, sy[left].n, s + sy[right].off, sy[right].n);
    if (rank >= 0)
        heap_push(&w->heap, (struct bigram){-(double)rank, left, right, sy[left].n + sy[right].n});
}

/* A final symbol that is no token: llama.cpp tries each of its bytes as a one-byte token. */
static void bpe_emit(const ntp_tokenizer *t, struct work *w, const char *s, size_t n)
{
    int32_t id = ntp__tokenizer_find(t, s, n);
    if (id != NTP_TOKEN_NONE) {
        push_id(&w->ids, id);
        return;
    }
    for (size_t j = 0; j < n; j++) {
        id = ntp__tokenizer_find(t, s + j, 1);
        if (id != NTP_TOKEN_NONE)
            push_id(&w->ids, id);
    }
}

/* One word: its bytes as GPT-2 symbols, then merge by rank (or take it whole). */
static void bpe_word(const ntp_tokenizer *t, struct work *w, const uint32_t *cps, size_t n)
{
    w->bytes.n = 0;
    for (size_t i = 0; i < n; i++) {
        char u[4], g[4];
        size_t nu = ntp__utf8_put(cps[i], u);
        for (size_t k = 0; k < nu; k++)
            put_bytes(&w->bytes, g, ntp__utf8_put(ntp__gpt2_byte_to_cp((uint8_t)u[k]), g));
    }
    if (work_oom(w))
        return;
    const char *s = w->bytes.p;
    if (t->ignore_merges && ntp__tokenizer_find(t, s, w->bytes.n) != NTP_TOKEN_NONE) {
        push_id(&w->ids, ntp__tokenizer_find(t, s, w->bytes.n));
        return;
    }
    split_symbols(s, w->bytes.n, &w->syms);
    if (work_oom(w))
        return;
    merge_all(t, w, bpe_try);
    for (size_t i = 0; i < w->syms.n && !work_oom(w); i++) {
        const struct sym *y = (const struct sym *)w->syms.p + i;
        if (y->n > 0)
            bpe_emit(t, w, (const char *)w->bytes.p + y->off, y->n);
    }
}

static ntp_status bpe_fragment(const ntp_tokenizer *t, struct work *w, const char *text, size_t len)
{
    w->cps.n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t *cp = vec_push(&w->cps, sizeof *cp);
        if (!cp)
            return NTP_OK; /* reported through work_oom */
        *cp = ntp__utf8_next(text, &i);
    }
    w->segs.n = 0;
    ntp_status st = ntp__pre_split(t->pre->kind, w->cps.p, w->cps.n, &w->segs);
    size_t start = 0;
    for (size_t k = 0; k < w->segs.n && st == NTP_OK && !work_oom(w); k++) {
        bpe_word(t, w, (const uint32_t *)w->cps.p + start, w->segs.len[k]);
        start += w->segs.len[k];
    }
    return st;
}

static ntp_status bpe_encode(const ntp_tokenizer *t, struct work *w, const char *text,
                             bool add_special)
{
    ntp_status st = NTP_OK;
    if (add_special && t->add_bos)
        push_id(&w->ids, t->bos);
    for (size_t i = 0; i < w->frags.n && st == NTP_OK && !work_oom(w); i++) {
        const struct frag f = ((const struct frag *)w->frags.p)[i];
        if (f.tok != NTP_TOKEN_NONE)
            push_id(&w->ids, f.tok);
        else
            st = bpe_fragment(t, w, text + f.off, f.len);
    }
    if (add_special && t->add_eos)
        push_id(&w->ids, t->eos);
    return st;
}

/* ---------------------------------------------------------------- entry */

ntp_status ntp__tokenizer_encode(const ntp_tokenizer *t, const char *text, size_t len,
                                 bool add_special, bool parse_special, int32_t *ids, size_t cap,
                                 size_t *n_out)
{
    struct work w = {0};
    size_t bad;
    ntp_status st;
    *n_out = 0;
    if (len > 0 && !text)
        return ntp__error(NTP_E_INVALID_ARG, "tokenizer: text is NULL but its length is %zu", len);
    if (!ntp__utf8_valid(text, len, &bad))
        return ntp__error(NTP_E_INVALID_ARG,
                          "tokenizer: text is not valid UTF-8 at byte offset "
                          "%zu (byte 0x%02X)",
                          bad, (unsigned char)text[bad]);
    st = partition(t, text, len, parse_special, &w.frags);
    if (st == NTP_OK && t->model == NTP__TOK_SPM)
        spm_encode(t, &w, text, add_special);
    else if (st == NTP_OK)
        st = bpe_encode(t, &w, text, add_special);
    if (st == NTP_OK && work_oom(&w))
        st = ntp__error(NTP_E_NOMEM, "tokenizer: out of memory tokenizing %zu bytes", len);
    if (st == NTP_OK) {
        *n_out = w.ids.n;
        if (w.ids.n > cap)
            st =
                ntp__error(NTP_E_OVERFLOW, "tokenizer: %zu tokens do not fit in %zu", w.ids.n, cap);
        else if (w.ids.n > 0)
            memcpy(ids, w.ids.p, w.ids.n * sizeof *ids);
    }
    work_free(&w);
    return st;
}
