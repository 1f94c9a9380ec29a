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
#include "model/plan.h"

#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: numatp plan -m FILE [--tp N] [-c N] [-np N] [-ngl N [--gpu-output] "
            "[-cmoe]]\n\n"
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
            "  -h, --help            this help\n",
            NTP_CLI_MAX_TP, NTP_CLI_MAX_CTX, NTP_CLI_MAX_CTX, NTP_CLI_MAX_PARALLEL,
            NTP_CLI_MAX_NGL);
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

int ntp_cli_plan(int argc, char **argv)
{
    const char *model = NULL;
    int64_t tp = 2, ngl = 0, ctx = 0, batch = 512, kv_type = 0, parallel = 1;
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
    struct ntp_plan plan;
    struct ntp_hparams hp;
    uint64_t bytes[NTP_PLAN_MAX_DEV] = {0}, total = 0;
    /* serve's context: a sequence per slot, its batch a prompt chunk plus a token per slot */
    struct ntp_kv_plan kv = {.n_ctx = ctx,
                             .n_batch = parallel > 1 ? batch + parallel : batch,
                             .n_seq = parallel,
                             .type = kv_ids[kv_type]};
    if (ctx == 0) { /* the context's default (ntp_context_default_params), known once read */
        if (ntp__model_plan_file(model, (int)tp, moe_split, &plan, &hp, bytes, NULL) != NTP_OK) {
            fprintf(stderr, "numatp plan: %s\n", ntp_last_error());
            return 1;
        }
        kv.n_ctx = hp.n_ctx < 4096 ? hp.n_ctx : 4096;
    }
    if (ntp__model_plan_file(model, (int)tp, moe_split, &plan, &hp, bytes, &kv) != NTP_OK) {
        fprintf(stderr, "numatp plan: %s\n", ntp_last_error());
        return 1;
    }
    char ffn[160];
    if (hp.n_expert > 0)
        snprintf(ffn, sizeof ffn, "%lld experts of %lld, %lld per token (split by %s)",
                 (long long)hp.n_expert, (long long)hp.n_ff_exp, (long long)hp.n_expert_used,
                 moe_split == NTP_MOE_SPLIT_EXPERTS
                     ? "experts: each device its experts, whole"
                     : "features: ffn is each device's slice of every expert");
    else
        snprintf(ffn, sizeof ffn, "FFN %lld", (long long)hp.n_ff);
    printf("%s: %lld layers, %lld heads / %lld KV heads of %lld, %s, vocabulary %lld; "
           "%d devices\n",
           model, (long long)hp.n_layer, (long long)hp.n_head, (long long)hp.n_head_kv,
           (long long)hp.head_dim_k, ffn, (long long)hp.n_vocab, plan.n_dev);
    for (int d = 0; d < plan.n_dev; d++) {
        print_device(d, &plan.shard[d], bytes[d], hp.n_head / hp.n_head_kv, hp.n_expert > 0);
        total += bytes[d];
    }
    printf("total %.1f MiB of weights; replicated on every device: the norms%s%s\n",
           (double)total / (1024.0 * 1024.0), hp.n_expert > 0 ? " and the routers" : "",
           plan.kv_replicas > 1 ? "; * = KV heads shared with another device" : "");
    print_kv(&kv, plan.n_dev, &hp, kv_types[kv_type]);
    if (plan.note[0])
        printf("note: %s\n", plan.note);
    return ngl > 0 ? print_gpu(model, ngl, gpu_output, cpu_moe) : 0;
}
