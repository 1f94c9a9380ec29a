/* infer.c - the options and model loading every inference command shares (infer.h). */
#include "cli/infer.h"
#include "cli/io.h"
#include "comm/world.h"
#include "numa/layout.h"

#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

_Static_assert(NTP_CLI_MAX_TP == NTP_LAYOUT_MAX_DEV, "--tp's range is the layout's device limit");

/* The values of --kv-type, -ctk and -ctv, and the cache types they name. */
static const char *const kv_types[] = {"f16", "f32", "q8_0", "q4_0", NULL};
static const enum ntp_type kv_type_ids[] = {NTP_TYPE_F16, NTP_TYPE_F32, NTP_TYPE_Q8_0,
                                            NTP_TYPE_Q4_0};

const char *const ntp_cli_moe_splits[] = {
    [NTP_MOE_SPLIT_FEATURES] = "features", [NTP_MOE_SPLIT_EXPERTS] = "experts", NULL};

double ntp_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void ntp_cli_infer_opts(struct ntp_cli_infer *o, bool lists, struct ntp_cli_opt *out)
{
    const int n = lists ? NTP_CLI_MAX_LIST : 1;
    const struct ntp_cli_opt opts[NTP_CLI_INFER_N_OPTS] = {
        {"--model", "-m", NTP_CLI_STR, .dst = &o->model},
        {"--ctx-size", "-c", NTP_CLI_INT, .dst = &o->ctx, .lo = 0, .hi = NTP_CLI_MAX_CTX},
        {"--kv-type", NULL, NTP_CLI_CHOICE, .dst = &o->kv_type, .choices = kv_types},
        {"--cache-type-k", "-ctk", NTP_CLI_CHOICE, .dst = &o->kv_type_k, .choices = kv_types},
        {"--cache-type-v", "-ctv", NTP_CLI_CHOICE, .dst = &o->kv_type_v, .choices = kv_types},
        {"--threads", "-t", NTP_CLI_INTS, .dst = &o->threads, .lo = 1, .hi = NTP_CLI_MAX_THREADS,
         .max_n = n},
        {"--tp", NULL, NTP_CLI_INTS, .dst = &o->tp, .lo = 1, .hi = NTP_CLI_MAX_TP, .word = "auto",
         .max_n = n},
        {"--numa-nodes", NULL, NTP_CLI_STR, .dst = &o->numa_nodes},
        {"--threads-per-device", NULL, NTP_CLI_INT, .dst = &o->threads_per_device, .lo = 1,
         .hi = NTP_CLI_MAX_THREADS},
        {"--smt", NULL, NTP_CLI_FLAG, .dst = &o->smt},
        {"--verify-numa", NULL, NTP_CLI_FLAG, .dst = &o->verify_numa},
        {"--gpu-layers", "-ngl --n-gpu-layers", NTP_CLI_INTS, .dst = &o->gpu_layers, .lo = 0,
         .hi = NTP_CLI_MAX_NGL, .max_n = n},
        {"--gpu-output", NULL, NTP_CLI_FLAG, .dst = &o->gpu_output},
        {"--cpu-moe", "-cmoe", NTP_CLI_FLAG, .dst = &o->cpu_moe},
        {"--no-mmap", NULL, NTP_CLI_FLAG, .dst = &o->no_mmap},
        {"--moe-split", NULL, NTP_CLI_CHOICE, .dst = &o->moe_split, .choices = ntp_cli_moe_splits},
        {"--pp", NULL, NTP_CLI_INT, .dst = &o->pp, .lo = 1, .hi = NTP_WORLD_MAX},
    };
    for (int i = 0; i < NTP_CLI_INFER_N_OPTS; i++)
        out[i] = opts[i];
    out[NTP_CLI_INFER_N_OPTS] = (struct ntp_cli_opt){NULL};
}

void ntp_cli_infer_help(FILE *f, const char *ctx_default)
{
    fprintf(
        f,
        "  -m, --model FILE        GGUF model (required)\n"
        "  -c, --ctx-size N        context positions, 0 .. %d; 0: min(training context,\n"
        "                          4096) (default: %s)\n"
        "  --kv-type TYPE          K and V cache type: f16 (default), f32, q8_0 or q4_0;\n"
        "                          q8_0 and q4_0 (blocks of 32) need head widths that are\n"
        "                          multiples of 32 and CPU devices\n"
        "  -ctk, --cache-type-k TYPE, -ctv, --cache-type-v TYPE\n"
        "                          llama.cpp's names (default f16 each): numatp keeps K and\n"
        "                          V in one type, so they must be equal\n"
        "  -t, --threads N         compute threads in all, 1 .. %d (default: one per\n"
        "                          physical core); more than a device has cores (hardware\n"
        "                          threads with --smt) is capped at them, with a warning\n"
        "  --tp auto|N             tensor-parallel CPU devices, 1 .. %d; auto (default): one\n"
        "                          per NUMA node; more than the nodes splits their cores into\n"
        "                          virtual devices\n"
        "  --numa-nodes LIST       NUMA nodes to use, e.g. 0,1 or 0-3 (default: all)\n"
        "  --threads-per-device N  threads of each device, 1 .. %d, capped as -t is\n"
        "                          (default: -t shared out, else one per physical core)\n"
        "  --smt                   also use the hyperthreads of each core\n"
        "  --verify-numa           check that every weight, KV cache and scratch page is on\n"
        "                          its device's node (move_pages); a misplaced page is an error\n"
        "  -ngl, --gpu-layers N    run the first N transformer blocks on the GPU (CUDA), the\n"
        "                          rest on the CPU devices, 0 .. %d; N above the model's\n"
        "                          count: all (default 0; also --n-gpu-layers)\n"
        "  --gpu-output            run the final norm and output head on the GPU as well\n"
        "  -cmoe, --cpu-moe        a mixture of experts: keep every block's router and\n"
        "                          experts on the CPU devices, only the attention of the\n"
        "                          -ngl blocks on the GPU\n"
        "  --no-mmap               read the model file instead of mapping it\n"
        "  --moe-split HOW         a mixture of experts over the tensor-parallel devices:\n"
        "                          features (default: each device a slice of every\n"
        "                          expert's width) or experts (whole experts per device)\n"
        "  --pp N                  under mpirun -np N: a pipeline of N stages, one per\n"
        "                          process, each a range of blocks (default 1: the\n"
        "                          tensor-parallel group spans the processes)\n",
        NTP_CLI_MAX_CTX, ctx_default, NTP_CLI_MAX_THREADS, NTP_CLI_MAX_TP, NTP_CLI_MAX_THREADS,
        NTP_CLI_MAX_NGL);
}

static int32_t first(const struct ntp_cli_ints *l)
{
    return l->n > 0 ? (int32_t)l->v[0] : 0;
}

/* The checks that span options or need more than a number's range. */
static int infer_check(const char *cmd, const struct ntp_cli_infer *o)
{
    if (o->model == NULL) {
        fprintf(stderr, "numatp %s: -m FILE is required (see numatp %s --help)\n", cmd, cmd);
        return 2;
    }
    bool no_gpu_layers = o->gpu_layers.n == 0;
    for (int i = 0; i < o->gpu_layers.n; i++)
        no_gpu_layers |= o->gpu_layers.v[i] == 0;
    if (o->gpu_output && no_gpu_layers) {
        fprintf(stderr, "numatp %s: --gpu-output needs --gpu-layers N with N > 0\n", cmd);
        return 2;
    }
    /* One type for K and V: -ctk and -ctv agree, and with --kv-type when both name one. */
    if (o->kv_type_k != o->kv_type_v) {
        fprintf(stderr,
                "numatp %s: -ctk %s with -ctv %s: numatp keeps K and V in one cache type; give "
                "both the same type (or --kv-type TYPE)\n",
                cmd, kv_types[o->kv_type_k], kv_types[o->kv_type_v]);
        return 2;
    }
    if (o->kv_type_k != 0 && o->kv_type != 0 && o->kv_type != o->kv_type_k) {
        fprintf(stderr, "numatp %s: --kv-type %s with -ctk/-ctv %s: give one cache type\n", cmd,
                kv_types[o->kv_type], kv_types[o->kv_type_k]);
        return 2;
    }
    int nodes[NTP_LAYOUT_MAX_DEV], n_nodes;
    if (o->numa_nodes &&
        ntp__layout_parse_nodes(o->numa_nodes, nodes, NTP_LAYOUT_MAX_DEV, &n_nodes) != NTP_OK) {
        fprintf(stderr, "numatp %s: %s\n", cmd, ntp_last_error());
        return 2;
    }
    return 0;
}

/* The cache type the options name: -ctk/-ctv when given, else --kv-type (index of kv_types). */
static int64_t kv_index(const struct ntp_cli_infer *o)
{
    return o->kv_type_k != 0 ? o->kv_type_k : o->kv_type;
}

int ntp_cli_infer_apply(const char *cmd, const struct ntp_cli_infer *o, ntp_model_params *mp,
                        ntp_context_params *cp)
{
    const int rc = infer_check(cmd, o);
    if (rc != 0)
        return rc;
    *mp = ntp_model_default_params();
    mp->n_threads = first(&o->threads);
    mp->tp = first(&o->tp);
    mp->numa_nodes = o->numa_nodes;
    mp->threads_per_device = (int32_t)o->threads_per_device;
    mp->smt = o->smt;
    mp->n_gpu_layers = first(&o->gpu_layers);
    mp->gpu_output = o->gpu_output;
    mp->cpu_moe = o->cpu_moe;
    mp->use_mmap = !o->no_mmap;
    mp->moe_split = o->moe_split;
    mp->pp = (int32_t)o->pp;
    *cp = ntp_context_default_params();
    cp->n_ctx = o->ctx > 0 ? (int32_t)o->ctx : 0;
    cp->kv_type = kv_type_ids[kv_index(o)];
    return 0;
}

const char *ntp_cli_infer_kv_name(const struct ntp_cli_infer *o)
{
    return kv_types[kv_index(o)];
}

/* Progress every 10% on stderr; user points at the last tenth printed. */
static bool load_progress(float fraction, void *user)
{
    int *last = user;
    const int tenth = (int)(fraction * 10.0f);
    if (tenth > *last) {
        *last = tenth;
        fprintf(stderr, "\rnumatp: loading weights %3d%%%s", tenth * 10, tenth >= 10 ? "\n" : "");
        fflush(stderr);
    }
    return true;
}

/*
 * More threads than a device has processors only make them take turns (a
 * decode step waits for the slowest thread), so -t and --threads-per-device
 * are capped at the processors of the smallest device, with a warning, as
 * llama.cpp users expect a large -t to run rather than fail. The layout is
 * the one the loader will make; its errors are the loader's to report.
 */
static void cap_threads(const char *cmd, ntp_model_params *mp)
{
    ntp_topology *t = NULL;
    struct ntp_layout l = {0};
    const struct ntp_layout_params lp = {.tp = mp->tp,
                                         .numa_nodes = mp->numa_nodes,
                                         .threads_per_device = mp->threads_per_device,
                                         .n_threads = mp->n_threads,
                                         .smt = mp->smt};
    if ((mp->n_threads > 0 || mp->threads_per_device > 0) && ntp_topology_detect(&t) == NTP_OK &&
        ntp__layout_make(t, &lp, &l) == NTP_OK) {
        int want = 0, have = INT_MAX;
        for (int d = 0; d < l.n_dev; d++) {
            want = l.dev[d].n_threads > want ? l.dev[d].n_threads : want;
            have = l.dev[d].n_slots < have ? l.dev[d].n_slots : have;
        }
        if (want > have) {
            fprintf(stderr,
                    "numatp %s: warning: %s %d gives a device %d threads but it has %d %s%s; "
                    "using %d per device (more threads than processors only take turns)\n",
                    cmd, mp->threads_per_device > 0 ? "--threads-per-device" : "--threads",
                    mp->threads_per_device > 0 ? mp->threads_per_device : mp->n_threads, want, have,
                    mp->smt ? "hardware thread" : "core", have > 1 ? "s" : "", have);
            mp->threads_per_device = have;
        }
    }
    ntp__layout_free(&l);
    ntp_topology_free(t);
}

/* A context longer than the model was trained on runs, but past that length it guesses. */
static void warn_ctx(const char *cmd, const ntp_model *m, const ntp_context_params *cp)
{
    const int32_t train = ntp_model_n_ctx_train(m);
    if (train > 0 && cp->n_ctx > train)
        fprintf(stderr,
                "numatp %s: warning: -c %d is more than the %d positions the model was trained "
                "on; what it predicts past them may be poor\n",
                cmd, (int)cp->n_ctx, (int)train);
}

int ntp_cli_infer_load(const char *cmd, const struct ntp_cli_infer *o, ntp_model **m,
                       ntp_context_params *cp)
{
    ntp_model_params mp;
    const int rc = ntp_cli_infer_apply(cmd, o, &mp, cp);
    if (rc != 0)
        return rc;
    cap_threads(cmd, &mp);
    int last = 0;
    struct stat st;
    if (stat(o->model, &st) == 0 && st.st_size > (256 << 20)) {
        mp.progress = load_progress;
        mp.progress_user = &last;
    }
    const double t0 = ntp_cli_now();
    if (ntp_model_load(o->model, mp, m) != NTP_OK) {
        fprintf(stderr, "numatp %s: %s\n", cmd, ntp_last_error());
        return 1;
    }
    fprintf(stderr, "numatp: %s: %s, %d layers, %d tokens, %.1f MiB of weights on %s (%.2f s)\n",
            o->model, ntp_model_arch(*m), ntp_model_n_layer(*m), ntp_model_n_vocab(*m),
            (double)ntp_model_weight_bytes(*m) / (1024.0 * 1024.0), ntp_model_device_desc(*m),
            ntp_cli_now() - t0);
    warn_ctx(cmd, *m, cp);
    return 0;
}

int ntp_cli_infer_context(const char *cmd, const struct ntp_cli_infer *o, ntp_model *m,
                          ntp_context_params cp, ntp_context **c)
{
    if (ntp_context_new(m, cp, c) != NTP_OK) {
        fprintf(stderr, "numatp %s: %s\n", cmd, ntp_last_error());
        return 1;
    }
    if (!o->verify_numa)
        return 0;
    char table[4096];
    const ntp_status s = ntp_model_verify_numa(m, *c, table, sizeof table);
    fprintf(stderr, "numatp: --verify-numa (%s):\n%s", ntp_model_layout_desc(m), table);
    if (s != NTP_OK) {
        fprintf(stderr, "numatp %s: %s\n", cmd, ntp_last_error());
        return 1;
    }
    fprintf(stderr, "numatp: --verify-numa: every page is on its device's node\n");
    return 0;
}

/* ------------------------------------------------------------ sampling */

struct ntp_cli_sampling ntp_cli_sampling_default(void)
{
    const struct ntp_sampler_params p = ntp__sampler_default_params();
    return (struct ntp_cli_sampling){.temp = p.temperature,
                                     .top_p = p.top_p,
                                     .min_p = p.min_p,
                                     .repeat_penalty = p.repeat_penalty,
                                     .top_k = p.top_k,
                                     .repeat_last_n = p.repeat_last_n,
                                     .seed = -1};
}

void ntp_cli_sampling_opts(struct ntp_cli_sampling *s, struct ntp_cli_opt *out)
{
    const struct ntp_cli_opt opts[NTP_CLI_SAMPLING_N_OPTS] = {
        {"--temp", NULL, NTP_CLI_FLOAT, .dst = &s->temp},
        {"--top-k", NULL, NTP_CLI_INT, .dst = &s->top_k, .lo = 0, .hi = INT32_MAX},
        {"--top-p", NULL, NTP_CLI_FLOAT, .dst = &s->top_p},
        {"--min-p", NULL, NTP_CLI_FLOAT, .dst = &s->min_p},
        {"--repeat-penalty", NULL, NTP_CLI_FLOAT, .dst = &s->repeat_penalty, .positive = true},
        {"--repeat-last-n", NULL, NTP_CLI_INT, .dst = &s->repeat_last_n, .lo = 0, .hi = INT32_MAX},
        /* -1 and UINT32_MAX both ask for a seed from the clock, as in llama.cpp. */
        {"--seed", NULL, NTP_CLI_INT, .dst = &s->seed, .lo = -1, .hi = UINT32_MAX},
    };
    for (int i = 0; i < NTP_CLI_SAMPLING_N_OPTS; i++)
        out[i] = opts[i];
    out[NTP_CLI_SAMPLING_N_OPTS] = (struct ntp_cli_opt){NULL};
}

void ntp_cli_sampling_help(FILE *f)
{
    fprintf(f, "  --temp T                temperature; 0 = greedy (default 0.8)\n"
               "  --top-k K               keep the K most likely tokens; 0 = off (default 40)\n"
               "  --top-p P               nucleus sampling; 1 = off (default 0.95)\n"
               "  --min-p P               drop tokens below P x the best one; 0 = off (default "
               "0.05)\n"
               "  --repeat-penalty R      penalty of recently seen tokens; 1 = off (default 1)\n"
               "  --repeat-last-n N       tokens the penalty looks back at; 0 = off (default 64)\n"
               "  --seed S                random seed, 0 .. 4294967295; -1: from the clock "
               "(default)\n");
}

ntp_status ntp_cli_sample(struct ntp_sampler *smp, const float *logits, int32_t *tok, bool *stop)
{
    int32_t pick[2] = {0, 0};
    ntp_status s = ntp__sampler_sample(smp, logits, &pick[0]);
    pick[1] = ntp_cli_interrupted();
    if (s == NTP_OK)
        s = ntp__world_bcast(pick, sizeof pick, 0);
    if (s == NTP_OK)
        s = ntp__sampler_accept(smp, pick[0]);
    *tok = pick[0];
    *stop = pick[1] != 0;
    return s;
}

struct ntp_sampler_params ntp_cli_sampling_params(const struct ntp_cli_sampling *s)
{
    struct ntp_sampler_params p = ntp__sampler_default_params();
    p.temperature = s->temp;
    p.top_k = (int32_t)s->top_k;
    p.top_p = s->top_p;
    p.min_p = s->min_p;
    p.repeat_penalty = s->repeat_penalty;
    p.repeat_last_n = (int32_t)s->repeat_last_n;
    p.seed = s->seed < 0 ? NTP_SAMPLER_SEED_RANDOM : (uint32_t)s->seed;
    return p;
}
