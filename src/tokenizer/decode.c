/*
 * decode.c - token ids back to text (llama.cpp's token_to_piece and
 * llama_detokenize) and the accessors of a loaded tokenizer.
 */
#include "tokenizer/tok_int.h"

#include <stdlib.h>
#include <string.h>

const char *ntp__tokenizer_piece(const ntp_tokenizer *t, int32_t id, bool special, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    const struct ntp__tok *e = &t->tok[id];
    if (!special && (e->attr & (NTP__TOK_UNKNOWN | NTP__TOK_CONTROL))) {
        *len = 0;
        return t->pieces + e->piece_off;
    }
    *len = e->piece_len;
    return t->pieces + e->piece_off;
}

/*
 * "Clean up tokenization spaces" as llama.cpp does it, in place on s[0, n):
 * drop the space before ? ! . , ; the spaces around a lone apostrophe; the
 * space before 's 'm 're 've. Returns the new length. The three passes and
 * their quirks (the second one blanks the character after a removed space)
 * follow llama_vocab::impl::detokenize.
 */
static size_t clean_spaces(char *s, size_t n)
{
    size_t total = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            total--;
        s[total++] = x;
    }
    n = total;
    total = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (x == '\'' && i + 1 < n && s[i - 1] == ' ' && s[i + 1] == ' ') {
            total--;
            s[++i] = '\0';
        }
        s[total++] = x;
    }
    n = total;
    total = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            char x1 = s[i + 1];
            if (x1 == 's' || x1 == 'm')
                total--;
            else if (i + 2 < n &&
                     ((x1 == 'r' && s[i + 2] == 'e') || (x1 == 'v' && s[i + 2] == 'e')))
                total--;
        }
        s[total++] = x;
    }
    return total;
}

ntp_status ntp__tokenizer_decode_ex(const ntp_tokenizer *t, const int32_t *ids, size_t n,
                                    unsigned flags, char *out, size_t cap, size_t *len_out)
{
    bool special = flags & NTP__DECODE_SPECIAL;
    bool remove_space = t->add_space_prefix;
    size_t total = 0;
    *len_out = 0;
    if ((flags & NTP__DECODE_REMOVE_BOS) && t->add_bos && n > 0 && ids[0] == t->bos) {
        remove_space = false;
        ids++, n--;
    }
    if ((flags & NTP__DECODE_REMOVE_BOS) && t->add_eos && n > 0 && ids[n - 1] == t->eos)
        n--;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return ntp__error(NTP_E_INVALID_ARG,
                              "tokenizer: token %zu is %d, outside the "
                              "vocabulary of %d",
                              i, (int)ids[i], (int)t->n_vocab);
        size_t len;
        ntp__tokenizer_piece(t, ids[i], special, &len);
        total += len;
    }
    /* Pieces are joined in a buffer of our own: cleaning needs the whole text. */
    char *buf = malloc(total ? total : 1);
    if (!buf)
        return ntp__error(NTP_E_NOMEM, "tokenizer: out of memory decoding %zu tokens", n);
    total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *p = ntp__tokenizer_piece(t, ids[i], special, &len);
        /* The space SentencePiece put in front of the text comes off the first piece. */
        if (remove_space && len > 0 && p[0] == ' ')
            p++, len--;
        remove_space = false;
        if (len > 0)
            memcpy(buf + total, p, len);
        total += len;
    }
    if (t->clean_spaces)
        total = clean_spaces(buf, total);
    *len_out = total;
    ntp_status st = NTP_OK;
    if (total > cap)
        st = ntp__error(NTP_E_OVERFLOW, "tokenizer: %zu bytes of text do not fit in %zu", total,
                        cap);
    else {
        if (total > 0)
            memcpy(out, buf, total);
        if (total < cap)
            out[total] = '\0';
    }
    free(buf);
    return st;
}

ntp_status ntp__tokenizer_decode(const ntp_tokenizer *t, const int32_t *ids, size_t n, char *out,
                                 size_t cap, size_t *len_out)
{
    return ntp__tokenizer_decode_ex(t, ids, n, 0, out, cap, len_out);
}

/* ------------------------------------------------------------ accessors */

int32_t ntp__tokenizer_n_vocab(const ntp_tokenizer *t)
{
    return t->n_vocab;
}

enum ntp__tok_model ntp__tokenizer_model(const ntp_tokenizer *t)
{
    return t->model;
}

const char *ntp__tokenizer_pre(const ntp_tokenizer *t)
{
    return t->pre ? t->pre->name : "";
}

int32_t ntp__tokenizer_bos(const ntp_tokenizer *t)
{
    return t->bos;
}

int32_t ntp__tokenizer_eos(const ntp_tokenizer *t)
{
    return t->eos;
}

int32_t ntp__tokenizer_eot(const ntp_tokenizer *t)
{
    return t->eot;
}

int32_t ntp__tokenizer_unk(const ntp_tokenizer *t)
{
    return t->unk;
}

bool ntp__tokenizer_add_bos(const ntp_tokenizer *t)
{
    return t->add_bos;
}

bool ntp__tokenizer_is_eog(const ntp_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

uint32_t ntp__tokenizer_attr(const ntp_tokenizer *t, int32_t id)
{
    return (id >= 0 && id < t->n_vocab) ? t->tok[id].attr : 0;
}
