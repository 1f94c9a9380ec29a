/*
 * sched.c - slots, queue and the engine thread of `numatp serve` (sched.h).
 *
 * The queue and the counters are shared with the submitting threads under
 * one mutex; everything about the slots (the context, samplers, held-back
 * text) belongs to the engine thread alone, which also makes every call
 * into the engine, as ntp.h's thread rules ask. Slot i is sequence i of one
 * context of n_slots sequences, so that a step is one ntp_decode_seqs call.
 */
#include "sched/sched.h"

#include "core/core.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A request as the scheduler keeps it: copies of the prompt and the stop strings. */
struct req {
    struct ntp_sched_request r; /* prompt and stop point at the copies below */
    int32_t *prompt;
    char **stop;
    double t_submit;
};

struct slot {
    int32_t seq;   /* its sequence in the context */
    struct req *q; /* NULL: the slot is free */
    struct ntp_sampler *smp;
    int64_t order;   /* when it was admitted: the earliest prompt is read first */
    int32_t n_done;  /* prompt tokens decoded */
    bool generating; /* the prompt is read; next is the token to decode */
    int32_t next;    /* the last sampled token, not yet in the KV cache */
    int32_t n_gen;   /* tokens generated */
    int32_t *counts; /* [n_vocab] times each token was generated (penalties) */
    float *logits;   /* [n_vocab] scratch for the penalties */
    char *pend;      /* text held back: it may be the start of a stop string */
    size_t n_pend, cap_pend;
    struct ntp_sched_logprob *lp; /* [max_tokens or n_ctx] tokens not yet in an event, when
                                     the request asks for logprobs (allocated at admission) */
    int32_t n_lp;
    double t_first, t_last; /* clock at the first and the last token */
};

struct ntp_sched {
    ntp_model *m;
    ntp_context *c; /* one sequence per slot */
    int32_t n_vocab, n_ctx, n_batch, n_slots;
    struct slot *slots;
    int32_t *tok, *seq; /* [n_batch + n_slots] a step's batch */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t cv;  /* a request was queued, or stop was asked */
    struct req **queue; /* ring of queue_size entries */
    int32_t q_cap, q_head, q_len;
    int32_t busy;
    bool stopping;
    int64_t admitted, prompt_tokens, completion_tokens;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void req_free(struct req *q)
{
    if (!q)
        return;
    for (int32_t i = 0; q->stop && i < q->r.n_stop; i++)
        free(q->stop[i]);
    free(q->stop);
    free(q->prompt);
    free(q);
}

/* A copy of r whose pointers the scheduler owns; NULL when memory runs out. */
static struct req *req_copy(const struct ntp_sched_request *r)
{
    struct req *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->r = *r;
    q->prompt = malloc((size_t)r->n_prompt * sizeof *q->prompt);
    q->stop = calloc((size_t)r->n_stop + 1, sizeof *q->stop);
    bool ok = q->prompt && q->stop;
    for (int32_t i = 0; ok && i < r->n_stop; i++)
        ok = (q->stop[i] = strdup(r->stop[i])) != NULL;
    if (!ok) {
        req_free(q);
        return NULL;
    }
    memcpy(q->prompt, r->prompt, (size_t)r->n_prompt * sizeof *q->prompt);
    q->r.prompt = q->prompt;
    q->r.stop = (const char *const *)q->stop;
    q->t_submit = now();
    return q;
}

/* ------------------------------------------------------------ one slot */

static void emit(struct slot *sl, const char *text, size_t len)
{
    if (len == 0)
        return;
    const struct ntp_sched_event ev = {.text = text,
                                       .len = len,
                                       .n_prompt = sl->q->r.n_prompt,
                                       .n_completion = sl->n_gen,
                                       .lp = sl->n_lp ? sl->lp : NULL,
                                       .n_lp = sl->n_lp};
    sl->q->r.fn(sl->q->r.user, &ev);
    sl->n_lp = 0;
}

/* End the slot's request: the rest of the held-back text, the final event, a free slot. */
static void finish(struct ntp_sched *s, struct slot *sl, enum ntp_sched_finish why,
                   const char *message)
{
    emit(sl, sl->pend, sl->n_pend);
    sl->n_pend = 0;
    const struct ntp_sched_event ev = {
        .text = "",
        .finish = why,
        .n_prompt = sl->q->r.n_prompt,
        .n_completion = sl->n_gen,
        .t_first = sl->n_gen > 0 ? sl->t_first - sl->q->t_submit : 0,
        .t_gen = sl->n_gen > 0 ? sl->t_last - sl->t_first : 0,
        .message = message,
        .lp = sl->n_lp ? sl->lp : NULL,
        .n_lp = sl->n_lp,
    };
    sl->q->r.fn(sl->q->r.user, &ev);
    sl->n_lp = 0;
    free(sl->lp);
    sl->lp = NULL;
    pthread_mutex_lock(&s->mu);
    s->busy--;
    s->prompt_tokens += sl->n_done;
    s->completion_tokens += sl->n_gen;
    pthread_mutex_unlock(&s->mu);
    req_free(sl->q);
    sl->q = NULL;
    ntp__sampler_free(sl->smp);
    sl->smp = NULL;
    sl->generating = false;
}

static void fail(struct ntp_sched *s, struct slot *sl)
{
    finish(s, sl, NTP_SCHED_ERROR, ntp_last_error());
}

/* Take a request into a free slot: an empty cache, its own sampler, the prompt as history. */
static void admit(struct ntp_sched *s, struct slot *sl, struct req *q)
{
    sl->q = q;
    sl->order = s->admitted++;
    sl->n_done = sl->n_gen = 0;
    sl->n_pend = 0;
    sl->generating = false;
    sl->n_lp = 0;
    memset(sl->counts, 0, (size_t)s->n_vocab * sizeof *sl->counts);
    ntp_context_seq_reset(s->c, sl->seq);
    ntp_status st = ntp__sampler_new(&q->r.sp, s->n_vocab, &sl->smp);
    if (st == NTP_OK && q->r.logprobs) {
        /* at most one entry per generated token is ever held */
        const int32_t most = q->r.max_tokens > 0 && q->r.max_tokens < s->n_ctx ? q->r.max_tokens
                                                                                : s->n_ctx;
        sl->lp = malloc((size_t)most * sizeof *sl->lp);
        if (!sl->lp)
            st = ntp__error(NTP_E_NOMEM, "scheduler: logprobs of %d tokens", (int)most);
    }
    for (int32_t i = 0; st == NTP_OK && i < q->r.n_prompt; i++)
        st = ntp__sampler_accept(sl->smp, q->r.prompt[i]);
    if (st != NTP_OK)
        fail(s, sl);
}

/* The earliest match of a stop string in the held-back text, or n_pend when none. */
static size_t find_stop(const struct slot *sl)
{
    size_t best = sl->n_pend;
    for (int32_t i = 0; i < sl->q->r.n_stop; i++) {
        const char *st = sl->q->r.stop[i];
        const size_t n = strlen(st);
        for (size_t at = 0; n > 0 && at + n <= sl->n_pend && at < best; at++)
            if (memcmp(sl->pend + at, st, n) == 0) {
                best = at;
                break;
            }
    }
    return best;
}

/* Bytes at the end of the held-back text that could begin a stop string. */
static size_t stop_prefix(const struct slot *sl)
{
    size_t hold = 0;
    for (int32_t i = 0; i < sl->q->r.n_stop; i++) {
        const char *st = sl->q->r.stop[i];
        const size_t n = strlen(st);
        for (size_t k = n > 0 ? n - 1 : 0; k > hold; k--)
            if (k <= sl->n_pend && memcmp(sl->pend + sl->n_pend - k, st, k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}

static bool pend_append(struct slot *sl, const char *p, size_t n)
{
    if (sl->n_pend + n > sl->cap_pend) {
        const size_t cap = 2 * (sl->n_pend + n);
        char *b = realloc(sl->pend, cap);
        if (!b)
            return false;
        sl->pend = b;
        sl->cap_pend = cap;
    }
    memcpy(sl->pend + sl->n_pend, p, n);
    sl->n_pend += n;
    return true;
}

/*
 * A token was sampled: end on end-of-generation, pass its text on (holding
 * back what may start a stop string), end on a stop string, max_tokens or a
 * full context, else keep it as the next token to decode.
 */
static void take_token(struct ntp_sched *s, struct slot *sl, int32_t tok,
                       const struct ntp_sched_logprob *lp)
{
    if (ntp_token_is_eog(s->m, tok) || tok == sl->q->r.stop_token) {
        finish(s, sl, NTP_SCHED_STOP, NULL);
        return;
    }
    if (lp)
        sl->lp[sl->n_lp++] = *lp;
    sl->t_last = now();
    if (sl->n_gen++ == 0)
        sl->t_first = sl->t_last;
    sl->counts[tok]++;
    char piece[256];
    size_t n = 0;
    if (ntp_token_to_piece(s->m, tok, piece, sizeof piece, &n) != NTP_OK)
        n = 0; /* a piece longer than the buffer is not a real token; skip it */
    if (!pend_append(sl, piece, n)) {
        finish(s, sl, NTP_SCHED_ERROR, "out of memory for the reply");
        return;
    }
    const size_t at = find_stop(sl);
    if (at < sl->n_pend) {
        sl->n_pend = at; /* the stop string and what follows it are dropped */
        finish(s, sl, NTP_SCHED_STOP, NULL);
        return;
    }
    const size_t out = sl->n_pend - stop_prefix(sl);
    emit(sl, sl->pend, out);
    memmove(sl->pend, sl->pend + out, sl->n_pend - out);
    sl->n_pend -= out;
    if ((sl->q->r.max_tokens > 0 && sl->n_gen >= sl->q->r.max_tokens) ||
        ntp_context_seq_pos(s->c, sl->seq) >= s->n_ctx) {
        finish(s, sl, NTP_SCHED_LENGTH, NULL);
        return;
    }
    sl->next = tok;
    sl->generating = true;
}

/*
 * tok's log-probability under logits (log-softmax) and the n_top most likely
 * tokens with theirs, into *out.
 */
static void logprob_of(const float *logits, int32_t n_vocab, int32_t tok, int32_t n_top,
                       struct ntp_sched_logprob *out)
{
    float mx = logits[0];
    for (int32_t t = 1; t < n_vocab; t++)
        mx = logits[t] > mx ? logits[t] : mx;
    double sum = 0;
    for (int32_t t = 0; t < n_vocab; t++)
        sum += exp((double)(logits[t] - mx));
    const float lse = mx + (float)log(sum);
    out->token = tok;
    out->logprob = logits[tok] - lse;
    out->n_top = 0;
    for (int32_t t = 0; t < n_vocab && n_top > 0; t++) { /* insertion into the top list */
        int32_t i;
        if (out->n_top < n_top)
            i = out->n_top++;
        else if (logits[t] > logits[out->top_token[n_top - 1]])
            i = n_top - 1;
        else
            continue;
        for (; i > 0 && logits[out->top_token[i - 1]] < logits[t]; i--)
            out->top_token[i] = out->top_token[i - 1];
        out->top_token[i] = t;
    }
    for (int32_t i = 0; i < out->n_top; i++)
        out->top_logprob[i] = logits[out->top_token[i]] - lse;
}

/* Sample from the slot's logits, with OpenAI's presence and frequency penalties. */
static void sample(struct ntp_sched *s, struct slot *sl, const float *logits)
{
    const float pres = sl->q->r.presence_penalty, freq = sl->q->r.frequency_penalty;
    if (logits && (pres != 0 || freq != 0) && sl->n_gen > 0) {
        memcpy(sl->logits, logits, (size_t)s->n_vocab * sizeof *logits);
        for (int32_t t = 0; t < s->n_vocab; t++)
            if (sl->counts[t] > 0)
                sl->logits[t] -= pres + freq * (float)sl->counts[t];
        logits = sl->logits;
    }
    int32_t tok = -1;
    if (!logits || ntp__sampler_sample(sl->smp, logits, &tok) != NTP_OK ||
        ntp__sampler_accept(sl->smp, tok) != NTP_OK) {
        fail(s, sl);
        return;
    }
    struct ntp_sched_logprob lp;
    if (sl->q->r.logprobs)
        logprob_of(logits, s->n_vocab, tok, sl->q->r.top_logprobs, &lp);
    take_token(s, sl, tok, sl->q->r.logprobs ? &lp : NULL);
}

/* -------------------------------------------------------------- a step */

/* The slot admitted first that is still reading its prompt, or NULL. */
static struct slot *prompt_slot(struct ntp_sched *s)
{
    struct slot *sl = NULL;
    for (int32_t i = 0; i < s->n_slots; i++) {
        struct slot *c = &s->slots[i];
        if (c->q && !c->generating && (!sl || c->order < sl->order))
            sl = c;
    }
    return sl;
}

/*
 * One engine step, one batch: a chunk of at most n_batch tokens of the
 * prompt admitted first that is still being read, then the next token of
 * every generating slot. The batch goes through the engine in one
 * ntp_decode_seqs call, so each weight is read once for all of them; each
 * generating slot then samples its next token from its row, and the prompt's
 * slot its first token once the prompt is read (it joins the next step).
 */
static void step(struct ntp_sched *s)
{
    for (int32_t i = 0; i < s->n_slots; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->q && sl->q->r.cancel && atomic_load(sl->q->r.cancel))
            finish(s, sl, NTP_SCHED_CANCELLED, NULL);
    }
    struct slot *ps = prompt_slot(s);
    int32_t n = 0, n_chunk = 0;
    if (ps) {
        n_chunk = ps->q->r.n_prompt - ps->n_done;
        n_chunk = n_chunk < s->n_batch ? n_chunk : s->n_batch;
        for (; n < n_chunk; n++) {
            s->tok[n] = ps->q->r.prompt[ps->n_done + n];
            s->seq[n] = ps->seq;
        }
    }
    for (int32_t i = 0; i < s->n_slots; i++) {
        const struct slot *sl = &s->slots[i];
        if (sl->q && sl->generating) {
            s->tok[n] = sl->next;
            s->seq[n++] = sl->seq;
        }
    }
    if (n == 0)
        return;
    if (ntp_decode_seqs(s->c, s->tok, s->seq, n, false) != NTP_OK) {
        char msg[512]; /* every request of the batch fails with the engine's message */
        snprintf(msg, sizeof msg, "%s", ntp_last_error());
        for (int32_t i = 0; i < s->n_slots; i++)
            if (s->slots[i].q && (s->slots[i].generating || &s->slots[i] == ps))
                finish(s, &s->slots[i], NTP_SCHED_ERROR, msg);
        return;
    }
    /* Each slot's row: a sequence's last token in the batch keeps its logits. */
    for (int32_t i = n_chunk, k = 0; i < n; i++) {
        while (s->slots[k].seq != s->seq[i])
            k++;
        sample(s, &s->slots[k], ntp_get_logits(s->c, i));
    }
    if (ps) {
        ps->n_done += n_chunk;
        if (ps->n_done == ps->q->r.n_prompt) /* the first token, as soon as the prompt is read */
            sample(s, ps, ntp_get_logits(s->c, n_chunk - 1));
    }
}

/* The final event of a request that never reached a slot. */
static void cancel_queued(struct req *q)
{
    const struct ntp_sched_event ev = {
        .text = "", .finish = NTP_SCHED_CANCELLED, .n_prompt = q->r.n_prompt};
    q->r.fn(q->r.user, &ev);
    req_free(q);
}

static void *engine(void *arg)
{
    struct ntp_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stopping && s->q_len == 0 && s->busy == 0)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping)
            break;
        for (int32_t i = 0; i < s->n_slots && s->q_len > 0; i++) {
            if (s->slots[i].q)
                continue;
            struct req *q = s->queue[s->q_head];
            s->q_head = (s->q_head + 1) % s->q_cap;
            s->q_len--;
            s->busy++;
            pthread_mutex_unlock(&s->mu);
            admit(s, &s->slots[i], q);
            pthread_mutex_lock(&s->mu);
        }
        pthread_mutex_unlock(&s->mu);
        step(s);
        pthread_mutex_lock(&s->mu);
    }
    while (s->q_len > 0) {
        struct req *q = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap;
        s->q_len--;
        pthread_mutex_unlock(&s->mu);
        cancel_queued(q);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    for (int32_t i = 0; i < s->n_slots; i++)
        if (s->slots[i].q)
            finish(s, &s->slots[i], NTP_SCHED_CANCELLED, NULL);
    return NULL;
}

/* ------------------------------------------------------------- the API */

ntp_status ntp_sched_new(ntp_model *m, const struct ntp_sched_params *p, struct ntp_sched **out)
{
    *out = NULL;
    if (!m || p->n_slots < 1 || p->queue_size < 1 || p->n_batch < 1)
        return ntp__error(NTP_E_INVALID_ARG, "scheduler: slots, queue and batch must be >= 1");
    struct ntp_sched *s = calloc(1, sizeof *s);
    if (!s)
        return ntp__error(NTP_E_NOMEM, "scheduler");
    s->m = m;
    s->n_vocab = ntp_model_n_vocab(m);
    s->n_batch = p->n_batch;
    s->n_slots = p->n_slots;
    s->q_cap = p->queue_size;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->slots = calloc((size_t)p->n_slots, sizeof *s->slots);
    s->queue = calloc((size_t)p->queue_size, sizeof *s->queue);
    s->tok = malloc((size_t)(p->n_batch + p->n_slots) * sizeof *s->tok);
    s->seq = malloc((size_t)(p->n_batch + p->n_slots) * sizeof *s->seq);
    ntp_status st = s->slots && s->queue && s->tok && s->seq
                        ? NTP_OK
                        : ntp__error(NTP_E_NOMEM, "scheduler");
    /* One context, a sequence per slot; a step (a prompt chunk and a token of
       every slot) is one batch. */
    ntp_context_params cp = p->cparams;
    cp.n_seq = p->n_slots;
    cp.n_batch = p->n_batch + p->n_slots;
    if (st == NTP_OK)
        st = ntp_context_new(m, cp, &s->c);
    for (int32_t i = 0; st == NTP_OK && i < p->n_slots; i++) {
        struct slot *sl = &s->slots[i];
        sl->seq = i;
        sl->counts = calloc((size_t)s->n_vocab, sizeof *sl->counts);
        sl->logits = malloc((size_t)s->n_vocab * sizeof *sl->logits);
        if (st == NTP_OK && (!sl->counts || !sl->logits))
            st = ntp__error(NTP_E_NOMEM, "scheduler: slot %d", (int)i);
    }
    if (st == NTP_OK) {
        s->n_ctx = ntp_context_n_ctx(s->c);
        if (pthread_create(&s->thread, NULL, engine, s) != 0)
            st = ntp__error(NTP_E_INTERNAL, "scheduler: cannot start the engine thread");
        s->started = st == NTP_OK;
    }
    if (st != NTP_OK) {
        ntp_sched_free(s);
        return st;
    }
    *out = s;
    return NTP_OK;
}

ntp_status ntp_sched_submit(struct ntp_sched *s, const struct ntp_sched_request *r)
{
    if (r->logprobs && (r->top_logprobs < 0 || r->top_logprobs > NTP_SCHED_MAX_TOP))
        return ntp__error(NTP_E_INVALID_ARG, "scheduler: top_logprobs %d (0 .. %d)",
                          (int)r->top_logprobs, NTP_SCHED_MAX_TOP);
    if (r->n_prompt < 1 || r->n_prompt > s->n_ctx || !r->fn || r->n_stop < 0)
        return ntp__error(NTP_E_INVALID_ARG, "scheduler: a prompt of %d tokens (context %d)",
                          (int)r->n_prompt, (int)s->n_ctx);
    struct req *q = req_copy(r);
    if (!q)
        return ntp__error(NTP_E_NOMEM, "scheduler: request");
    ntp_status st = NTP_OK;
    pthread_mutex_lock(&s->mu);
    if (s->stopping)
        st = ntp__error(NTP_E_UNSUPPORTED, "the server is shutting down");
    else if (s->q_len == s->q_cap)
        st = ntp__error(NTP_E_OVERFLOW, "the queue is full (%d requests waiting)", (int)s->q_cap);
    else {
        s->queue[(s->q_head + s->q_len) % s->q_cap] = q;
        s->q_len++;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    if (st != NTP_OK)
        req_free(q);
    return st;
}

int32_t ntp_sched_n_ctx(const struct ntp_sched *s)
{
    return s->n_ctx;
}

void ntp_sched_get_stats(struct ntp_sched *s, struct ntp_sched_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = (struct ntp_sched_stats){.queued = s->q_len,
                                    .busy = s->busy,
                                    .n_slots = s->n_slots,
                                    .prompt_tokens = s->prompt_tokens,
                                    .completion_tokens = s->completion_tokens};
    pthread_mutex_unlock(&s->mu);
}

void ntp_sched_stop(struct ntp_sched *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started)
        pthread_join(s->thread, NULL);
    s->started = false;
}

void ntp_sched_free(struct ntp_sched *s)
{
    if (!s)
        return;
    ntp_sched_stop(s);
    ntp_context_free(s->c);
    for (int32_t i = 0; s->slots && i < s->n_slots; i++) {
        free(s->slots[i].counts);
        free(s->slots[i].logits);
        free(s->slots[i].pend);
    }
    free(s->slots);
    free(s->queue);
    free(s->tok);
    free(s->seq);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
