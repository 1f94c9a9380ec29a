/*
 * synth_vocab.h - a small byte-level BPE vocabulary made from nothing, for
 * generated test models: the 256 GPT-2 byte symbols, merges learned from a
 * fixed built-in English text, and three ChatML control tokens at the end.
 * The same n_vocab always gives the same vocabulary, and a smaller vocabulary
 * is a prefix of a larger one (merges are learned in one fixed order).
 */
#ifndef NTP_TOKENIZER_SYNTH_VOCAB_H
#define NTP_TOKENIZER_SYNTH_VOCAB_H

#include "ntp.h"

#include <stdint.h>

/* Special tokens, in this order, as the last ids of the vocabulary. */
#define NTP_SYNTH_N_SPECIAL 3
/* The smallest valid vocabulary: the byte symbols and the special tokens. */
#define NTP_SYNTH_MIN_VOCAB (256 + NTP_SYNTH_N_SPECIAL)

/* llama.cpp's token types (tokenizer.ggml.token_type values). */
enum ntp_token_type {
    NTP_TOKEN_NORMAL = 1,
    NTP_TOKEN_CONTROL = 3,
};

struct ntp_synth_vocab {
    int64_t n_tokens;    /* the requested vocabulary size */
    char **tokens;       /* [n_tokens] NUL-terminated UTF-8, GPT-2 byte-to-unicode form; owned */
    int32_t *token_type; /* [n_tokens] enum ntp_token_type; owned */
    int64_t n_merges; /* at least n_tokens - NTP_SYNTH_MIN_VOCAB (two merges may make one string) */
    char **merges;    /* [n_merges] "left right" (one ASCII space), rank order; owned */
    uint32_t eot_id;  /* <|endoftext|>: bos, eos and padding */
    uint32_t im_start_id; /* <|im_start|> */
    uint32_t im_end_id;   /* <|im_end|>: end of a chat turn (eot) */
};

/*
 * Build a vocabulary of exactly n_vocab tokens (n_vocab >= NTP_SYNTH_MIN_VOCAB;
 * NTP_E_INVALID_ARG below that). Free with ntp__synth_vocab_free.
 */
ntp_status ntp__synth_vocab_build(int64_t n_vocab, struct ntp_synth_vocab **out);
void ntp__synth_vocab_free(struct ntp_synth_vocab *v);

/*
 * Write the tokenizer.* keys of v as llama.cpp's GPT-2-style files have them:
 * model "gpt2", pre "gpt-2", tokens, token_type, merges, the special ids, no
 * automatic BOS/EOS, and a ChatML chat template.
 */
ntp_status ntp__synth_vocab_write(const struct ntp_synth_vocab *v, ntp_gguf_writer *w);

#endif /* NTP_TOKENIZER_SYNTH_VOCAB_H */
