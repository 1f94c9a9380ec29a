/*
 * sched.h - the request scheduler of `numatp serve`: a fixed number of
 * slots, each a sequence (with its own KV cache) of one context, a bounded
 * queue of requests, and one engine thread that is the only caller of the
 * engine.
 *
 * The engine thread loops: admit queued requests into free slots, then run
 * one batch: a chunk of at most n_batch prompt tokens of the slot that is
 * still reading its prompt and came first (so running streams keep going
 * while a long prompt is read), and the next token of every slot that is
 * generating, all in one ntp_decode_seqs call so each weight is read once
 * per step. Then it samples a token for each, detects stop strings and
 * end-of-generation tokens, and hands each new piece of text to the
 * request's callback. Requests know nothing of HTTP.
 */
#ifndef NTP_SCHED_H
#define NTP_SCHED_H

#include "ntp.h"
#include "sampler/sampler.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ntp_sched;

struct ntp_sched_params {
    int32_t n_slots;            /* requests generating at once (--parallel) */
    int32_t queue_size;         /* requests waiting for a slot at most (--queue-size) */
    int32_t n_batch;            /* prompt tokens decoded per step for one slot (--batch-size) */
    ntp_context_params cparams; /* the context: n_ctx is per slot; n_seq and n_batch are set
                                   by the scheduler (n_slots, and n_batch + n_slots) */
};

/* Why a request ended. NONE: it has not (a piece of text is on its way). */
enum ntp_sched_finish {
    NTP_SCHED_NONE = 0,
    NTP_SCHED_STOP,      /* end-of-generation token, stop token or stop string */
    NTP_SCHED_LENGTH,    /* max_tokens reached, or the context is full */
    NTP_SCHED_CANCELLED, /* the caller's cancel flag, or the scheduler stopping */
    NTP_SCHED_ERROR,     /* the engine failed; message says why */
};

/* Most alternatives per token a request may ask for (OpenAI's top_logprobs limit). */
#define NTP_SCHED_MAX_TOP 20

/* A generated token's log-probability and the most likely alternatives at its step. */
struct ntp_sched_logprob {
    int32_t token;   /* the token sampled */
    float logprob;   /* its natural log-probability (log-softmax of the logits, penalties
                        applied, before temperature and truncation) */
    int32_t n_top;   /* alternatives below, most likely first (the request's top_logprobs) */
    int32_t top_token[NTP_SCHED_MAX_TOP];
    float top_logprob[NTP_SCHED_MAX_TOP];
};

/* What the callback gets: new text, and at the end why it ended and the counts. */
struct ntp_sched_event {
    const char
        *text; /* new bytes of the reply (raw token bytes: UTF-8 may be split); "" at the end */
    size_t len;
    enum ntp_sched_finish finish;
    int32_t n_prompt, n_completion; /* tokens */
    double t_first;                 /* seconds from submit to the first token (0: none) */
    double t_gen;                   /* seconds from the first token to the last */
    const char *message;            /* NTP_SCHED_ERROR: what failed */
    /* With logprobs asked (request.logprobs): the tokens sampled since the
       previous event, in order (their text may still be held back for a stop
       string); the final event carries the rest. Otherwise NULL and 0. */
    const struct ntp_sched_logprob *lp;
    int32_t n_lp;
};

/*
 * Called on the engine thread for each piece of text and exactly once with
 * finish != NTP_SCHED_NONE; after that one the scheduler no longer touches
 * the request's user data or cancel flag. Must not block for long.
 */
typedef void (*ntp_sched_fn)(void *user, const struct ntp_sched_event *ev);

struct ntp_sched_request {
    const int32_t *prompt; /* [n_prompt] tokens, at least one (copied) */
    int32_t n_prompt;
    int32_t max_tokens;           /* most tokens to generate; <= 0: until the context is full */
    struct ntp_sampler_params sp; /* temperature, top_k, top_p, min_p, seed */
    float presence_penalty;       /* OpenAI's: subtracted once from every generated token */
    float frequency_penalty;      /* subtracted per time a token was generated */
    const char *const *stop;      /* [n_stop] stop strings (copied) */
    int32_t n_stop;
    int32_t stop_token;        /* a token that also stops (a template's turn end), or -1 */
    bool logprobs;             /* report each token's log-probability (event.lp) */
    int32_t top_logprobs;      /* and this many alternatives, 0 .. NTP_SCHED_MAX_TOP */
    const atomic_bool *cancel; /* set by the caller to end the request within one step */
    ntp_sched_fn fn;
    void *user;
};

/* What /metrics shows. */
struct ntp_sched_stats {
    int32_t queued, busy, n_slots;
    int64_t prompt_tokens, completion_tokens; /* since the start */
};

/*
 * Make the context of n_slots sequences on m and start the engine thread.
 * NTP_E_INVALID_ARG for bad params; the context's errors otherwise.
 */
ntp_status ntp_sched_new(ntp_model *m, const struct ntp_sched_params *p, struct ntp_sched **out);

/*
 * Queue a request (its fields are copied). NTP_E_OVERFLOW when the queue is
 * full, NTP_E_UNSUPPORTED when the scheduler is stopping, NTP_E_INVALID_ARG
 * for a request that cannot run (no prompt, prompt longer than a slot's
 * context); in each case the callback is never called.
 */
ntp_status ntp_sched_submit(struct ntp_sched *s, const struct ntp_sched_request *r);

/* Positions of each slot's KV cache. */
int32_t ntp_sched_n_ctx(const struct ntp_sched *s);

void ntp_sched_get_stats(struct ntp_sched *s, struct ntp_sched_stats *out);

/*
 * Refuse new requests, end every queued and running one with
 * NTP_SCHED_CANCELLED within one step, and wait for the engine thread.
 */
void ntp_sched_stop(struct ntp_sched *s);

/* ntp_sched_stop if needed, then free the context. NULL is a no-op. */
void ntp_sched_free(struct ntp_sched *s);

#endif /* NTP_SCHED_H */
