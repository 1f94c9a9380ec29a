/*
 * test_plan.c - the shard planner and the device layout: uneven shares,
 * KV-head replication, cuts on quantization-block and head boundaries, the
 * tensor slices each device keeps, a mixture of experts split by features
 * and by experts, and --numa-nodes / --tp layouts on this machine.
 */
#include "model/plan.h"
#include "numa/layout.h"
#include "test.h"

#include <string.h>

static struct ntp_hparams hparams(int64_t embd, int64_t heads, int64_t kv, int64_t ff)
{
    struct ntp_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.n_embd = embd;
    hp.n_layer = 4;
    hp.n_head = heads;
    hp.n_head_kv = kv;
    hp.head_dim_k = hp.head_dim_v = embd / heads;
    hp.n_ff = ff;
    hp.n_vocab = 1000;
    return hp;
}

static struct ntp_plan plan(const struct ntp_hparams *hp, int n_dev, int64_t ablk, int64_t fblk)
{
    const struct ntp_plan_params p = {.n_dev = n_dev,
                                      .attn_block = ablk,
                                      .ffn_block = fblk,
                                      .n_layer = hp->n_layer,
                                      .head = true};
    struct ntp_plan pl;
    CHECK_OK(ntp__plan_make(hp, &p, &pl));
    return pl;
}

/* Every dimension is covered exactly once, in order. */
static void check_cover(const struct ntp_hparams *hp, const struct ntp_plan *pl)
{
    int64_t h = 0, f = 0, v = 0;
    for (int d = 0; d < pl->n_dev; d++) {
        const struct ntp_shard *s = &pl->shard[d];
        CHECK(s->head0 == h && s->ff0 == f && s->vocab0 == v);
        h += s->n_head, f += s->n_ff, v += s->n_vocab;
        /* The KV heads held are exactly those the query heads read. */
        const int64_t g = hp->n_head / hp->n_head_kv;
        if (s->n_head > 0)
            CHECK(s->head_kv0 == s->head0 / g &&
                  s->head_kv0 + s->n_head_kv == (s->head0 + s->n_head + g - 1) / g);
    }
    CHECK(h == hp->n_head && f == hp->n_ff && v == hp->n_vocab);
}

static void test_uneven(void)
{
    /* 3 devices, 8 KV heads (no GQA): 3/3/2 heads, whole KV groups. */
    struct ntp_hparams hp = hparams(512, 8, 8, 1024);
    struct ntp_plan pl = plan(&hp, 3, 32, 32);
    check_cover(&hp, &pl);
    CHECK(pl.shard[0].n_head == 3 && pl.shard[1].n_head == 3 && pl.shard[2].n_head == 2);
    CHECK(pl.kv_replicas == 1 && pl.note[0] == '\0');
    /* FFN 1024 in 32-blocks: 32 blocks over 3 devices, 11/11/10 blocks. */
    CHECK(pl.shard[0].n_ff == 352 && pl.shard[2].n_ff == 320);
}

static void test_kv_replication(void)
{
    /* 4 devices, 2 KV heads, 8 query heads: 2 heads each, each KV head on 2 devices. */
    struct ntp_hparams hp = hparams(512, 8, 2, 1024);
    struct ntp_plan pl = plan(&hp, 4, 32, 32);
    check_cover(&hp, &pl);
    for (int d = 0; d < 4; d++)
        CHECK(pl.shard[d].n_head == 2 && pl.shard[d].n_head_kv == 1 &&
              pl.shard[d].head_kv0 == d / 2);
    CHECK(pl.kv_replicas == 2 && strstr(pl.note, "replicated") != NULL);
    CHECK(pl.attn_devices == 4 && pl.ffn_devices == 4);
}

static void test_blocks(void)
{
    /* head_dim 64, 256-element blocks: an O cut needs 4 heads; 8 heads -> 2 devices. */
    struct ntp_hparams hp = hparams(512, 8, 8, 768);
    struct ntp_plan pl = plan(&hp, 4, 256, 256);
    check_cover(&hp, &pl);
    for (int d = 0; d < 4; d++) {
        CHECK(pl.shard[d].n_head % 4 == 0);
        CHECK(pl.shard[d].n_head * hp.head_dim_v % 256 == 0);
        CHECK(pl.shard[d].n_ff % 256 == 0);
    }
    CHECK(pl.attn_devices == 2 && pl.ffn_devices == 3);
    CHECK(strstr(pl.note, "attention on 2 of 4") && strstr(pl.note, "FFN on 3 of 4"));
}

static void test_cuts(void)
{
    struct ntp_hparams hp = hparams(512, 8, 2, 1024);
    struct ntp_plan pl = plan(&hp, 2, 32, 32);
    int64_t a, n;
    const struct ntp_shard *s = &pl.shard[1];
    CHECK(ntp__plan_cut(NTP_T_ATTN_Q, s, &hp, &a, &n) == 1 && a == 4 * 64 && n == 4 * 64);
    CHECK(ntp__plan_cut(NTP_T_ATTN_K, s, &hp, &a, &n) == 1 && a == 64 && n == 64);
    CHECK(ntp__plan_cut(NTP_T_ATTN_OUTPUT, s, &hp, &a, &n) == 0 && a == 256 && n == 256);
    CHECK(ntp__plan_cut(NTP_T_FFN_DOWN, s, &hp, &a, &n) == 0 && a == 512 && n == 512);
    CHECK(ntp__plan_cut(NTP_T_FFN_UP, s, &hp, &a, &n) == 1 && a == 512);
    CHECK(ntp__plan_cut(NTP_T_OUTPUT, s, &hp, &a, &n) == 1 && a == 500 && n == 500);
    CHECK(ntp__plan_cut(NTP_T_ATTN_NORM, s, &hp, &a, &n) == -1);
    struct ntp_plan bad;
    const struct ntp_plan_params p = {.n_dev = 0};
    CHECK_STATUS(ntp__plan_make(&hp, &p, &bad), NTP_E_INVALID_ARG);
}

static void test_layout(void)
{
    int nodes[8], n;
    CHECK_OK(ntp__layout_parse_nodes("0,2-3", nodes, 8, &n));
    CHECK(n == 3 && nodes[0] == 0 && nodes[1] == 2 && nodes[2] == 3);
    CHECK_STATUS(ntp__layout_parse_nodes("1-", nodes, 8, &n), NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp__layout_parse_nodes("x", nodes, 8, &n), NTP_E_INVALID_ARG);
    ntp_topology *t;
    CHECK_OK(ntp_topology_detect(&t));
    /* --tp 3 on this machine: three devices, one thread each at least. */
    struct ntp_layout l;
    const struct ntp_layout_params lp = {.tp = 3};
    CHECK_OK(ntp__layout_make(t, &lp, &l));
    CHECK(l.n_dev == 3);
    for (int d = 0; d < l.n_dev; d++)
        CHECK(l.dev[d].n_threads >= 1 && l.dev[d].pus[0] >= 0);
    if (ntp_topology_n_nodes(t) < 3)
        CHECK(l.split && strstr(l.desc, "virtual devices"));
    ntp__layout_free(&l);
    /* -t 4 over auto: the threads are shared out over the nodes' devices. */
    const struct ntp_layout_params lt = {.n_threads = 4};
    CHECK_OK(ntp__layout_make(t, &lt, &l));
    CHECK(l.n_dev == ntp_topology_n_nodes(t));
    ntp__layout_free(&l);
    const struct ntp_layout_params ln = {.numa_nodes = "999"};
    CHECK_STATUS(ntp__layout_make(t, &ln, &l), NTP_E_INVALID_ARG);
    ntp_topology_free(t);
}

/* A mixture of experts: every expert's width cut on ffn_down_exps' blocks, or whole experts. */
static void test_moe(void)
{
    struct ntp_hparams hp = hparams(512, 8, 2, 1024);
    hp.n_expert = 8;
    hp.n_expert_used = 2;
    hp.n_ff_exp = 768;
    /* features over 4 devices with 256-element blocks: 3 blocks, the last device idle */
    struct ntp_plan_params p = {.n_dev = 4, .attn_block = 32, .ffn_block = 256, .n_layer = 4};
    struct ntp_plan pl;
    CHECK_OK(ntp__plan_make(&hp, &p, &pl));
    int64_t f = 0;
    for (int d = 0; d < 4; d++) {
        const struct ntp_shard *s = &pl.shard[d];
        CHECK(s->expert0 == 0 && s->n_expert == 8 && s->ff0 == f);
        CHECK(s->n_ff == (d < 3 ? 256 : 0));
        f += s->n_ff;
    }
    CHECK(f == 768 && pl.ffn_devices == 3 && strstr(pl.note, "FFN on 3 of 4 devices"));
    int64_t a, n;
    CHECK(ntp__plan_cut(NTP_T_FFN_GATE_EXPS, &pl.shard[1], &hp, &a, &n) == 1 && a == 256 &&
          n == 256);
    CHECK(ntp__plan_cut(NTP_T_FFN_DOWN_EXPS, &pl.shard[2], &hp, &a, &n) == 0 && a == 512 &&
          n == 256);
    CHECK(ntp__plan_cut(NTP_T_FFN_GATE_INP, &pl.shard[2], &hp, &a, &n) == -1);
    /* experts over 3 devices: 3/3/2 whole experts, all of every expert's width */
    p.moe_split = NTP_MOE_SPLIT_EXPERTS;
    p.n_dev = 3;
    CHECK_OK(ntp__plan_make(&hp, &p, &pl));
    int64_t e = 0;
    for (int d = 0; d < 3; d++) {
        const struct ntp_shard *s = &pl.shard[d];
        CHECK(s->expert0 == e && s->n_expert == (d < 2 ? 3 : 2));
        CHECK(s->ff0 == 0 && s->n_ff == 768);
        e += s->n_expert;
    }
    CHECK(e == 8 && pl.ffn_devices == 3 && strstr(pl.note, "experts on") == NULL);
    /* 3 experts over 4 devices: one holds none */
    hp.n_expert = 3;
    p.n_dev = 4;
    CHECK_OK(ntp__plan_make(&hp, &p, &pl));
    CHECK(pl.ffn_devices == 3 && pl.shard[3].n_expert == 0 && pl.shard[3].n_ff == 0);
    CHECK(strstr(pl.note, "experts on 3 of 4 devices (3 experts)") != NULL);
    p.moe_split = 7;
    CHECK_STATUS(ntp__plan_make(&hp, &p, &pl), NTP_E_INVALID_ARG);
}

int main(void)
{
    test_uneven();
    test_moe();
    test_kv_replication();
    test_blocks();
    test_cuts();
    test_layout();
    return ntp_test_result("plan");
}
