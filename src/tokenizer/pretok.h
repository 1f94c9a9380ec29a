/*
 * pretok.h - the pre-tokenizers of byte-level BPE vocabularies: how a text is
 * cut into words before merges run, one kind per family of regex lists that
 * llama.cpp's llm_tokenizer_bpe uses, selected by tokenizer.ggml.pre.
 */
#ifndef NTP_TOKENIZER_PRETOK_H
#define NTP_TOKENIZER_PRETOK_H

#include "ntp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ntp__pre_kind {
    NTP__PRE_DEFAULT,        /* punctuation runs, GPT-2 words, number runs, digit triples */
    NTP__PRE_GPT2,           /* the GPT-2 regex alone */
    NTP__PRE_LLAMA3,         /* Llama 3: contractions (any case), numbers in 1-3 digits */
    NTP__PRE_QWEN2,          /* as LLAMA3 with single digits */
    NTP__PRE_QWEN2_NO_CONTR, /* as QWEN2 without the contraction alternative */
    NTP__PRE_STARCODER,      /* single digits, then GPT-2 */
    NTP__PRE_FALCON,         /* punctuation runs (with '`'), GPT-2, digit triples */
    NTP__PRE_DEEPSEEK_LLM, /* newlines, listed letters, ASCII/fullwidth punctuation, CJK, numbers */
    NTP__PRE_DEEPSEEK_CODER, /* newlines, letters, punctuation, CJK, single digits */
    NTP__PRE_DEEPSEEK_V3,    /* numbers in 1-3 digits, CJK and kana, then words (DeepSeek-V3) */
};

/* What a tokenizer.ggml.pre value selects, with the flags llama.cpp sets for it. */
struct ntp__pre_info {
    const char *name;        /* the tokenizer.ggml.pre value */
    enum ntp__pre_kind kind; /* how to split */
    bool ignore_merges;      /* a word that is itself a token is not merged */
    bool add_bos;            /* BOS is added unless tokenizer.ggml.add_bos_token says otherwise */
    bool clean_spaces;       /* detokenizing removes spaces before punctuation and contractions */
    bool no_bos;             /* the vocabulary has no BOS token unless the file names one */
};

/* The entry for a tokenizer.ggml.pre value, or NULL when it is not supported. */
const struct ntp__pre_info *ntp__pre_find(const char *name);
/* "default, gpt-2, ..." for error messages. */
const char *ntp__pre_supported(void);

/* A growable list of word lengths in code points. */
struct ntp__segs {
    size_t *len; /* [n] lengths, malloc'd, cap entries */
    size_t n;
    size_t cap;
};

/*
 * Cut cps[0, n) into words as llama.cpp's unicode_regex_split does for this
 * kind: out receives the word lengths in order (they sum to n); out must be
 * empty or hold earlier results to append to. Only NTP_E_NOMEM can fail.
 */
ntp_status ntp__pre_split(enum ntp__pre_kind kind, const uint32_t *cps, size_t n,
                          struct ntp__segs *out);
void ntp__segs_free(struct ntp__segs *s);

#endif /* NTP_TOKENIZER_PRETOK_H */
