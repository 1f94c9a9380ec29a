/*
 * cmd_plan.c - `numatp plan -m FILE --tp N`: the shard plan of a model over N
 * tensor-parallel devices (docs/architecture.md), without loading the
 * weights: per device its query and KV heads, its FFN (or every expert's) and vocabulary slices,
 * the bytes of weights it would hold, what is replicated, and the KV cache a
 * context of -c positions would take (less where sliding-window layers keep
 * a ring).
 */
#include "cli/cli.h"
#include "cli/infer.h"
#include "model/hybrid.h"
#include "comm/world.h"
#include "model/plan.h"

#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: numatp plan -m FILE [--tp N] [-c N] [-np N] [-ngl N [--gpu-output] "
            "[-cmoe]]\n"
            "                   [--ranks R [--pp R]]\n\n"
            "Print how the model's weights are split over N tensor-parallel devices:\n"
            "column cuts for Q/K/V, gate/up and the output head, row cuts for O and\n"
            "down on head and quantization-block boundaries.\n\n"
            "options:\n"
            "  -m, --model FILE      GGUF model (required)\n"
            "  --tp N                devices, 1 .. %d (default 2)\n"
            "  -c, --ctx-size N      context positions for the KV cache line, 1 .. %d\n"
            "                        (default: min(training context, 4096), as run)\n"
            "  -b, --batch-size N    tokens per batch, 1 .. %d (default 512)\n"
            "  --kv-type TYPE        KV cache type: f16 (default), f32, q8_0, q4_0\n"
            "  -np, --parallel N     sequences the KV cache holds, as serve --parallel N\n"
            "                        allocates (-c positions each), 1 .. %d (default 1)\n"
            "  --moe-split HOW       a mixture of experts over the devices: features\n"
            "                        (default: a slice of every expert's width each) or\n"
            "                        experts (whole experts each)\n"
            "  -ngl, --gpu-layers N  also show the GPU's share for hybrid offload: the first\n"
            "                        N blocks (0 .. %d), their GPU memory, how many fit\n"
            "  --gpu-output          the output head on the GPU too\n"
            "  -cmoe, --cpu-moe      a mixture of experts: only the attention of those\n"
            "                        blocks on the GPU, every expert on the CPU devices\n"
            "  --ranks R             processes under mpirun -np R, 1 .. %d, each with --tp\n"
            "                        devices (default 1): what each holds and sends per token\n"
            "  --pp R                the R processes as pipeline stages (default 1: one\n"
            "                        tensor-parallel group over all their devices)\n"
            "  -h, --help            this help\n",
            NTP_CLI_MAX_TP, NTP_CLI_MAX_CTX, NTP_CLI_MAX_CTX, NTP_CLI_MAX_PARALLEL, NTP_CLI_MAX_NGL,
            NTP_WORLD_MAX);
}

/* The KV cache per device, and what the sliding-window layers' rings save. */
static void print_kv(const struct ntp_kv_plan *kv, int n_dev, const struct ntp_hparams *hp,
                     const char *kv_name)
{
    const double mib = 1024.0 * 1024.0;
    uint64_t total = 0, plain = 0;
    size_t row;
    if (ntp_type_row_size(kv->type, hp->head_dim_k, &row) != NTP_OK ||
        ntp_type_row_size(kv->type, hp->head_dim_v, &row) != NTP_OK) {
        printf("kv cache: %s cannot hold this model's heads of %lld (a multiple of 32 is "
               "needed)\n",
               kv_name, (long long)hp->head_dim_k);
        return;
    }
    /* with several sequences the batch also carries a token of each (serve's step) */
    printf("kv cache at -c %lld, batch %lld, %s", (long long)kv->n_ctx,
           (long long)(kv->n_batch - (kv->n_seq > 1 ? kv->n_seq : 0)), kv_name);
    if (kv->n_seq > 1)
        printf(", %lld sequences (--parallel)", (long long)kv->n_seq);
    printf(":");
    for (int d = 0; d < n_dev; d++) {
        printf("%s dev %d %.1f MiB", d ? "," : "", d, (double)kv->bytes[d] / mib);
        total += kv->bytes[d];
        plain += kv->plain[d];
    }
    printf("; total %.1f MiB\n", (double)total / mib);
    if (kv->n_ctx > 0)
        printf("kv cache per token: %llu bytes on device 0%s\n",
               (unsigned long long)(kv->plain[0] / (uint64_t)kv->n_ctx),
               hp->kv_lora ? " (the latent and the RoPE key of every layer, on every device)"
                           : "");
    if (kv->n_ring)
        printf("kv cache: %lld of %lld layers attend to a sliding window of %lld positions and "
               "keep a ring of %lld (%.1f MiB instead of %.1f MiB)\n",
               (long long)kv->n_ring, (long long)hp->n_layer, (long long)hp->n_swa,
               (long long)kv->ring, (double)total / mib, (double)plain / mib);
}

static void print_device(int d, const struct ntp_shard *sh, uint64_t bytes, int64_t group, bool moe)
{
    const bool kv_shared = sh->n_head_kv * group > sh->n_head;
    printf("dev %-2d  heads [%3lld, %3lld) %3lld   kv heads [%3lld, %3lld) %2lld%s   "
           "ffn [%6lld, %6lld) %6lld   vocab [%7lld, %7lld) %7lld   %9.1f MiB\n",
           d, (long long)sh->head0, (long long)(sh->head0 + sh->n_head), (long long)sh->n_head,
           (long long)sh->head_kv0, (long long)(sh->head_kv0 + sh->n_head_kv),
           (long long)sh->n_head_kv, kv_shared ? "*" : " ", (long long)sh->ff0,
           (long long)(sh->ff0 + sh->n_ff), (long long)sh->n_ff, (long long)sh->vocab0,
           (long long)(sh->vocab0 + sh->n_vocab), (long long)sh->n_vocab,
           (double)bytes / (1024.0 * 1024.0));
    if (moe)
        printf("        experts [%3lld, %3lld) %3lld\n", (long long)sh->expert0,
               (long long)(sh->expert0 + sh->n_expert), (long long)sh->n_expert);
    if (moe && (sh->n_sff > 0 || sh->n_dff > 0))
        printf("        dense ffn [%6lld, %6lld) %6lld   shared experts [%6lld, %6lld) %6lld\n",
               (long long)sh->dff0, (long long)(sh->dff0 + sh->n_dff), (long long)sh->n_dff,
               (long long)sh->sff0, (long long)(sh->sff0 + sh->n_sff), (long long)sh->n_sff);
}

/* The GPU's share under --gpu-layers: blocks, bytes, and whether they fit. */
static int print_gpu(const char *model, int64_t ngl, bool gpu_output, bool cpu_moe)
{
    struct ntp_hybrid_plan h;
    if (ntp__hybrid_plan_file(model, (int32_t)ngl, gpu_output, cpu_moe, &h) != NTP_OK) {
        fprintf(stderr, "numatp plan: %s\n", ntp_last_error());
        return 1;
    }
    const double mib = 1024.0 * 1024.0;
    printf("gpu     %slayers [0, %lld)%s: %.1f MiB of GPU memory (types the kernels cannot read "
           "are held as F16 copies too); the CPU devices run %slayers [%lld, %lld)\n",
           h.attn_only ? "the attention of " : "", (long long)h.ngl,
           h.head ? " and the output head" : "", (double)h.gpu_bytes / mib,
           h.attn_only ? "every block's FFN and " : "", (long long)h.ngl, (long long)h.n_layer);
    if (cpu_moe && !h.attn_only)
        printf("gpu     --cpu-moe: no effect, the model has no experts\n");
    if (h.fit < 0)
        printf("gpu     none here: %s\n", h.gpu_desc);
    else
        printf("gpu     %s: %.1f MiB free, %.1f MiB kept for the KV cache and scratch: %s\n",
               h.gpu_desc, (double)h.gpu_free / mib, (double)h.gpu_keep / mib,
               h.fit == h.ngl ? "fits" : "does not fit");
    if (h.fit >= 0 && h.fit < h.ngl)
        printf("gpu     at most %lld layers fit (--gpu-layers %lld)\n", (long long)h.fit,
               (long long)h.fit);
    return 0;
}

/* One tensor-parallel group to plan and print (a pipeline stage's under --pp). */
struct group {
    const char *model;
    int n_dev, moe_split;
    struct ntp_kv_plan kv; /* n_ctx 0: the context's default, known once the file is read */
    const char *kv_name;
    struct ntp_hparams hp; /* out */
    struct ntp_plan plan;  /* out: the last group printed */
};

/* The group's devices, weights and KV cache: all blocks, or stage `stage` of n_stage's. */
static int print_group(struct group *g, int stage, int n_stage)
{
    uint64_t bytes[NTP_PLAN_MAX_DEV] = {0}, total = 0;
    struct ntp_kv_plan kv = g->kv;
    const struct ntp_hparams *hp = &g->hp;
    ntp_status s = NTP_OK;
    if (kv.n_ctx == 0) { /* the context's default (ntp_context_default_params), known once read */
        s = ntp__model_plan_stage(g->model, g->n_dev, g->moe_split, stage, n_stage, &g->plan,
                                  &g->hp, bytes, NULL);
        kv.n_ctx = hp->n_ctx < 4096 ? hp->n_ctx : 4096;
    }
    if (s == NTP_OK)
        s = ntp__model_plan_stage(g->model, g->n_dev, g->moe_split, stage, n_stage, &g->plan,
                                  &g->hp, bytes, &kv);
    if (s != NTP_OK) {
        fprintf(stderr, "numatp plan: %s\n", ntp_last_error());
        return 1;
    }
    if (stage == 0) {
        char ffn[160];
        if (hp->n_expert > 0)
            snprintf(ffn, sizeof ffn, "%lld experts of %lld, %lld per token (split by %s)",
                     (long long)hp->n_expert, (long long)hp->n_ff_exp, (long long)hp->n_expert_used,
                     g->moe_split == NTP_MOE_SPLIT_EXPERTS
                         ? "experts: each device its experts, whole"
                         : "features: ffn is each device's slice of every expert");
        else
            snprintf(ffn, sizeof ffn, "FFN %lld", (long long)hp->n_ff);
        char attn[160];
        if (hp->kv_lora > 0) /* the KV head is the latent every device caches */
            snprintf(attn, sizeof attn,
                     "%lld heads of %lld over one latent of %lld + %lld RoPE (MLA; the latent "
                     "cached on every device)",
                     (long long)hp->n_head, (long long)hp->mla_k, (long long)hp->kv_lora,
                     (long long)hp->n_rot);
        else
            snprintf(attn, sizeof attn, "%lld heads / %lld KV heads of %lld",
                     (long long)hp->n_head, (long long)hp->n_head_kv, (long long)hp->head_dim_k);
        printf("%s: %lld layers, %s, %s, vocabulary %lld; %d devices%s\n", g->model,
               (long long)hp->n_layer, attn, ffn, (long long)hp->n_vocab, g->n_dev * n_stage,
               n_stage > 1 ? " in all" : "");
        if (hp->n_layer_dense > 0 || hp->n_expert_shared > 0)
            printf("dense FFN %lld wide in the first %lld layers; %lld shared experts (%lld "
                   "wide), split by features on every device\n",
                   (long long)hp->n_ff, (long long)hp->n_layer_dense,
                   (long long)hp->n_expert_shared, (long long)ntp__hp_ff_shexp(hp));
    }
    const struct ntp_shard *sh0 = &g->plan.shard[0];
    if (n_stage > 1)
        printf("rank %d, pipeline stage %d: layers [%lld, %lld)%s\n", stage, stage,
               (long long)sh0->layer0, (long long)(sh0->layer0 + sh0->n_layer),
               stage == n_stage - 1 ? " and the output head" : "");
    for (int d = 0; d < g->plan.n_dev; d++) {
        print_device(d, &g->plan.shard[d], bytes[d], hp->n_head / hp->n_head_kv, hp->n_expert > 0);
        total += bytes[d];
    }
    printf("total %.1f MiB of weights; replicated on every device: the norms%s%s%s\n",
           (double)total / (1024.0 * 1024.0), hp->n_expert > 0 ? ", the routers" : "",
           hp->kv_lora > 0 ? ", the latent's (and the query's low-rank) projections" : "",
           g->plan.kv_replicas > 1 ? "; * = KV heads shared with another device" : "");
    print_kv(&kv, g->plan.n_dev, hp, g->kv_name);
    if (g->plan.note[0])
        printf("note: %s\n", g->plan.note);
    return 0;
}

/*
 * Under mpirun --ranks R: which devices each rank holds and what crosses
 * between the ranks per generated token (the hidden state and logits in
 * floats, as numatp sends them; message sizes, not the transport's).
 */
static void print_traffic(const struct group *g, int ranks, int pp)
{
    const double kib = 1024.0, e = (double)g->hp.n_embd * 4, v = (double)g->hp.n_vocab * 4;
    const int64_t L = g->hp.n_layer;
    if (pp > 1) {
        printf("per token: each rank but the last hands the next the hidden state (%.1f KiB); "
               "the last sends every rank the logits (%.1f KiB each)\n",
               e / kib, v / kib);
        return;
    }
    const int per = g->n_dev / ranks;
    for (int r = 0; r < ranks; r++) {
        int64_t cols = 0;
        for (int d = r * per; d < (r + 1) * per; d++)
            cols += g->plan.shard[d].n_vocab;
        char devs[32];
        snprintf(devs, sizeof devs, per > 1 ? "devices %d-%d" : "device %d", r * per,
                 (r + 1) * per - 1);
        printf("rank %d: %s; per token it sends every other rank %lld all-reduce shares of "
               "%lld floats (%.1f KiB in all) and its %lld logit columns (%.1f KiB)\n",
               r, devs, (long long)(2 * L), (long long)g->hp.n_embd, (double)(2 * L) * e / kib,
               (long long)cols, (double)cols * 4 / kib);
    }
}

int ntp_cli_plan(int argc, char **argv)
{
    const char *model = NULL;
    int64_t tp = 2, ngl = 0, ctx = 0, batch = 512, kv_type = 0, parallel = 1, ranks = 1, pp = 1;
    int moe_split = NTP_MOE_SPLIT_FEATURES; /* an index of ntp_cli_moe_splits */
    bool help = false, gpu_output = false, cpu_moe = false;
    static const char *const kv_types[] = {"f16", "f32", "q8_0", "q4_0", NULL};
    static const enum ntp_type kv_ids[] = {NTP_TYPE_F16, NTP_TYPE_F32, NTP_TYPE_Q8_0,
                                           NTP_TYPE_Q4_0};
    /* The same names and ranges as the inference commands' options (infer.h). */
    const struct ntp_cli_opt opts[] = {
        {"--model", "-m", NTP_CLI_STR, .dst = &model},
        {"--tp", NULL, NTP_CLI_INT, .dst = &tp, .lo = 1, .hi = NTP_CLI_MAX_TP},
        {"--ctx-size", "-c", NTP_CLI_INT, .dst = &ctx, .lo = 1, .hi = NTP_CLI_MAX_CTX},
        {"--batch-size", "-b", NTP_CLI_INT, .dst = &batch, .lo = 1, .hi = NTP_CLI_MAX_CTX},
        {"--kv-type", NULL, NTP_CLI_CHOICE, .dst = &kv_type, .choices = kv_types},
        {"--parallel", "-np", NTP_CLI_INT, .dst = &parallel, .lo = 1, .hi = NTP_CLI_MAX_PARALLEL},
        {"--moe-split", NULL, NTP_CLI_CHOICE, .dst = &moe_split, .choices = ntp_cli_moe_splits},
        {"--gpu-layers", "-ngl --n-gpu-layers", NTP_CLI_INT, .dst = &ngl, .lo = 0,
         .hi = NTP_CLI_MAX_NGL},
        {"--gpu-output", NULL, NTP_CLI_FLAG, .dst = &gpu_output},
        {"--cpu-moe", "-cmoe", NTP_CLI_FLAG, .dst = &cpu_moe},
        {"--ranks", NULL, NTP_CLI_INT, .dst = &ranks, .lo = 1, .hi = NTP_WORLD_MAX},
        {"--pp", NULL, NTP_CLI_INT, .dst = &pp, .lo = 1, .hi = NTP_WORLD_MAX},
        {"--help", "-h", NTP_CLI_FLAG, .dst = &help},
        {NULL},
    };
    int rc = ntp_cli_parse("plan", argc, argv, (const struct ntp_cli_opt *const[]){opts, NULL});
    if (rc != 0 || help)
        return rc != 0 ? rc : (usage(stdout), 0);
    if (model == NULL || (gpu_output && ngl == 0)) {
        fprintf(stderr, "numatp plan: %s (see numatp plan --help)\n",
                model ? "--gpu-output needs --gpu-layers N with N > 0" : "-m FILE is required");
        return 2;
    }
    if (ranks > 1 &&
        (ngl > 0 || (pp > 1 && pp != ranks) || tp * (pp > 1 ? 1 : ranks) > NTP_PLAN_MAX_DEV)) {
        fprintf(stderr, "numatp plan: --ranks %lld: %s (see numatp plan --help)\n",
                (long long)ranks,
                ngl > 0                 ? "-ngl under mpirun is not supported yet"
                : pp > 1 && pp != ranks ? "--pp must be 1 or the number of ranks"
                                        : "more devices than one group can have (16)");
        return 2;
    }
    if (pp > 1 && ranks == 1) {
        fprintf(stderr, "numatp plan: --pp %lld needs --ranks %lld (one stage per process)\n",
                (long long)pp, (long long)pp);
        return 2;
    }
    struct group g = {.model = model,
                      .n_dev = (int)(pp > 1 ? tp : tp * ranks),
                      .moe_split = moe_split,
                      .kv = {.n_ctx = ctx,
                             /* serve's context: a sequence per slot, its batch a prompt chunk
                                plus a token per slot */
                             .n_batch = parallel > 1 ? batch + parallel : batch,
                             .n_seq = parallel,
                             .type = kv_ids[kv_type]},
                      .kv_name = kv_types[kv_type]};
    for (int stage = 0; stage < (pp > 1 ? pp : 1); stage++)
        if ((rc = print_group(&g, stage, (int)pp)) != 0)
            return rc;
    if (ranks > 1)
        print_traffic(&g, (int)ranks, (int)pp);
    return ngl > 0 ? print_gpu(model, ngl, gpu_output, cpu_moe) : 0;
}
