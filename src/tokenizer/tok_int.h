/*
 * tok_int.h - the layout of a loaded tokenizer, shared by the files of
 * src/tokenizer (vocab.c loads it, encode.c and decode.c use it). Not a
 * public header.
 */
#ifndef NTP_TOKENIZER_TOK_INT_H
#define NTP_TOKENIZER_TOK_INT_H

#include "core/core.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

/* One vocabulary entry. */
struct ntp__tok {
    uint32_t off;       /* start of its text in ntp_tokenizer.text */
    uint32_t len;       /* bytes of text (NUL excluded) */
    float score;        /* SentencePiece score (log probability); 0 without scores */
    uint32_t attr;      /* enum ntp__tok_attr bits */
    uint32_t piece_off; /* start of its piece in ntp_tokenizer.pieces */
    uint32_t piece_len; /* bytes of piece (as shown with special = true) */
};

/* One merge rule "left right"; its rank is its index. */
struct ntp__merge {
    uint32_t off;       /* start of "left right" in ntp_tokenizer.merge_text */
    uint32_t left_len;  /* bytes of left */
    uint32_t right_len; /* bytes of right (after the one separating space) */
};

/* Open-addressing hash index: slots hold position + 1, 0 is empty. */
struct ntp__index {
    uint32_t *slots; /* mask + 1 entries, malloc'd */
    uint64_t mask;   /* capacity - 1, capacity a power of two >= 2 * count */
};

struct ntp_tokenizer {
    enum ntp__tok_model model;
    const struct ntp__pre_info *pre; /* BPE pre-tokenizer (static table); NULL for SPM */
    int32_t n_vocab;                 /* entries of tok */
    struct ntp__tok *tok;            /* [n_vocab], malloc'd */
    char *text;                      /* every token text, each NUL-terminated; malloc'd */
    struct ntp__index tok_index;     /* text -> id */
    char *pieces;                    /* every token piece back to back; malloc'd */

    uint32_t n_merges;           /* entries of merges (BPE only) */
    struct ntp__merge *merges;   /* [n_merges], malloc'd; NULL for SPM */
    char *merge_text;            /* the merge strings, NUL-separated; malloc'd */
    struct ntp__index merge_idx; /* (left, right) -> rank; first occurrence wins */

    int32_t *special;      /* ids of control, user-defined and unknown tokens, longest first */
    size_t n_special;      /* entries of special */
    uint8_t *eog;          /* [n_vocab] 1 for end-of-generation tokens; malloc'd */
    int32_t byte_tok[256]; /* SPM byte fallback: <0xNN> (or the 1-byte token), or -1 */

    /* Special token ids, NTP_TOKEN_NONE when absent. */
    int32_t bos, eos, eot, eom, unk, sep, pad, mask;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;

    bool add_bos;          /* encode with add_special puts BOS first */
    bool add_eos;          /* ... and EOS last */
    bool add_space_prefix; /* SPM: a space goes in front of the text (and comes off in decode) */
    bool ignore_merges;    /* BPE: a word that is a token is taken whole */
    bool clean_spaces;     /* decode removes the spaces GPT-2 tokenizers put before punctuation */
};

/* FNV-1a over bytes, continuing from h (start with NTP__HASH_INIT). */
#define NTP__HASH_INIT 14695981039346656037ull
static inline uint64_t ntp__hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Rank of merging left and right, or -1. */
int32_t ntp__tok_merge_rank(const ntp_tokenizer *t, const char *left, size_t llen,
                            const char *right, size_t rlen);

/* Load-time helpers of vocab_special.c, run by vocab.c in this order. */
ntp_status ntp__tok_find_specials(ntp_tokenizer *t, const ntp_gguf *g);
ntp_status ntp__tok_build_caches(ntp_tokenizer *t, const ntp_gguf *g);

#endif /* NTP_TOKENIZER_TOK_INT_H */
