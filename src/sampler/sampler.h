/*
 * sampler.h - picks the next token from a row of logits.
 *
 * The chain is llama.cpp's default one, in its order: repetition penalty,
 * top-k, top-p (nucleus), min-p, temperature, then a draw from the resulting
 * distribution. temperature <= 0 means greedy decoding (argmax after the
 * penalty). The draw uses the sampler's own PRNG (xoshiro256** seeded through
 * splitmix64), so the same seed gives the same tokens on every run and machine.
 *
 * All scratch memory is allocated by ntp__sampler_new; sampling a token does
 * not allocate. A sampler is not thread-safe: one per generation stream.
 */
#ifndef NTP_SAMPLER_H
#define NTP_SAMPLER_H

#include "ntp.h"

#include <stdint.h>

/* A seed value that asks ntp__sampler_new to pick one from the clock (llama.cpp's convention). */
#define NTP_SAMPLER_SEED_RANDOM 0xFFFFFFFFu

struct ntp_sampler_params {
    float temperature; /* divides the logits before the draw; <= 0: greedy */
    int32_t top_k;     /* keep the k largest logits; <= 0 or >= n_vocab: off */
    float top_p;       /* keep the smallest prefix with probability mass >= top_p; >= 1: off */
    float min_p;       /* drop tokens with p < min_p * p_max; <= 0: off */
    float
        repeat_penalty; /* divides positive / multiplies negative logits of recent tokens; 1: off */
    int32_t repeat_last_n; /* how many accepted tokens the penalty looks back; 0: off */
    uint32_t seed;         /* PRNG seed; NTP_SAMPLER_SEED_RANDOM: taken from the clock */
};

struct ntp_sampler;

/* llama.cpp's defaults: temp 0.8, top_k 40, top_p 0.95, min_p 0.05, penalty 1.0 (off), last 64. */
struct ntp_sampler_params ntp__sampler_default_params(void);

/*
 * Make a sampler for a vocabulary of n_vocab tokens. NTP_E_INVALID_ARG for a
 * bad parameter (n_vocab < 1, negative repeat_last_n or penalty, NaN values),
 * NTP_E_NOMEM when the scratch cannot be allocated.
 */
ntp_status ntp__sampler_new(const struct ntp_sampler_params *params, int32_t n_vocab,
                            struct ntp_sampler **out);
void ntp__sampler_free(struct ntp_sampler *s);

/*
 * Choose a token from logits[0, n_vocab) (not modified). NTP_E_INVALID_ARG when
 * a logit is NaN or +inf (the message names its index) or when every logit is
 * -inf. The token is not added to the history: call ntp__sampler_accept.
 */
ntp_status ntp__sampler_sample(struct ntp_sampler *s, const float *logits, int32_t *out);

/* Record a token (prompt or generated) for the repetition penalty; NTP_E_INVALID_ARG if out of
 * range. */
ntp_status ntp__sampler_accept(struct ntp_sampler *s, int32_t token);

/* Forget the history and restart the PRNG from the seed, so the same draws follow again. */
void ntp__sampler_reset(struct ntp_sampler *s);

/* The seed in use (the picked one when NTP_SAMPLER_SEED_RANDOM was asked for). */
uint32_t ntp__sampler_seed(const struct ntp_sampler *s);

#endif /* NTP_SAMPLER_H */
