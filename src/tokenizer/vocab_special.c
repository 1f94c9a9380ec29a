/*
 * vocab_special.c - special tokens of a loaded vocabulary: the ids the file
 * names, the ones llama.cpp finds by their text when it does not (EOT, FIM,
 * end-of-generation), the attribute fix-ups llama.cpp applies, and the caches
 * built from them (special tokens longest first, every token's piece, SPM's
 * byte fallback).
 *
 * llama.cpp scans its token hash map for the texts below, so when a file has
 * several candidates for one role its pick depends on hash order; we take the
 * first candidate in list order instead, which is deterministic and is what
 * the list's order suggests.
 */
#include "tokenizer/tok_int.h"
#include "tokenizer/unicode.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FW_BAR "\xef\xbd\x9c" /* U+FF5C FULLWIDTH VERTICAL LINE */
#define SPM_SP "\xe2\x96\x81" /* U+2581, SentencePiece's space */

/* ----------------------------------------------------- ids from the file */

static const struct {
    const char *key;
    size_t off; /* of the int32_t field in ntp_tokenizer */
} id_keys[] = {
    {"tokenizer.ggml.bos_token_id", offsetof(ntp_tokenizer, bos)},
    {"tokenizer.ggml.eos_token_id", offsetof(ntp_tokenizer, eos)},
    {"tokenizer.ggml.eot_token_id", offsetof(ntp_tokenizer, eot)},
    {"tokenizer.ggml.eom_token_id", offsetof(ntp_tokenizer, eom)},
    {"tokenizer.ggml.unknown_token_id", offsetof(ntp_tokenizer, unk)},
    {"tokenizer.ggml.seperator_token_id", offsetof(ntp_tokenizer, sep)},
    {"tokenizer.ggml.padding_token_id", offsetof(ntp_tokenizer, pad)},
    {"tokenizer.ggml.mask_token_id", offsetof(ntp_tokenizer, mask)},
    {"tokenizer.ggml.fim_pre_token_id", offsetof(ntp_tokenizer, fim_pre)},
    {"tokenizer.ggml.fim_suf_token_id", offsetof(ntp_tokenizer, fim_suf)},
    {"tokenizer.ggml.fim_mid_token_id", offsetof(ntp_tokenizer, fim_mid)},
    {"tokenizer.ggml.fim_pad_token_id", offsetof(ntp_tokenizer, fim_pad)},
    {"tokenizer.ggml.fim_rep_token_id", offsetof(ntp_tokenizer, fim_rep)},
    {"tokenizer.ggml.fim_sep_token_id", offsetof(ntp_tokenizer, fim_sep)},
    /* older names of the first three FIM keys */
    {"tokenizer.ggml.prefix_token_id", offsetof(ntp_tokenizer, fim_pre)},
    {"tokenizer.ggml.suffix_token_id", offsetof(ntp_tokenizer, fim_suf)},
    {"tokenizer.ggml.middle_token_id", offsetof(ntp_tokenizer, fim_mid)},
};

static ntp_status read_ids(ntp_tokenizer *t, const ntp_gguf *g)
{
    for (size_t k = 0; k < sizeof id_keys / sizeof id_keys[0]; k++) {
        int32_t *id = (int32_t *)(void *)((char *)t + id_keys[k].off);
        int64_t v;
        if (*id >= t->n_vocab) {
            ntp__log(NTP_LOG_WARN, "%s: default id %d is outside the vocabulary, disabled",
                     id_keys[k].key, (int)*id);
            *id = NTP_TOKEN_NONE;
        }
        if (!ntp_gguf_get(g, id_keys[k].key))
            continue;
        ntp_status st = ntp_gguf_get_i64(g, id_keys[k].key, &v);
        if (st != NTP_OK)
            return st;
        if (v < 0 || v >= t->n_vocab)
            ntp__log(NTP_LOG_WARN, "%s = %lld is outside the vocabulary (%d tokens), keeping %d",
                     id_keys[k].key, (long long)v, (int)t->n_vocab, (int)*id);
        else
            *id = (int32_t)v;
    }
    return NTP_OK;
}

static ntp_status read_add_flags(ntp_tokenizer *t, const ntp_gguf *g)
{
    static const char *const kb = "tokenizer.ggml.add_bos_token";
    static const char *const ke = "tokenizer.ggml.add_eos_token";
    ntp_status st;
    if (ntp_gguf_get(g, kb) && (st = ntp_gguf_get_bool(g, kb, &t->add_bos)) != NTP_OK)
        return st;
    if (ntp_gguf_get(g, ke) && (st = ntp_gguf_get_bool(g, ke, &t->add_eos)) != NTP_OK)
        return st;
    if (t->add_bos && t->bos == NTP_TOKEN_NONE)
        return ntp__error(NTP_E_FORMAT, "%s is true, but tokenizer.ggml.bos_token_id is not set",
                          kb);
    if (t->add_eos && t->eos == NTP_TOKEN_NONE)
        return ntp__error(NTP_E_FORMAT, "%s is true, but tokenizer.ggml.eos_token_id is not set",
                          ke);
    return NTP_OK;
}

/* ---------------------------------------------------- ids found by text */

static int32_t find_str(const ntp_tokenizer *t, const char *s)
{
    return ntp__tokenizer_find(t, s, strlen(s));
}

static const char *const eot_names[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "<|end_of_text|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "[EOT]",
                                        "<" FW_BAR "end" SPM_SP "of" SPM_SP "sentence" FW_BAR ">",
                                        "<end_of_utterance>",
                                        NULL};
static const char *const eom_names[] = {"<|eom_id|>", NULL};
static const char *const fim_pre_names[] = {"<|fim_prefix|>",
                                            "<fim-prefix>",
                                            "<fim_prefix>",
                                            "<" FW_BAR "fim" SPM_SP "begin" FW_BAR ">",
                                            "<PRE>",
                                            SPM_SP "<PRE>",
                                            "<|code_prefix|>",
                                            "<|prefix|>",
                                            NULL};
static const char *const fim_suf_names[] = {"<|fim_suffix|>",
                                            "<fim-suffix>",
                                            "<fim_suffix>",
                                            "<" FW_BAR "fim" SPM_SP "hole" FW_BAR ">",
                                            "<SUF>",
                                            SPM_SP "<SUF>",
                                            "<|code_suffix|>",
                                            "<|suffix|>",
                                            NULL};
static const char *const fim_mid_names[] = {"<|fim_middle|>",
                                            "<fim-middle>",
                                            "<fim_middle>",
                                            "<" FW_BAR "fim" SPM_SP "end" FW_BAR ">",
                                            "<MID>",
                                            SPM_SP "<MID>",
                                            "<|code_middle|>",
                                            "<|middle|>",
                                            NULL};
static const char *const fim_pad_names[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>",
                                            "<PAD>",       "[PAD]",     NULL};
static const char *const fim_rep_names[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                            "<REPO>",       "<reponame>",    NULL};
static const char *const fim_sep_names[] = {"<|file_sep|>", NULL};

/* Texts that end generation wherever they are in a vocabulary. */
static const char *const eog_names[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<|return|>",
                                        "<|call|>",
                                        "<|flush|>",
                                        "<|calls|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "</s>",
                                        "<|eom_id|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "[EOT]",
                                        "[EOS]",
                                        "<|end_of_text|>",
                                        "<end_of_utterance>",
                                        "<eos>",
                                        "<turn|>",
                                        "<|tool_response>",
                                        "<" FW_BAR "end" SPM_SP "of" SPM_SP "sentence" FW_BAR ">",
                                        "[e~[",
                                        NULL};

/* A token found by its text must act as a control token even if the file says otherwise. */
static void force_control(ntp_tokenizer *t, int32_t id)
{
    if (!(t->tok[id].attr & NTP__TOK_CONTROL)) {
        ntp__log(NTP_LOG_DEBUG, "tokenizer: token %d '%s' is used as a control token", (int)id,
                 t->text + t->tok[id].off);
        t->tok[id].attr |= NTP__TOK_CONTROL;
    }
}

static void find_by_text(ntp_tokenizer *t, int32_t *id, const char *const *names)
{
    if (*id != NTP_TOKEN_NONE)
        return;
    for (; *names; names++) {
        int32_t f = find_str(t, *names);
        if (f != NTP_TOKEN_NONE) {
            *id = f;
            force_control(t, f);
            return;
        }
    }
}

static void mark_unused(ntp_tokenizer *t)
{
    for (int32_t i = 0; i < t->n_vocab; i++) {
        struct ntp__tok *e = &t->tok[i];
        /* Texts may hold NUL bytes; strstr then sees a prefix, as in llama.cpp. */
        if ((e->attr & NTP__TOK_CONTROL) && strstr(t->text + e->off, "unused"))
            e->attr |= NTP__TOK_UNUSED;
    }
}

static void set_eog(ntp_tokenizer *t, int32_t id)
{
    if (id != NTP_TOKEN_NONE)
        t->eog[id] = 1;
}

static bool is_eog_text(const ntp_tokenizer *t, const char *s, int32_t *id)
{
    *id = find_str(t, s);
    return *id != NTP_TOKEN_NONE && t->eog[*id];
}

/*
 * llama.cpp's exceptions: with gpt-oss's "<|return|>"/"<|call|>" (or
 * solar-open's "<|calls|>"/"<|flush|>"), "<|end|>" ends a message, not the
 * generation; with Gemma 4's "<|tool_response>", "</s>" is ordinary text.
 */
static void eog_exceptions(ntp_tokenizer *t)
{
    int32_t ret, call, calls, flush, end, tool, s;
    bool has_ret = is_eog_text(t, "<|return|>", &ret);
    bool has_call = is_eog_text(t, "<|call|>", &call) || is_eog_text(t, "<|calls|>", &calls);
    bool has_flush = is_eog_text(t, "<|flush|>", &flush);
    if (is_eog_text(t, "<|end|>", &end) && ((has_ret && has_call) || (has_call && has_flush))) {
        t->eog[end] = 0;
        t->tok[end].attr = NTP__TOK_USER_DEFINED;
    }
    if (is_eog_text(t, "<|tool_response>", &tool) && is_eog_text(t, "</s>", &s)) {
        t->eog[s] = 0;
        t->tok[s].attr = NTP__TOK_NORMAL;
    }
}

static ntp_status find_eog(ntp_tokenizer *t)
{
    static const char *const always_shown[] = {"<|channel|>", "<|message|>", "<|start|>",
                                               "<|constrain|>", NULL};
    t->eog = calloc((size_t)t->n_vocab, 1);
    if (!t->eog)
        return ntp__error(NTP_E_NOMEM, "tokenizer: out of memory");
    set_eog(t, t->fim_pad);
    set_eog(t, t->fim_rep);
    set_eog(t, t->fim_sep);
    for (const char *const *n = eog_names; *n; n++) {
        int32_t id = find_str(t, *n);
        if (id != NTP_TOKEN_NONE) {
            set_eog(t, id);
            force_control(t, id);
        }
    }
    /* gpt-oss's structural tokens are printed like text (llama.cpp's "quick hack"). */
    for (const char *const *n = always_shown; *n; n++) {
        int32_t id = find_str(t, *n);
        if (id != NTP_TOKEN_NONE)
            t->tok[id].attr = NTP__TOK_USER_DEFINED;
    }
    set_eog(t, t->eos);
    set_eog(t, t->eot);
    set_eog(t, t->eom);
    eog_exceptions(t);
    return NTP_OK;
}

ntp_status ntp__tok_find_specials(ntp_tokenizer *t, const ntp_gguf *g)
{
    ntp_status st;
    if ((st = read_ids(t, g)) != NTP_OK || (st = read_add_flags(t, g)) != NTP_OK)
        return st;
    find_by_text(t, &t->eot, eot_names);
    find_by_text(t, &t->eom, eom_names);
    find_by_text(t, &t->fim_pre, fim_pre_names);
    find_by_text(t, &t->fim_suf, fim_suf_names);
    find_by_text(t, &t->fim_mid, fim_mid_names);
    find_by_text(t, &t->fim_pad, fim_pad_names);
    find_by_text(t, &t->fim_rep, fim_rep_names);
    find_by_text(t, &t->fim_sep, fim_sep_names);
    mark_unused(t);
    return find_eog(t);
}

/* ---------------------------------------------------------------- caches */

/* Sort key: longer texts first, equal lengths by id, so the order is deterministic. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static ntp_status build_special(ntp_tokenizer *t)
{
    const uint32_t want = NTP__TOK_CONTROL | NTP__TOK_USER_DEFINED | NTP__TOK_UNKNOWN;
    size_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        n += (t->tok[i].attr & want) != 0;
    uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!keys || !t->special) {
        free(keys);
        return ntp__error(NTP_E_NOMEM, "tokenizer: out of memory");
    }
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->tok[i].attr & want)
            keys[t->n_special++] = (uint64_t)(UINT32_MAX - t->tok[i].len) << 32 | (uint32_t)i;
    qsort(keys, t->n_special, sizeof *keys, cmp_u64);
    for (size_t k = 0; k < t->n_special; k++)
        t->special[k] = (int32_t)(keys[k] & UINT32_MAX);
    free(keys);
    return NTP_OK;
}

/* A growable byte buffer; the first allocation failure sticks. */
struct bytes {
    char *p;
    size_t n, cap;
    bool oom;
};

static void bytes_put(struct bytes *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* The byte of "<0xNN>", read as llama.cpp's strtol(text.substr(3, 2), 16) reads it. */
static uint8_t byte_of(const char *s, uint32_t len)
{
    unsigned v = 0;
    for (uint32_t i = 3; i < len && i < 5; i++) {
        int c = (unsigned char)s[i];
        if (!isxdigit(c))
            break;
        v = v * 16 + (unsigned)(isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
    }
    return (uint8_t)v;
}

/* GPT-2 symbols back to bytes; a symbol that stands for no byte is spelled out as llama.cpp does.
 */
static void put_gpt2_decoded(struct bytes *b, const char *s, uint32_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp = ntp__utf8_next_lenient(s, len, &i);
        int byte = ntp__gpt2_cp_to_byte(cp);
        if (byte >= 0) {
            unsigned char c = (unsigned char)byte;
            bytes_put(b, &c, 1);
            continue;
        }
        char u[4], hex[3];
        size_t n = ntp__utf8_put(cp, u);
        bytes_put(b, "[UNK_BYTE_0x", 12);
        for (size_t k = 0; k < n; k++) {
            snprintf(hex, sizeof hex, "%02x", (unsigned char)u[k]);
            bytes_put(b, hex, 2);
        }
        bytes_put(b, s, len);
        bytes_put(b, "]", 1);
    }
}

/* Piece of id as llama.cpp's token_to_piece(special = true) makes it. */
static void put_piece(const ntp_tokenizer *t, int32_t id, struct bytes *b)
{
    const struct ntp__tok *e = &t->tok[id];
    const char *s = t->text + e->off;
    if (e->attr & (NTP__TOK_UNKNOWN | NTP__TOK_CONTROL | NTP__TOK_USER_DEFINED)) {
        bytes_put(b, s, e->len);
    } else if (e->attr & NTP__TOK_NORMAL) {
        if (t->model == NTP__TOK_BPE) {
            put_gpt2_decoded(b, s, e->len);
            return;
        }
        for (uint32_t i = 0; i < e->len;) {
            if (e->len - i >= 3 && memcmp(s + i, SPM_SP, 3) == 0) {
                bytes_put(b, " ", 1);
                i += 3;
            } else {
                bytes_put(b, s + i, 1);
                i++;
            }
        }
    } else if (e->attr & NTP__TOK_BYTE) {
        uint8_t c = byte_of(s, e->len);
        bytes_put(b, &c, 1);
    }
    /* Unused and undefined tokens have an empty piece. */
}

static ntp_status build_pieces(ntp_tokenizer *t)
{
    struct bytes b = {0};
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t start = b.n;
        put_piece(t, i, &b);
        if (b.n > UINT32_MAX) {
            free(b.p);
            return ntp__error(NTP_E_OVERFLOW, "tokenizer: token pieces exceed 4 GiB");
        }
        t->tok[i].piece_off = (uint32_t)start;
        t->tok[i].piece_len = (uint32_t)(b.n - start);
    }
    if (b.oom || (!b.p && !(b.p = malloc(1)))) {
        free(b.p);
        return ntp__error(NTP_E_NOMEM, "tokenizer: out of memory for token pieces");
    }
    t->pieces = b.p;
    return NTP_OK;
}

/* SentencePiece's byte fallback: "<0xNN>", else the one-byte token, as llama.cpp's byte_to_token.
 */
static void build_byte_tokens(ntp_tokenizer *t)
{
    for (int c = 0; c < 256; c++) {
        char name[8];
        char one = (char)c;
        snprintf(name, sizeof name, "<0x%02X>", c);
        t->byte_tok[c] = find_str(t, name);
        if (t->byte_tok[c] == NTP_TOKEN_NONE)
            t->byte_tok[c] = ntp__tokenizer_find(t, &one, 1);
    }
}

static void set_rstrip(ntp_tokenizer *t, const char *text, bool on)
{
    int32_t id = find_str(t, text);
    if (id == NTP_TOKEN_NONE)
        return;
    if (on)
        t->tok[id].attr |= NTP__TOK_RSTRIP;
    else
        t->tok[id].attr &= ~(uint32_t)NTP__TOK_RSTRIP;
}

/*
 * Per-model attributes llama.cpp sets by model name: Phi-3's special tokens
 * swallow the whitespace after them (except <unk>, <s> and <|endoftext|>).
 */
static void model_attrs(ntp_tokenizer *t, const ntp_gguf *g)
{
    const ntp_gguf_value *v = ntp_gguf_get(g, "general.name");
    char name[256];
    if (!v || v->type != NTP_GGUF_STRING)
        return;
    size_t n = v->str.len < sizeof name - 1 ? (size_t)v->str.len : sizeof name - 1;
    for (size_t i = 0; i < n; i++)
        name[i] = (char)tolower((unsigned char)v->str.data[i]);
    name[n] = '\0';
    if (!strstr(name, "phi-3") && !strstr(name, "phi3"))
        return;
    for (size_t k = 0; k < t->n_special; k++)
        t->tok[t->special[k]].attr |= NTP__TOK_RSTRIP;
    set_rstrip(t, "</s>", true);
    set_rstrip(t, "<unk>", false);
    set_rstrip(t, "<s>", false);
    set_rstrip(t, "<|endoftext|>", false);
}

ntp_status ntp__tok_build_caches(ntp_tokenizer *t, const ntp_gguf *g)
{
    ntp_status st;
    if ((st = build_special(t)) != NTP_OK || (st = build_pieces(t)) != NTP_OK)
        return st;
    if (t->model == NTP__TOK_SPM)
        build_byte_tokens(t);
    else
        memset(t->byte_tok, 0xFF, sizeof t->byte_tok);
    model_attrs(t, g);
    return NTP_OK;
}
