/*
 * test_sched.c - the scheduler of `numatp serve` (src/sched) on a tiny
 * generated model: concurrent greedy requests give the tokens of a plain
 * decode loop (prompts read in the same chunks), stop strings, OpenAI's
 * penalties, logprobs, a full queue, cancellation, stopping with requests in
 * flight, and requests that cannot run.
 */
#include "core/core.h"
#include "model/gen.h"
#include "sched/sched.h"
#include "test.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_BATCH 3  /* small, so that every prompt is read in several chunks */
#define N_GEN   12 /* tokens per request */
#define N_REQ   6

/* What one request's callback collects. */
struct got {
    char text[4096];
    size_t len;
    struct ntp_sched_event last;
    atomic_int finals;   /* final events (must end at 1) */
    atomic_bool cancel;  /* the request's cancel flag */
    int cancel_after;    /* set cancel once this many tokens came (0: never) */
    atomic_bool *gate;   /* when set: the first event waits until *gate is false */
    atomic_bool entered; /* the callback ran once */
    struct ntp_sched_logprob lp[64]; /* the tokens' logprobs, in order */
    int n_lp;
};

static void on_event(void *user, const struct ntp_sched_event *ev)
{
    struct got *g = user;
    atomic_store(&g->entered, true);
    while (g->gate && atomic_load(g->gate))
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    if (g->len + ev->len < sizeof g->text) {
        memcpy(g->text + g->len, ev->text, ev->len);
        g->len += ev->len;
    }
    for (int32_t i = 0; i < ev->n_lp && g->n_lp < 64; i++)
        g->lp[g->n_lp++] = ev->lp[i];
    if (g->cancel_after > 0 && ev->n_completion >= g->cancel_after)
        atomic_store(&g->cancel, true);
    if (ev->finish != NTP_SCHED_NONE) {
        g->last = *ev;
        atomic_fetch_add(&g->finals, 1);
    }
}

static void wait_final(struct got *g)
{
    for (int i = 0; i < 20000 && atomic_load(&g->finals) == 0; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    CHECK(atomic_load(&g->finals) == 1);
}

/*
 * The text of n greedy tokens after prompt with a plain loop on one context,
 * the prompt decoded in chunks of N_BATCH as the scheduler reads it, OpenAI's
 * presence penalty applied as the scheduler does.
 */
static size_t reference(ntp_model *m, const int32_t *prompt, int32_t n_prompt, int n, float pres,
                        char *out, size_t cap)
{
    ntp_context *c = NULL;
    ntp_context_params cp = ntp_context_default_params();
    cp.n_ctx = 128;
    CHECK_OK(ntp_context_new(m, cp, &c));
    const int32_t nv = ntp_model_n_vocab(m);
    float *l = malloc((size_t)nv * sizeof *l);
    int *seen = calloc((size_t)nv, sizeof *seen);
    size_t len = 0;
    for (int32_t i = 0; i < n_prompt; i += N_BATCH)
        CHECK_OK(ntp_decode(c, prompt + i, n_prompt - i < N_BATCH ? n_prompt - i : N_BATCH, false));
    for (int k = 0; k < n; k++) {
        memcpy(l, ntp_get_logits(c, -1), (size_t)nv * sizeof *l);
        int32_t best = 0;
        for (int32_t t = 0; t < nv; t++) {
            l[t] -= seen[t] ? pres : 0;
            best = l[t] > l[best] ? t : best;
        }
        if (ntp_token_is_eog(m, best))
            break;
        seen[best] = 1;
        size_t pn = 0;
        CHECK_OK(ntp_token_to_piece(m, best, out + len, cap - len, &pn));
        len += pn;
        CHECK_OK(ntp_decode(c, &best, 1, false));
    }
    free(l);
    free(seen);
    ntp_context_free(c);
    return len;
}

static struct ntp_sched_request greedy(const int32_t *prompt, int32_t n, struct got *g)
{
    struct ntp_sched_request r = {.prompt = prompt,
                                  .n_prompt = n,
                                  .max_tokens = N_GEN,
                                  .stop_token = -1,
                                  .cancel = &g->cancel,
                                  .fn = on_event,
                                  .user = g};
    r.sp = ntp__sampler_default_params();
    r.sp.temperature = -1;
    return r;
}

static struct ntp_sched *start(ntp_model *m, int slots, int queue)
{
    struct ntp_sched_params p = {.n_slots = slots,
                                 .queue_size = queue,
                                 .n_batch = N_BATCH,
                                 .cparams = ntp_context_default_params()};
    p.cparams.n_ctx = 128;
    struct ntp_sched *s = NULL;
    CHECK_OK(ntp_sched_new(m, &p, &s));
    return s;
}

/* N_REQ requests at once on 3 slots: each gives what it gives alone; stop strings; penalties. */
static void test_concurrent(ntp_model *m)
{
    static int32_t prompts[N_REQ][10];
    static struct got got[N_REQ], stop_got, pen_got;
    static char ref[N_REQ][4096];
    size_t ref_len[N_REQ];
    char pref[4096];
    for (int i = 0; i < N_REQ; i++) {
        for (int k = 0; k < 4 + i; k++)
            prompts[i][k] = 1 + (i * 37 + k * 11) % 200;
        ref_len[i] = reference(m, prompts[i], 4 + i, N_GEN, 0, ref[i], sizeof ref[i]);
    }
    const size_t pl = reference(m, prompts[1], 5, N_GEN, 50, pref, sizeof pref);
    /* The references first: only the engine thread decodes while the scheduler runs. */
    struct ntp_sched *s = start(m, 3, 16);
    for (int i = 0; i < N_REQ; i++) {
        const struct ntp_sched_request r = greedy(prompts[i], 4 + i, &got[i]);
        CHECK_OK(ntp_sched_submit(s, &r));
    }
    for (int i = 0; i < N_REQ; i++) {
        wait_final(&got[i]);
        CHECK(got[i].last.n_prompt == 4 + i);
        CHECK(got[i].len == ref_len[i] && memcmp(got[i].text, ref[i], ref_len[i]) == 0);
        CHECK(got[i].last.finish ==
              (got[i].last.n_completion == N_GEN ? NTP_SCHED_LENGTH : NTP_SCHED_STOP));
    }
    /* A stop string from the middle of request 0's text: the text ends before it. */
    char stop[3] = {ref[0][ref_len[0] / 2], ref[0][ref_len[0] / 2 + 1], 0};
    const char *stops[] = {"never-there", stop};
    struct ntp_sched_request r = greedy(prompts[0], 4, &stop_got);
    r.stop = stops;
    r.n_stop = 2;
    CHECK_OK(ntp_sched_submit(s, &r));
    wait_final(&stop_got);
    const char *at = strstr(ref[0], stop);
    CHECK(stop[0] && stop[1] && at != NULL);
    CHECK(stop_got.last.finish == NTP_SCHED_STOP);
    CHECK(at && stop_got.len == (size_t)(at - ref[0]) &&
          memcmp(stop_got.text, ref[0], stop_got.len) == 0);
    /* A large presence penalty: greedy never repeats a token, as the reference loop. */
    r = greedy(prompts[1], 5, &pen_got);
    r.presence_penalty = 50;
    CHECK_OK(ntp_sched_submit(s, &r));
    wait_final(&pen_got);
    CHECK(pen_got.len == pl && memcmp(pen_got.text, pref, pl) == 0);
    struct ntp_sched_stats st;
    ntp_sched_get_stats(s, &st);
    CHECK(st.busy == 0 && st.queued == 0 && st.n_slots == 3);
    CHECK(st.completion_tokens > 0 && st.prompt_tokens > 0);
    ntp_sched_free(s);
}

/*
 * Logprobs of a greedy request: one entry per generated token, the token is
 * the first of its alternatives, alternatives in falling order, every value
 * a log-probability, and the text the same as without logprobs.
 */
static void test_logprobs(ntp_model *m)
{
    static const int32_t prompt[5] = {3, 14, 15, 92, 65};
    static struct got plain, g;
    struct ntp_sched *s = start(m, 2, 4);
    struct ntp_sched_request r = greedy(prompt, 5, &plain);
    CHECK_OK(ntp_sched_submit(s, &r));
    r = greedy(prompt, 5, &g);
    r.logprobs = true;
    r.top_logprobs = 5;
    CHECK_OK(ntp_sched_submit(s, &r));
    wait_final(&plain);
    wait_final(&g);
    CHECK(plain.n_lp == 0);
    CHECK(g.len == plain.len && memcmp(g.text, plain.text, g.len) == 0);
    CHECK(g.n_lp == g.last.n_completion && g.n_lp > 0);
    for (int i = 0; i < g.n_lp; i++) {
        const struct ntp_sched_logprob *lp = &g.lp[i];
        CHECK(lp->n_top == 5 && lp->top_token[0] == lp->token);
        CHECK(lp->logprob <= 0 && lp->logprob == lp->top_logprob[0]);
        for (int k = 1; k < lp->n_top; k++)
            CHECK(lp->top_logprob[k] <= lp->top_logprob[k - 1] &&
                  lp->top_token[k] != lp->top_token[0]);
    }
    r.top_logprobs = NTP_SCHED_MAX_TOP + 1;
    CHECK_STATUS(ntp_sched_submit(s, &r), NTP_E_INVALID_ARG);
    ntp_sched_free(s);
}

/* One slot, a queue of one: a third request is refused at once; cancel; bad requests. */
static void test_queue_cancel(ntp_model *m)
{
    static const int32_t prompt[4] = {5, 6, 7, 8};
    static struct got a, b, c, d;
    atomic_bool gate = true;
    struct ntp_sched *s = start(m, 1, 1);
    a.gate = &gate;
    struct ntp_sched_request r = greedy(prompt, 4, &a);
    CHECK_OK(ntp_sched_submit(s, &r));
    while (!atomic_load(&a.entered))
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    r = greedy(prompt, 4, &b); /* the engine waits in a's callback: b stays queued */
    CHECK_OK(ntp_sched_submit(s, &r));
    r = greedy(prompt, 4, &c);
    CHECK_STATUS(ntp_sched_submit(s, &r), NTP_E_OVERFLOW);
    atomic_store(&gate, false);
    wait_final(&a);
    wait_final(&b);
    CHECK(a.len == b.len && memcmp(a.text, b.text, a.len) == 0);
    /* Cancelled after two tokens: ends within a step, long before the context is full. */
    r = greedy(prompt, 4, &d);
    r.max_tokens = 0;
    d.cancel_after = 2;
    CHECK_OK(ntp_sched_submit(s, &r));
    wait_final(&d);
    CHECK(d.last.finish == NTP_SCHED_CANCELLED);
    CHECK(d.last.n_completion >= 2 && d.last.n_completion <= 4);
    /* No prompt, or one longer than the context. */
    static int32_t big[200];
    r = greedy(prompt, 0, &c);
    CHECK_STATUS(ntp_sched_submit(s, &r), NTP_E_INVALID_ARG);
    r = greedy(big, 200, &c);
    CHECK_STATUS(ntp_sched_submit(s, &r), NTP_E_INVALID_ARG);
    CHECK(atomic_load(&c.finals) == 0);
    ntp_sched_free(s);
}

/* Stopping with a request running and one queued: each ends once, cancelled. */
static void test_stop(ntp_model *m)
{
    static const int32_t prompt[4] = {9, 10, 11, 12};
    static struct got a, b, c;
    struct ntp_sched *s = start(m, 1, 4);
    struct ntp_sched_request r = greedy(prompt, 4, &a);
    r.max_tokens = 0;
    CHECK_OK(ntp_sched_submit(s, &r));
    r = greedy(prompt, 4, &b);
    r.max_tokens = 0;
    CHECK_OK(ntp_sched_submit(s, &r));
    ntp_sched_stop(s);
    CHECK(atomic_load(&a.finals) == 1 && atomic_load(&b.finals) == 1);
    CHECK(b.last.finish == NTP_SCHED_CANCELLED || b.last.finish == NTP_SCHED_LENGTH);
    r = greedy(prompt, 4, &c);
    CHECK_STATUS(ntp_sched_submit(s, &r), NTP_E_UNSUPPORTED);
    ntp_sched_free(s);
}

int main(void)
{
    char dir[] = "/tmp/ntp-sched-XXXXXX", path[64];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/tiny.gguf", dir);
    struct ntp_gen_params gp = ntp__gen_default_params();
    CHECK_OK(ntp__model_gen(&gp, path));
    ntp_model_params mp = ntp_model_default_params();
    mp.n_threads = 1;
    ntp_model *m = NULL;
    CHECK_OK(ntp_model_load(path, mp, &m));
    if (m) {
        test_concurrent(m);
        test_logprobs(m);
        test_queue_cancel(m);
        test_stop(m);
    }
    ntp_model_free(m);
    unlink(path);
    rmdir(dir);
    return ntp_test_result("test_sched");
}
