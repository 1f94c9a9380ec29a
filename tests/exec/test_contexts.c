/*
 * test_contexts.c - two contexts on one model, decoding from two threads at
 * the same time (include/ntp.h "Threads"): each must produce exactly the
 * tokens and logits it produces alone. The model is tensor-parallel (two
 * devices), so the contexts share the devices' teams and the all-reduce.
 * Contexts made and freed on one thread while another decodes do not
 * disturb it (a new context's state is first touched by the devices' teams,
 * which must wait for the running decode).
 */
#include "model/forward_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_PROMPT 9
#define N_GEN    24

struct run {
    ntp_context *c;
    int32_t first;      /* seed of the prompt: the two threads use different prompts */
    int32_t tok[N_GEN]; /* greedy tokens */
    float last[512];    /* logits of the last step (n_vocab <= 512) */
    ntp_status st;
};

static int32_t argmax(const float *x, int32_t n)
{
    int32_t b = 0;
    for (int32_t i = 1; i < n; i++)
        b = x[i] > x[b] ? i : b;
    return b;
}

/* Prompt, then N_GEN greedy steps, from position 0. */
static void *generate(void *arg)
{
    struct run *r = arg;
    const int32_t nv = 300;
    int32_t toks[N_PROMPT];
    fwd_tokens(toks, N_PROMPT, nv, (uint32_t)r->first);
    ntp_context_reset(r->c);
    r->st = ntp_decode(r->c, toks, N_PROMPT, false);
    for (int i = 0; i < N_GEN && r->st == NTP_OK; i++) {
        r->tok[i] = argmax(ntp_get_logits(r->c, -1), nv);
        r->st = ntp_decode(r->c, &r->tok[i], 1, false);
    }
    if (r->st == NTP_OK)
        memcpy(r->last, ntp_get_logits(r->c, -1), (size_t)nv * sizeof(float));
    return NULL;
}

/* Make and free contexts (each first-touched by the devices' teams) until *stop. */
struct churn {
    ntp_model *m;
    ntp_context_params cp;
    _Atomic int stop;
    int made;
    ntp_status st;
};

static void *churn(void *arg)
{
    struct churn *ch = arg;
    while (!ch->stop && ch->st == NTP_OK) {
        ntp_context *c = NULL;
        ch->st = ntp_context_new(ch->m, ch->cp, &c);
        ntp_context_free(c);
        ch->made++;
    }
    return NULL;
}

int main(void)
{
    fwd_init();
    char path[160];
    struct ntp_gen_params g = fwd_small("llama"); /* 300 tokens */
    g.type = NTP_TYPE_F32;
    if (fwd_gen(&g, "m", path, sizeof path) != 0)
        return ntp_test_result("contexts");
    ntp_model_params mp = ntp_model_default_params();
    mp.tp = 2;
    mp.threads_per_device = 1;
    ntp_model *m = NULL;
    CHECK_OK(ntp_model_load(path, mp, &m));
    ntp_context_params cp = ntp_context_default_params();
    cp.n_ctx = 64;
    cp.kv_type = NTP_TYPE_F32;
    struct run alone[2] = {{.first = 3}, {.first = 101}}, both[2] = {{.first = 3}, {.first = 101}};
    for (int i = 0; m && i < 2; i++) {
        CHECK_OK(ntp_context_new(m, cp, &alone[i].c));
        both[i].c = alone[i].c;
    }
    if (m && alone[0].c && alone[1].c) {
        generate(&alone[0]); /* one after the other: the reference */
        generate(&alone[1]);
        pthread_t th[2];
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < 2; i++)
                pthread_create(&th[i], NULL, generate, &both[i]);
            for (int i = 0; i < 2; i++)
                pthread_join(th[i], NULL);
            for (int i = 0; i < 2; i++) {
                CHECK_OK(both[i].st);
                CHECK(memcmp(both[i].tok, alone[i].tok, sizeof both[i].tok) == 0);
                CHECK(memcmp(both[i].last, alone[i].last, sizeof both[i].last) == 0);
            }
        }
        CHECK(memcmp(alone[0].tok, alone[1].tok, sizeof alone[0].tok) != 0);
    }
    for (int i = 0; i < 2; i++)
        ntp_context_free(alone[i].c);
    ntp_model_free(m);
    m = NULL;
    /* One device with a team of two threads, so that its jobs run on a worker. */
    mp.tp = 1;
    mp.threads_per_device = 2;
    CHECK_OK(ntp_model_load(path, mp, &m));
    struct run ref = {.first = 3}, run = {.first = 3};
    if (m && ntp_context_new(m, cp, &ref.c) == NTP_OK) {
        generate(&ref);
        run.c = ref.c;
        struct churn ch = {.m = m, .cp = cp};
        pthread_t tc;
        pthread_create(&tc, NULL, churn, &ch);
        for (int round = 0; round < 5; round++) {
            generate(&run);
            CHECK_OK(run.st);
            CHECK(memcmp(run.tok, ref.tok, sizeof run.tok) == 0);
            CHECK(memcmp(run.last, ref.last, sizeof run.last) == 0);
        }
        ch.stop = 1;
        pthread_join(tc, NULL);
        CHECK_OK(ch.st);
        printf("contexts made and freed during 5 decodes on another thread: %d\n", ch.made);
    }
    ntp_context_free(ref.c);
    ntp_model_free(m);
    fwd_cleanup();
    return ntp_test_result("contexts");
}
