/*
 * tokenizer.h - text to token ids and back, byte for byte as llama.cpp does
 * it, for the two vocabulary kinds GGUF language models use:
 *  - tokenizer.ggml.model = "llama": SentencePiece-style BPE over scores
 *    (spaces become U+2581, unknown characters fall back to <0xNN> tokens);
 *  - tokenizer.ggml.model = "gpt2": byte-level BPE over ranked merges, after
 *    the pre-tokenizer that tokenizer.ggml.pre names has cut the text into words.
 * A loaded tokenizer copies what it needs from the file and is read-only, so
 * any number of threads may use one at once.
 */
#ifndef NTP_TOKENIZER_TOKENIZER_H
#define NTP_TOKENIZER_TOKENIZER_H

#include "ntp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ntp_tokenizer ntp_tokenizer;

/* No such token (an optional special token the vocabulary lacks). */
#define NTP_TOKEN_NONE (-1)

/* Token attributes, bit for bit llama.cpp's llama_token_attr. */
enum ntp__tok_attr {
    NTP__TOK_UNDEFINED = 0,
    NTP__TOK_UNKNOWN = 1 << 0,
    NTP__TOK_UNUSED = 1 << 1,
    NTP__TOK_NORMAL = 1 << 2,
    NTP__TOK_CONTROL = 1 << 3,
    NTP__TOK_USER_DEFINED = 1 << 4,
    NTP__TOK_BYTE = 1 << 5,
    NTP__TOK_NORMALIZED = 1 << 6,
    NTP__TOK_LSTRIP = 1 << 7, /* a special token eats the whitespace before it */
    NTP__TOK_RSTRIP = 1 << 8, /* ... and after it */
    NTP__TOK_SINGLE_WORD = 1 << 9,
};

/* The vocabulary kind (tokenizer.ggml.model). */
enum ntp__tok_model {
    NTP__TOK_SPM, /* "llama" */
    NTP__TOK_BPE, /* "gpt2" */
};

/*
 * Build a tokenizer from a file's tokenizer.* keys: model, tokens, scores,
 * token_type, merges, pre, the special token ids (bos, eos, eot, eom,
 * unknown, seperator, padding, mask, fim_*), add_bos_token, add_eos_token,
 * add_space_prefix. Defaults and fix-ups follow llama.cpp's llama_vocab::load
 * (e.g. EOT/EOG tokens found by their text when the file does not name
 * them). An unknown model or pre-tokenizer is NTP_E_UNSUPPORTED naming the
 * value; a missing or mistyped key is NTP_E_NOT_FOUND / NTP_E_TYPE /
 * NTP_E_FORMAT naming the key. g may be freed afterwards.
 */
ntp_status ntp__tokenizer_load(const ntp_gguf *g, ntp_tokenizer **out);
void ntp__tokenizer_free(ntp_tokenizer *t);

/*
 * Tokenize text[0, len), which must be valid UTF-8 (else NTP_E_INVALID_ARG
 * naming the byte offset). add_special adds BOS (and EOS) as the vocabulary
 * asks; parse_special lets the text spell control tokens such as
 * "<|im_start|>" (user-defined tokens are always recognised, as in
 * llama.cpp). Writes at most cap ids; when they do not fit, returns
 * NTP_E_OVERFLOW with the needed count in *n_out (ids may be NULL then).
 */
ntp_status ntp__tokenizer_encode(const ntp_tokenizer *t, const char *text, size_t len,
                                 bool add_special, bool parse_special, int32_t *ids, size_t cap,
                                 size_t *n_out);

/*
 * The bytes token id stands for (not NUL-terminated; may hold NUL bytes), as
 * llama.cpp's llama_token_to_piece with lstrip 0: GPT-2 symbols mapped back
 * to bytes, U+2581 to spaces, <0xNN> to its byte. Control and unknown tokens
 * give their text when special is true and nothing (length 0) otherwise.
 * Returns NULL when id is outside the vocabulary. Valid while t lives.
 */
const char *ntp__tokenizer_piece(const ntp_tokenizer *t, int32_t id, bool special, size_t *len);

/* Flags for ntp__tokenizer_decode_ex. */
enum ntp__decode_flags {
    NTP__DECODE_SPECIAL = 1 << 0,    /* print control and unknown tokens as their text */
    NTP__DECODE_REMOVE_BOS = 1 << 1, /* drop a leading BOS / trailing EOS the vocabulary adds */
};

/*
 * Detokenize ids[0, n) into out as llama.cpp's llama_detokenize does: the
 * space SentencePiece put in front of the text is removed, and vocabularies
 * that ask for it get "clean up tokenization spaces". Writes the bytes and,
 * when cap leaves room, a terminating NUL; *len_out is the byte count (NUL
 * excluded). When the bytes do not fit, NTP_E_OVERFLOW with the needed count
 * in *len_out. An id outside the vocabulary is NTP_E_INVALID_ARG.
 * ntp__tokenizer_decode is decode_ex with flags 0.
 */
ntp_status ntp__tokenizer_decode(const ntp_tokenizer *t, const int32_t *ids, size_t n, char *out,
                                 size_t cap, size_t *len_out);
ntp_status ntp__tokenizer_decode_ex(const ntp_tokenizer *t, const int32_t *ids, size_t n,
                                    unsigned flags, char *out, size_t cap, size_t *len_out);

/* Accessors. Ids are NTP_TOKEN_NONE where the vocabulary has no such token. */
int32_t ntp__tokenizer_n_vocab(const ntp_tokenizer *t);
enum ntp__tok_model ntp__tokenizer_model(const ntp_tokenizer *t);
/* The tokenizer.ggml.pre value in use ("default" when the file has none; "" for SPM). */
const char *ntp__tokenizer_pre(const ntp_tokenizer *t);
int32_t ntp__tokenizer_bos(const ntp_tokenizer *t);
int32_t ntp__tokenizer_eos(const ntp_tokenizer *t);
int32_t ntp__tokenizer_eot(const ntp_tokenizer *t);
int32_t ntp__tokenizer_unk(const ntp_tokenizer *t);
bool ntp__tokenizer_add_bos(const ntp_tokenizer *t);
/* Whether generation stops at id (EOS, EOT, EOM and the other end-of-generation tokens). */
bool ntp__tokenizer_is_eog(const ntp_tokenizer *t, int32_t id);
/* Attributes of id (enum ntp__tok_attr bits); 0 outside the vocabulary. */
uint32_t ntp__tokenizer_attr(const ntp_tokenizer *t, int32_t id);
/* Id of the token whose text is exactly text[0, len), or NTP_TOKEN_NONE. */
int32_t ntp__tokenizer_find(const ntp_tokenizer *t, const char *text, size_t len);

#endif /* NTP_TOKENIZER_TOKENIZER_H */
