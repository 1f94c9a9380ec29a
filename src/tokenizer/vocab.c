/*
 * vocab.c - load a tokenizer from a GGUF file's tokenizer.* keys: the model
 * kind and pre-tokenizer, the token list with scores and types, the merges,
 * and the hash indexes over them. Special tokens and caches are the business
 * of vocab_special.c.
 */
#include "tokenizer/tok_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ indexes */

static ntp_status index_init(struct ntp__index *ix, uint64_t count)
{
    uint64_t cap = 16;
    while (cap < 2 * count)
        cap *= 2;
    ix->slots = calloc(cap, sizeof *ix->slots);
    if (!ix->slots)
        return ntp__error(NTP_E_NOMEM, "tokenizer: out of memory for an index of %llu entries",
                          (unsigned long long)count);
    ix->mask = cap - 1;
    return NTP_OK;
}

int32_t ntp__tokenizer_find(const ntp_tokenizer *t, const char *text, size_t len)
{
    uint64_t h = ntp__hash(NTP__HASH_INIT, text, len);
    for (uint64_t i = h & t->tok_index.mask;; i = (i + 1) & t->tok_index.mask) {
        uint32_t s = t->tok_index.slots[i];
        if (s == 0)
            return NTP_TOKEN_NONE;
        const struct ntp__tok *e = &t->tok[s - 1];
        if (e->len == len && memcmp(t->text + e->off, text, len) == 0)
            return (int32_t)(s - 1);
    }
}

/* Insert id by its text; returns the id already holding that text, or -1. */
static int32_t tok_index_insert(ntp_tokenizer *t, int32_t id)
{
    const struct ntp__tok *e = &t->tok[id];
    uint64_t h = ntp__hash(NTP__HASH_INIT, t->text + e->off, e->len);
    for (uint64_t i = h & t->tok_index.mask;; i = (i + 1) & t->tok_index.mask) {
        uint32_t s = t->tok_index.slots[i];
        if (s == 0) {
            t->tok_index.slots[i] = (uint32_t)id + 1;
            return -1;
        }
        const struct ntp__tok *o = &t->tok[s - 1];
        if (o->len == e->len && memcmp(t->text + o->off, t->text + e->off, e->len) == 0)
            return (int32_t)(s - 1);
    }
}

static uint64_t merge_hash(const char *left, size_t llen, const char *right, size_t rlen)
{
    uint64_t h = ntp__hash(NTP__HASH_INIT, left, llen);
    h = ntp__hash(h, " ", 1);
    return ntp__hash(h, right, rlen);
}

int32_t ntp__tok_merge_rank(const ntp_tokenizer *t, const char *left, size_t llen,
                            const char *right, size_t rlen)
{
    if (!t->merge_idx.slots)
        return -1;
    uint64_t h = merge_hash(left, llen, right, rlen);
    for (uint64_t i = h & t->merge_idx.mask;; i = (i + 1) & t->merge_idx.mask) {
        uint32_t s = t->merge_idx.slots[i];
        if (s == 0)
            return -1;
        const struct ntp__merge *m = &t->merges[s - 1];
        const char *mt = t->merge_text + m->off;
        if (m->left_len == llen && m->right_len == rlen && memcmp(mt, left, llen) == 0 &&
            memcmp(mt + llen + 1, right, rlen) == 0)
            return (int32_t)(s - 1);
    }
}

/* Insert merge rank unless an earlier rank has the same pair (llama.cpp keeps the first). */
static void merge_index_insert(ntp_tokenizer *t, uint32_t rank)
{
    const struct ntp__merge *m = &t->merges[rank];
    const char *mt = t->merge_text + m->off;
    if (ntp__tok_merge_rank(t, mt, m->left_len, mt + m->left_len + 1, m->right_len) >= 0)
        return;
    uint64_t h = merge_hash(mt, m->left_len, mt + m->left_len + 1, m->right_len);
    uint64_t i = h & t->merge_idx.mask;
    while (t->merge_idx.slots[i] != 0)
        i = (i + 1) & t->merge_idx.mask;
    t->merge_idx.slots[i] = rank + 1;
}

/* ------------------------------------------------------- model and pre */

/* Read an optional bool key into *dst; a value of another type is an error. */
static ntp_status opt_bool(const ntp_gguf *g, const char *key, bool *dst)
{
    if (!ntp_gguf_get(g, key))
        return NTP_OK;
    return ntp_gguf_get_bool(g, key, dst);
}

static ntp_status read_model(ntp_tokenizer *t, const ntp_gguf *g)
{
    const char *model, *pre = NULL;
    ntp_status st = ntp_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (st != NTP_OK)
        return st;
    t->bos = t->eos = t->eot = t->eom = t->unk = NTP_TOKEN_NONE;
    t->sep = t->pad = t->mask = NTP_TOKEN_NONE;
    t->fim_pre = t->fim_suf = t->fim_mid = t->fim_pad = t->fim_rep = t->fim_sep = NTP_TOKEN_NONE;
    if (strcmp(model, "llama") == 0) {
        t->model = NTP__TOK_SPM;
        t->bos = 1, t->eos = 2, t->unk = 0;
        t->add_space_prefix = true;
        t->add_bos = true;
    } else if (strcmp(model, "gpt2") == 0) {
        t->model = NTP__TOK_BPE;
        if (ntp_gguf_get(g, "tokenizer.ggml.pre") &&
            (st = ntp_gguf_get_str(g, "tokenizer.ggml.pre", &pre)) != NTP_OK)
            return st;
        if (!pre) {
            ntp__log(NTP_LOG_WARN, "tokenizer.ggml.pre is missing: using the 'default' "
                                   "pre-tokenizer; generation quality may suffer");
            pre = "default";
        }
        t->pre = ntp__pre_find(pre);
        if (!t->pre)
            return ntp__error(NTP_E_UNSUPPORTED,
                              "tokenizer.ggml.pre = '%s': unknown pre-tokenizer (numatp knows: %s)",
                              pre, ntp__pre_supported());
        /* llama.cpp's placeholder ids for GPT-2 files that name none. */
        t->bos = t->pre->no_bos ? NTP_TOKEN_NONE : 11;
        t->eos = 11;
        t->add_bos = t->pre->add_bos;
        t->ignore_merges = t->pre->ignore_merges;
        t->clean_spaces = t->pre->clean_spaces;
    } else {
        return ntp__error(NTP_E_UNSUPPORTED,
                          "tokenizer.ggml.model = '%s': unsupported vocabulary kind (numatp "
                          "reads 'llama' and 'gpt2')",
                          model);
    }
    return opt_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix);
}

/* ------------------------------------------------------------- tokens */

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type) as attributes. */
static uint32_t attr_from_type(int32_t type)
{
    static const uint32_t attr[] = {
        NTP__TOK_UNDEFINED,    NTP__TOK_NORMAL, NTP__TOK_UNKNOWN, NTP__TOK_CONTROL,
        NTP__TOK_USER_DEFINED, NTP__TOK_UNUSED, NTP__TOK_BYTE,
    };
    return (type >= 0 && type < (int32_t)(sizeof attr / sizeof attr[0])) ? attr[type]
                                                                         : NTP__TOK_UNDEFINED;
}

/* Optional per-token array (scores, token_type) with one of two element types. */
static ntp_status opt_token_array(const ntp_gguf *g, const char *key, enum ntp_gguf_type a,
                                  enum ntp_gguf_type b, uint64_t n, const ntp_gguf_value **out)
{
    const ntp_gguf_value *v = ntp_gguf_get(g, key);
    *out = NULL;
    if (!v)
        return NTP_OK;
    if (v->type != NTP_GGUF_ARRAY || (v->arr.type != a && v->arr.type != b))
        return ntp__error(NTP_E_TYPE, "%s: is %s%s%s, expected an array of %s", key,
                          ntp_gguf_type_name(v->type), v->type == NTP_GGUF_ARRAY ? " of " : "",
                          v->type == NTP_GGUF_ARRAY ? ntp_gguf_type_name(v->arr.type) : "",
                          ntp_gguf_type_name(a));
    if (v->arr.len < n)
        return ntp__error(NTP_E_FORMAT, "%s: %llu entries for %llu tokens", key,
                          (unsigned long long)v->arr.len, (unsigned long long)n);
    *out = v;
    return NTP_OK;
}

/* Copy the token texts into one arena; an empty text becomes "[EMPTY_<id>]" as in llama.cpp. */
static ntp_status copy_texts(ntp_tokenizer *t, const ntp_gguf_value *toks)
{
    uint64_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        total += (toks->arr.elems[i].str.len ? toks->arr.elems[i].str.len : 24) + 1;
    if (total > UINT32_MAX)
        return ntp__error(NTP_E_OVERFLOW,
                          "tokenizer.ggml.tokens: %llu bytes of text, at most "
                          "4 GiB supported",
                          (unsigned long long)total);
    t->text = malloc(total);
    if (!t->text)
        return ntp__error(NTP_E_NOMEM, "tokenizer: out of memory for %llu bytes of token text",
                          (unsigned long long)total);
    uint32_t off = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const ntp_gguf_value *s = &toks->arr.elems[i];
        struct ntp__tok *e = &t->tok[i];
        e->off = off;
        if (s->str.len) {
            memcpy(t->text + off, s->str.data, s->str.len);
            e->len = (uint32_t)s->str.len;
        } else {
            ntp__log(NTP_LOG_WARN, "tokenizer.ggml.tokens: empty token at index %d", (int)i);
            e->len = (uint32_t)snprintf(t->text + off, 24, "[EMPTY_%d]", (int)i);
        }
        t->text[off + e->len] = '\0';
        off += e->len + 1;
    }
    return NTP_OK;
}

static ntp_status read_tokens(ntp_tokenizer *t, const ntp_gguf *g)
{
    const ntp_gguf_value *toks, *scores, *types;
    ntp_status st = ntp_gguf_get_arr(g, "tokenizer.ggml.tokens", NTP_GGUF_STRING, &toks);
    if (st != NTP_OK)
        return st;
    if (toks->arr.len == 0 || toks->arr.len > INT32_MAX)
        return ntp__error(NTP_E_FORMAT, "tokenizer.ggml.tokens: %llu tokens, expected 1 to %d",
                          (unsigned long long)toks->arr.len, INT32_MAX);
    t->n_vocab = (int32_t)toks->arr.len;
    if ((st = opt_token_array(g, "tokenizer.ggml.scores", NTP_GGUF_FLOAT32, NTP_GGUF_INT32,
                              toks->arr.len, &scores)) != NTP_OK ||
        (st = opt_token_array(g, "tokenizer.ggml.token_type", NTP_GGUF_INT32, NTP_GGUF_INT32,
                              toks->arr.len, &types)) != NTP_OK)
        return st;
    t->tok = calloc((size_t)t->n_vocab, sizeof *t->tok);
    if (!t->tok)
        return ntp__error(NTP_E_NOMEM, "tokenizer: out of memory for %d tokens", (int)t->n_vocab);
    if ((st = copy_texts(t, toks)) != NTP_OK ||
        (st = index_init(&t->tok_index, (uint64_t)t->n_vocab)) != NTP_OK)
        return st;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        struct ntp__tok *e = &t->tok[i];
        if (scores)
            e->score = scores->arr.type == NTP_GGUF_FLOAT32 ? scores->arr.elems[i].f32
                                                            : (float)scores->arr.elems[i].i32;
        e->attr = types ? attr_from_type(types->arr.elems[i].i32) : NTP__TOK_NORMAL;
        int32_t dup = tok_index_insert(t, i);
        if (dup >= 0)
            return ntp__error(NTP_E_DUPLICATE,
                              "tokenizer.ggml.tokens: duplicate token '%.*s' has ids %d and %d",
                              (int)(e->len > 64 ? 64 : e->len), t->text + e->off, (int)dup, (int)i);
    }
    return NTP_OK;
}

/* ------------------------------------------------------------- merges */

static ntp_status read_merges(ntp_tokenizer *t, const ntp_gguf *g)
{
    const ntp_gguf_value *v;
    if (!ntp_gguf_get(g, "tokenizer.ggml.merges"))
        return ntp__error(NTP_E_NOT_FOUND, "tokenizer.ggml.merges: missing (a 'gpt2' vocabulary "
                                           "needs its merge list)");
    ntp_status st = ntp_gguf_get_arr(g, "tokenizer.ggml.merges", NTP_GGUF_STRING, &v);
    if (st != NTP_OK)
        return st;
    uint64_t total = 0;
    for (uint64_t i = 0; i < v->arr.len; i++)
        total += v->arr.elems[i].str.len + 1;
    if (v->arr.len > INT32_MAX || total > UINT32_MAX)
        return ntp__error(NTP_E_OVERFLOW,
                          "tokenizer.ggml.merges: %llu merges, %llu bytes: too "
                          "many",
                          (unsigned long long)v->arr.len, (unsigned long long)total);
    t->n_merges = (uint32_t)v->arr.len;
    t->merges = calloc(t->n_merges ? t->n_merges : 1, sizeof *t->merges);
    t->merge_text = malloc(total ? total : 1);
    if (!t->merges || !t->merge_text)
        return ntp__error(NTP_E_NOMEM, "tokenizer: out of memory for %u merges", t->n_merges);
    if ((st = index_init(&t->merge_idx, t->n_merges)) != NTP_OK)
        return st;
    uint32_t off = 0;
    for (uint32_t r = 0; r < t->n_merges; r++) {
        const char *s = v->arr.elems[r].str.data;
        uint32_t len = (uint32_t)v->arr.elems[r].str.len;
        memcpy(t->merge_text + off, s, len);
        t->merge_text[off + len] = '\0';
        /* llama.cpp splits at the first space after the first byte; without one the rule is dead.
         */
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        t->merges[r].off = off;
        off += len + 1;
        if (!sp)
            continue;
        t->merges[r].left_len = (uint32_t)(sp - s);
        t->merges[r].right_len = len - t->merges[r].left_len - 1;
        merge_index_insert(t, r);
    }
    return NTP_OK;
}

/* ------------------------------------------------------------ load/free */

ntp_status ntp__tokenizer_load(const ntp_gguf *g, ntp_tokenizer **out)
{
    ntp_status st;
    *out = NULL;
    ntp_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return ntp__error(NTP_E_NOMEM, "tokenizer: out of memory");
    if ((st = read_model(t, g)) != NTP_OK || (st = read_tokens(t, g)) != NTP_OK)
        goto fail;
    if (t->model == NTP__TOK_BPE && (st = read_merges(t, g)) != NTP_OK)
        goto fail;
    if ((st = ntp__tok_find_specials(t, g)) != NTP_OK ||
        (st = ntp__tok_build_caches(t, g)) != NTP_OK)
        goto fail;
    *out = t;
    return NTP_OK;
fail:
    ntp__tokenizer_free(t);
    return st;
}

void ntp__tokenizer_free(ntp_tokenizer *t)
{
    if (!t)
        return;
    free(t->tok);
    free(t->text);
    free(t->tok_index.slots);
    free(t->pieces);
    free(t->merges);
    free(t->merge_text);
    free(t->merge_idx.slots);
    free(t->special);
    free(t->eog);
    free(t);
}
