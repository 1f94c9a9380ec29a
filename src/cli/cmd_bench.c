/*
 * cmd_bench.c - `numatp bench`: prompt processing (pp: p tokens as one
 * batch) and generation (tg: n tokens one at a time) speed, like llama-bench,
 * for every combination of the listed tensor-parallel sizes, thread counts
 * and GPU layer counts, at every listed depth (-d: the KV cache already
 * holds that many tokens, filled before each pass and not timed). Each test
 * runs once as a warm-up, then r times; the result is the mean and standard
 * deviation of the repetitions. Tokens are random valid ids, not text, as
 * llama-bench does.
 *
 * What llama-bench lacks: the weight bandwidth generation achieves (bytes
 * of weights read per token x tok/s) and its ratio to the STREAM read
 * bandwidth measured in the same run with the same threads (src/numa/membw).
 *
 * Output: a markdown table shaped like llama-bench's (default), --csv, or
 * --json with llama-bench's field names where the meaning is the same.
 */
#include "cli/cli.h"
#include "cli/infer.h"
#include "cli/json.h"
#include "comm/world.h"
#include "kernels/kernels.h"
#include "model/arch.h"
#include "numa/membw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS (1 << 20) /* -p, -n */

enum out_fmt { OUT_MD, OUT_CSV, OUT_JSON };

static const char *const out_fmts[] = {"md", "csv", "json", NULL}; /* by enum out_fmt */

struct bench_args {
    const char *stream_str;
    uint64_t stream_bytes; /* STREAM array size; 0: skip the measurement */
    int64_t reps;
    bool json, csv, md, help;
    struct ntp_cli_ints p, n, d; /* -p, -n, -d */
    int fmt;                     /* enum out_fmt; -1 until -o or a format flag is seen */
    struct ntp_cli_infer inf;    /* -m, -c, -t, --tp, -ngl, ...: -t, --tp and -ngl take lists */
};

/* What the file says about the model (for the model/size/params columns). */
struct model_info {
    char type[128];           /* "llama 1B Q4_0", as llama-bench's model_type */
    uint64_t size;            /* bytes of all tensors */
    uint64_t n_params;        /* elements of all tensors */
    uint64_t bytes_per_token; /* weight bytes one generated token reads */
};

/* One row of the output: a test at one (tp, threads, ngl). */
struct result {
    int64_t n_prompt, n_gen; /* one of them is 0 */
    int64_t n_depth;         /* tokens in the cache before the timed part */
    int64_t tp, n_threads, ngl;
    int reps;
    double *samples_ns; /* [reps]; owned */
    double avg_ns, stddev_ns, avg_ts, stddev_ts;
    double stream_read_gbps; /* STREAM read of the same threads; 0 when not measured */
    double allreduce_share;  /* all-reduce time / decode time over the timed passes; -1 with
                                one device (no all-reduce) */
    double pp_share;         /* time handing over between pipeline stages / decode time;
                                -1 without mpirun --pp */
    int64_t pp;              /* pipeline stages over mpirun's processes (1: none) */
    char test_time[32];
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: numatp bench -m FILE [options]\n\n"
            "Measure prompt processing (pp) and generation (tg) speed like llama-bench, for\n"
            "every combination of the listed values. LIST: comma-separated values, e.g. 1,2,4;\n"
            "-t, --tp and -ngl below take lists too (each value in the range given there).\n\n"
            "options:\n"
            "  -p, --n-prompt LIST     prompt tokens processed as one batch, 0 .. %d; 0 skips pp\n"
            "                          (default 512)\n"
            "  -n, --n-gen LIST        tokens generated one at a time, 0 .. %d; 0 skips tg\n"
            "                          (default 128)\n"
            "  -d, --n-depth LIST      tokens already in the KV cache when pp or tg is timed\n"
            "                          (filled before each pass, not timed), 0 .. %d\n"
            "                          (default 0)\n"
            "  -r, --repetitions N     timed repetitions after one warm-up, 1 .. 1000 (default 5)\n"
            "  --stream-size SIZE      STREAM read array for bw_efficiency, e.g. 256M (default:\n"
            "                          4 x LLC, 64M to 1G); 0 skips it (bw_efficiency null)\n"
            "  -o, --output FMT        md (default), csv or json\n"
            "  --md, --csv, --json     the same as -o md|csv|json\n",
            MAX_TOKENS, MAX_TOKENS, MAX_TOKENS);
    ntp_cli_infer_help(f, "the longest test plus the deepest depth");
    fprintf(f, "  -h, --help              this help\n\n"
               "Results go to stdout, progress to stderr. bw_gbps is the weight bandwidth of\n"
               "generation; bw_efficiency divides it by the STREAM read bandwidth of the same\n"
               "threads measured in the same run: the higher of the figures measured before\n"
               "the tests and right after the generation test (a shared host's bandwidth\n"
               "moves by a third from minute to minute; the higher one errs low).\n");
}

static int check_format(struct bench_args *a)
{
    const int flags = a->json + a->csv + a->md;
    if (flags > 1 || (flags && a->fmt >= 0)) {
        fprintf(stderr, "numatp bench: choose one output format (-o, --md, --csv, --json)\n");
        return 2;
    }
    if (a->fmt < 0)
        a->fmt = a->json ? OUT_JSON : a->csv ? OUT_CSV : OUT_MD;
    return 0;
}

/* A list option's values, or def when it was not given. */
static void list_default(struct ntp_cli_ints *l, int64_t def)
{
    if (l->n == 0)
        *l = (struct ntp_cli_ints){.v = {def}, .n = 1};
}

/* Check the arguments and fill the lists' defaults; 2 on a usage error. */
static int bench_check(struct bench_args *a, int n_cores)
{
    ntp_model_params mp;
    ntp_context_params cp;
    int rc = ntp_cli_infer_apply("bench", &a->inf, &mp, &cp);
    if (rc != 0)
        return rc;
    list_default(&a->p, 512);
    list_default(&a->n, 128);
    list_default(&a->d, 0);
    list_default(&a->inf.threads, n_cores);
    list_default(&a->inf.tp, 0);
    list_default(&a->inf.gpu_layers, 0);
    if (a->stream_str && strcmp(a->stream_str, "0") != 0 &&
        !ntp_cli_parse_size(a->stream_str, &a->stream_bytes)) {
        fprintf(stderr,
                "numatp bench: --stream-size '%s': expected 0 or a byte count such as "
                "256M\n",
                a->stream_str);
        return 2;
    }
    if ((rc = check_format(a)) != 0)
        return rc;
    bool any = false;
    for (int i = 0; i < a->p.n; i++)
        any |= a->p.v[i] > 0;
    for (int i = 0; i < a->n.n; i++)
        any |= a->n.v[i] > 0;
    if (!any) {
        fprintf(stderr, "numatp bench: -p and -n are all 0: nothing to measure\n");
        return 2;
    }
    return 0;
}

/* "1B", "135M": the parameter count rounded as llama.cpp names model sizes. */
static void size_label(uint64_t n, char *buf, size_t cap)
{
    if (n >= 1000000000ull)
        snprintf(buf, cap, "%.0fB", (double)n / 1e9);
    else
        snprintf(buf, cap, "%.0fM", (double)n / 1e6);
}

static int model_info_read(const char *path, struct model_info *mi)
{
    ntp_gguf *g = NULL;
    if (ntp_gguf_open(path, &g) != NTP_OK) {
        fprintf(stderr, "numatp bench: %s\n", ntp_last_error());
        return 1;
    }
    memset(mi, 0, sizeof *mi);
    const bool has_output = ntp_gguf_find_tensor(g, "output.weight") != NULL;
    const char *arch = "?";
    ntp_gguf_get_str(g, "general.architecture", &arch);
    /* A mixture of experts: a token reads the expert tensors' share of its chosen experts. */
    char key[160];
    uint32_t n_exp = 0, n_used = 0;
    snprintf(key, sizeof key, "%s.expert_count", arch);
    if (ntp_gguf_get_u32(g, key, &n_exp) != NTP_OK)
        n_exp = 0;
    snprintf(key, sizeof key, "%s.expert_used_count", arch);
    if (n_exp == 0 || ntp_gguf_get_u32(g, key, &n_used) != NTP_OK || n_used > n_exp)
        n_exp = n_used = 0;
    for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++) {
        const ntp_gguf_tensor *t = ntp_gguf_tensor_at(g, i);
        uint64_t ne = 1;
        for (uint32_t d = 0; d < t->n_dims; d++)
            ne *= (uint64_t)t->ne[d];
        mi->size += t->size;
        mi->n_params += ne;
        /* Generation reads every weight once per token, except the embedding: one row of it
           (negligible), unless the output head reuses it; of an expert tensor
           (ffn_*_exps, ne[2] = expert_count), the chosen experts' matrices. */
        if (has_output && strcmp(t->name, "token_embd.weight") == 0)
            continue;
        if (n_exp > 0 && t->n_dims == 3 && t->ne[2] == (int64_t)n_exp && strstr(t->name, "_exps."))
            mi->bytes_per_token += t->size / n_exp * n_used;
        else
            mi->bytes_per_token += t->size;
    }
    uint32_t ft = 0;
    const char *ftn =
        ntp_gguf_get_u32(g, "general.file_type", &ft) == NTP_OK ? ntp__file_type_name(ft) : NULL;
    char label[32];
    size_label(mi->n_params, label, sizeof label);
    snprintf(mi->type, sizeof mi->type, "%s %s %s", arch, label, ftn ? ftn : "?");
    ntp_gguf_free(g);
    return 0;
}

/* STREAM read GB/s of n threads on cpu node `node` over memory node `node` (-1: machine). */
static double stream_read_on(const ntp_topology *topo, int node, int64_t n_threads, uint64_t bytes)
{
    struct ntp_membw_params p = ntp__membw_default_params(topo);
    p.bytes = bytes;
    p.cpu_node = node;
    p.mem_node = node;
    const int cores = ntp__membw_node_cores(topo, node);
    p.n_threads = n_threads < cores ? (int)n_threads : cores;
    p.reps = 3;
    p.kernels = 1u << NTP_MEMBW_READ;
    struct ntp_membw_result r;
    fprintf(stderr, "numatp bench: STREAM read, %d threads on node %d...\n", p.n_threads, node);
    if (ntp__membw_measure(&p, &r) != NTP_OK) {
        fprintf(stderr, "numatp bench: STREAM read not measured: %s\n", ntp_last_error());
        return 0;
    }
    return r.gbps[NTP_MEMBW_READ].median;
}

/*
 * The read bandwidth the model's devices could reach: with one device (or
 * one node), t threads over the machine's first cores; with devices on
 * several nodes, the sum of each used node's local read with its share of
 * the threads (node-local streams do not share a memory controller).
 */
static double stream_read(const ntp_topology *topo, int64_t tp, int64_t t,
                          const struct bench_args *a)
{
    if (a->stream_str && a->stream_bytes == 0)
        return 0; /* --stream-size 0 */
    const int n_nodes = ntp_topology_n_nodes(topo);
    if (n_nodes == 1 || tp == 1)
        return stream_read_on(topo, -1, t, a->stream_bytes);
    const int64_t used = tp == 0 || tp > n_nodes ? n_nodes : tp;
    double sum = 0;
    for (int d = 0; d < used; d++)
        sum += stream_read_on(topo, d, (t + used - 1) / used, a->stream_bytes);
    return sum;
}

/* xorshift32 for random token ids (fixed seed: every run feeds the same ids). */
static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void random_tokens(const ntp_model *m, int32_t *tok, int64_t n, uint32_t *seed)
{
    const int32_t n_vocab = ntp_model_n_vocab(m);
    for (int64_t i = 0; i < n; i++)
        tok[i] = (int32_t)(rng_next(seed) % (uint32_t)n_vocab);
    if (n > 0 && ntp_model_add_bos(m) && ntp_token_bos(m) >= 0)
        tok[0] = ntp_token_bos(m);
}

/* Mean and sample standard deviation (n - 1; 0 for one sample) of v[0, n). */
static void mean_sd(const double *v, int n, double *mean, double *sd)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++)
        ss += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

/* "pp512", or "tg128 @ d4096" at a depth, as llama-bench names its tests. */
static void test_name(const struct result *r, char *buf, size_t cap)
{
    const int w = snprintf(buf, cap, "%s%lld", r->n_prompt ? "pp" : "tg",
                           (long long)(r->n_prompt ? r->n_prompt : r->n_gen));
    if (r->n_depth > 0 && w > 0 && (size_t)w < cap)
        snprintf(buf + w, cap - (size_t)w, " @ d%lld", (long long)r->n_depth);
}

/* One timed pass of a test from a cache of n_depth tokens (filled untimed): ns into *ns. */
static int run_once(ntp_context *c, const ntp_model *m, const struct result *r, int32_t *tok,
                    uint32_t *seed, double *ns)
{
    const int64_t n = r->n_prompt ? r->n_prompt : r->n_gen;
    ntp_context_reset(c);
    ntp_status s = NTP_OK;
    if (r->n_depth > 0) {
        random_tokens(m, tok, r->n_depth, seed);
        s = ntp_decode(c, tok, (int32_t)r->n_depth, false);
    }
    random_tokens(m, tok, n, seed);
    const double t0 = ntp_cli_now();
    if (r->n_prompt)
        s = ntp_decode(c, tok, (int32_t)n, false);
    for (int64_t i = 0; s == NTP_OK && i < r->n_gen; i++)
        s = ntp_decode(c, &tok[i], 1, false);
    *ns = (ntp_cli_now() - t0) * 1e9;
    if (s != NTP_OK) {
        fprintf(stderr, "\nnumatp bench: %s\n", ntp_last_error());
        return 1;
    }
    return 0;
}

/*
 * The devices of the tensor-parallel group: local ones here, every rank's
 * under mpirun (a pipeline stage's own under --pp).
 */
static int64_t group_devices(int64_t local, int64_t pp)
{
    int64_t all[NTP_WORLD_MAX], n = 0;
    if (pp > 1 || ntp__world_allgather(&local, all, sizeof local) != NTP_OK)
        return local;
    for (int r = 0; r < ntp__world_size(); r++)
        n += all[r];
    return n;
}

/* Warm up once, then r->reps timed passes; fill the statistics of r. */
static int run_test(ntp_context *c, const ntp_model *m, struct result *r, int32_t *tok,
                    const char *tag)
{
    uint32_t seed = 0x1234567u;
    double warm;
    const bool say = ntp__world_rank() == 0; /* under mpirun rank 0 tells the progress */
    ntp_cli_iso_time(r->test_time, sizeof r->test_time);
    if (say)
        fprintf(stderr, "\rnumatp bench: %s warm-up%20s", tag, "");
    if (run_once(c, m, r, tok, &seed, &warm) != 0)
        return 1;
    double *ts = malloc((size_t)r->reps * sizeof *ts);
    if (ts == NULL)
        return 1;
    const int64_t n = r->n_prompt ? r->n_prompt : r->n_gen;
    ntp_context_reset_stats(c); /* the share covers the timed passes, not the warm-up */
    for (int i = 0; i < r->reps; i++) {
        if (say)
            fprintf(stderr, "\rnumatp bench: %s repetition %d/%d%10s", tag, i + 1, r->reps, "");
        fflush(stderr);
        if (run_once(c, m, r, tok, &seed, &r->samples_ns[i]) != 0) {
            free(ts);
            return 1;
        }
        ts[i] = (double)n * 1e9 / r->samples_ns[i];
    }
    ntp_context_stats st;
    ntp_context_get_stats(c, &st);
    r->allreduce_share = st.n_allreduce > 0 && st.t_decode > 0 ? st.t_allreduce / st.t_decode : -1;
    r->pp_share = r->pp > 1 && st.t_decode > 0 ? st.t_pp / st.t_decode : -1;
    mean_sd(r->samples_ns, r->reps, &r->avg_ns, &r->stddev_ns);
    mean_sd(ts, r->reps, &r->avg_ts, &r->stddev_ts);
    if (say)
        fprintf(stderr, "\rnumatp bench: %s %.2f ± %.2f t/s%20s\n", tag, r->avg_ts, r->stddev_ts,
                "");
    free(ts);
    return 0;
}

/* The state of a whole run: arguments, machine, model facts and the rows so far. */
struct bench {
    struct bench_args *a;
    ntp_topology *topo; /* owned */
    struct model_info mi;
    const char *isa;     /* kernel ISA the model runs (static) */
    char cpu_info[128];  /* "model name" of /proc/cpuinfo */
    struct result *rows; /* [n_rows]; owned */
    int n_rows, cap_rows;
};

/*
 * Load the model for one (tp, threads, ngl) and make its context. ntp_model_load
 * puts n_gpu_layers on a GPU or fails, so no CPU figure passes for a GPU one.
 */
static int bench_open(const struct bench_args *a, int64_t tp, int64_t t, int64_t ngl, int64_t max_n,
                      ntp_model **m, ntp_context **c)
{
    struct ntp_cli_infer one = a->inf;
    one.tp = (struct ntp_cli_ints){.v = {tp}, .n = 1};
    one.threads = (struct ntp_cli_ints){.v = {t}, .n = 1};
    one.gpu_layers = (struct ntp_cli_ints){.v = {ngl}, .n = 1};
    ntp_context_params cp;
    int rc = ntp_cli_infer_load("bench", &one, m, &cp);
    if (rc != 0)
        return rc;
    if (a->inf.ctx < 0)
        cp.n_ctx = (int32_t)max_n;
    return ntp_cli_infer_context("bench", &one, *m, cp, c);
}

/* Every test of one (tp, threads, ngl): load, context, pp and tg tests. */
static int bench_combo(struct bench *b, int64_t tp, int64_t t, int64_t ngl, double stream_gbps)
{
    const struct bench_args *a = b->a;
    int64_t max_n = 1, max_d = 0;
    for (int i = 0; i < a->p.n; i++)
        max_n = a->p.v[i] > max_n ? a->p.v[i] : max_n;
    for (int i = 0; i < a->n.n; i++)
        max_n = a->n.v[i] > max_n ? a->n.v[i] : max_n;
    for (int i = 0; i < a->d.n; i++)
        max_d = a->d.v[i] > max_d ? a->d.v[i] : max_d;
    ntp_model *m = NULL;
    ntp_context *c = NULL;
    int32_t *tok = malloc((size_t)(max_n > max_d ? max_n : max_d) * sizeof *tok);
    int rc = tok ? bench_open(a, tp, t, ngl, max_n + max_d, &m, &c) : 1;
    const int n_tests = a->p.n + a->n.n;
    for (int k = 0; rc == 0 && k < n_tests * a->d.n; k++) {
        const int kt = k % n_tests;
        const bool pp = kt < a->p.n;
        const int64_t n = pp ? a->p.v[kt] : a->n.v[kt - a->p.n], depth = a->d.v[k / n_tests];
        if (n == 0)
            continue;
        struct result *r = &b->rows[b->n_rows];
        /* --tp auto (0): report the CPU devices the loader made; under mpirun, every rank's. */
        const int64_t stages = a->inf.pp > 1 ? a->inf.pp : 1;
        const int64_t tp_used =
            group_devices(tp ? tp : ntp_model_n_devices(m) - (ngl > 0 ? 1 : 0), stages);
        *r = (struct result){.n_prompt = pp ? n : 0,
                             .n_gen = pp ? 0 : n,
                             .n_depth = depth,
                             .tp = tp_used,
                             .pp = stages,
                             .n_threads = t,
                             .ngl = ngl,
                             .reps = (int)b->a->reps,
                             .stream_read_gbps = stream_gbps};
        r->samples_ns = calloc((size_t)r->reps, sizeof *r->samples_ns);
        char tag[128], name[48];
        test_name(r, name, sizeof name);
        snprintf(tag, sizeof tag, "[%d/%d] %s, %lld threads, tp %lld:", b->n_rows + 1, b->cap_rows,
                 name, (long long)t, (long long)tp_used);
        rc = r->samples_ns ? run_test(c, m, r, tok, tag) : 1;
        if (rc == 0 && !pp && stream_gbps > 0) { /* the host's bandwidth right after */
            const double after = stream_read(b->topo, tp, t, a);
            r->stream_read_gbps = after > stream_gbps ? after : stream_gbps;
        }
        b->n_rows++;
    }
    ntp_context_free(c);
    free(tok);
    ntp_model_free(m);
    return rc;
}

/* ------------------------------------------------------------- output */

/* Weight GB/s of generation; < 0 for prompt processing (not a bandwidth figure). */
static double bw_gbps(const struct bench *b, const struct result *r)
{
    return r->n_gen ? (double)b->mi.bytes_per_token * r->avg_ts * 1e-9 : -1;
}

static double bw_eff(const struct bench *b, const struct result *r)
{
    const double bw = bw_gbps(b, r);
    return bw >= 0 && r->stream_read_gbps > 0 ? bw / r->stream_read_gbps : -1;
}

static void print_md(const struct bench *b)
{
    char size[32], params[32];
    const double sz = (double)b->mi.size;
    snprintf(size, sizeof size, sz >= 1073741824.0 ? "%.2f GiB" : "%.2f MiB",
             sz >= 1073741824.0 ? sz / 1073741824.0 : sz / 1048576.0);
    const double np = (double)b->mi.n_params;
    snprintf(params, sizeof params, np >= 1e9 ? "%.2f B" : "%.2f M",
             np >= 1e9 ? np / 1e9 : np / 1e6);
    printf("| %-30s | %10s | %10s | %-10s | %-6s | %3s | %7s | %15s | %20s |\n", "model", "size",
           "params", "backend", "isa", "tp", "threads", "test", "t/s");
    printf("| %.30s | %.9s: | %.9s: | %.10s | %.6s | %.2s: | %.6s: | %.14s: | %.19s: |\n",
           "------------------------------", "----------", "----------", "----------", "------",
           "---", "-------", "---------------", "--------------------");
    for (int i = 0; i < b->n_rows; i++) {
        const struct result *r = &b->rows[i];
        char test[32], ts[64];
        test_name(r, test, sizeof test);
        snprintf(ts, sizeof ts, "%.2f ± %.2f", r->avg_ts, r->stddev_ts);
        /* 21: "±" is two bytes but one column. */
        printf("| %-30s | %10s | %10s | %-10s | %-6s | %3lld | %7lld | %15s | %21s |\n", b->mi.type,
               size, params, r->ngl > 0 ? "CUDA" : "CPU", b->isa, (long long)r->tp,
               (long long)r->n_threads, test, ts);
    }
}

/* A figure, or null when it does not apply or was not measured (< 0). */
static void json_figure(FILE *f, double v)
{
    ntp_cli_json_num(f, v < 0 ? NAN : v);
}

static void json_samples(FILE *f, const struct result *r, bool ts)
{
    const int64_t n = r->n_prompt ? r->n_prompt : r->n_gen;
    fputs("[", f);
    for (int i = 0; i < r->reps; i++)
        fprintf(f, ts ? "%s%.6g" : "%s%.0f", i ? ", " : "",
                ts ? (double)n * 1e9 / r->samples_ns[i] : r->samples_ns[i]);
    fputs("]", f);
}

static void json_row(const struct bench *b, const struct result *r)
{
    FILE *f = stdout;
    const char *kv_name = ntp_cli_infer_kv_name(&b->a->inf);
    fputs("  {\"build_commit\": null, \"numatp_version\": ", f);
    ntp_cli_json_str(f, ntp_version());
    fputs(", \"cpu_info\": ", f);
    ntp_cli_json_str(f, b->cpu_info);
    fprintf(f, ", \"backends\": \"%s\", \"model_filename\": ", r->ngl > 0 ? "CUDA" : "CPU");
    ntp_cli_json_str(f, b->a->inf.model);
    fputs(", \"model_type\": ", f);
    ntp_cli_json_str(f, b->mi.type);
    fprintf(f,
            ", \"model_size\": %llu, \"model_n_params\": %llu, \"n_batch\": %d, "
            "\"n_threads\": %lld, \"n_gpu_layers\": %lld, \"type_k\": \"%s\", "
            "\"type_v\": \"%s\", \"n_prompt\": %lld, \"n_gen\": %lld, \"n_depth\": %lld, "
            "\"test_time\": \"%s\", ",
            (unsigned long long)b->mi.size, (unsigned long long)b->mi.n_params,
            ntp_context_default_params().n_batch, (long long)r->n_threads, (long long)r->ngl,
            kv_name, kv_name, (long long)r->n_prompt, (long long)r->n_gen, (long long)r->n_depth,
            r->test_time);
    fprintf(f,
            "\"avg_ns\": %.0f, \"stddev_ns\": %.0f, \"avg_ts\": %.6g, \"stddev_ts\": %.6g, "
            "\"samples_ns\": ",
            r->avg_ns, r->stddev_ns, r->avg_ts, r->stddev_ts);
    json_samples(f, r, false);
    fputs(", \"samples_ts\": ", f);
    json_samples(f, r, true);
    fprintf(f, ", \"tp\": %lld, \"isa\": \"%s\", \"weight_bytes_per_token\": %llu, \"bw_gbps\": ",
            (long long)r->tp, b->isa, (unsigned long long)b->mi.bytes_per_token);
    json_figure(f, bw_gbps(b, r));
    fputs(", \"stream_read_gbps\": ", f);
    json_figure(f, r->stream_read_gbps > 0 ? r->stream_read_gbps : -1);
    fputs(", \"bw_efficiency\": ", f);
    json_figure(f, bw_eff(b, r));
    fputs(", \"allreduce_share\": ", f);
    json_figure(f, r->allreduce_share);
    fprintf(f, ", \"pp\": %lld, \"pp_share\": ", (long long)r->pp);
    json_figure(f, r->pp_share);
    fputs("}", f);
}

static void print_json(const struct bench *b)
{
    printf("[\n");
    for (int i = 0; i < b->n_rows; i++) {
        json_row(b, &b->rows[i]);
        printf("%s\n", i + 1 < b->n_rows ? "," : "");
    }
    printf("]\n");
}

static void csv_num(double v)
{
    if (v >= 0 && isfinite(v))
        printf("%.6g", v);
}

static void print_csv(const struct bench *b)
{
    printf(
        "model_filename,model_type,model_size,model_n_params,backends,isa,tp,n_threads,"
        "n_gpu_layers,n_prompt,n_gen,n_depth,test_time,avg_ns,stddev_ns,avg_ts,stddev_ts,bw_gbps,"
        "stream_read_gbps,bw_efficiency,allreduce_share,pp,pp_share\n");
    for (int i = 0; i < b->n_rows; i++) {
        const struct result *r = &b->rows[i];
        /* The file name is quoted (CSV doubles an embedded quote). */
        putchar('"');
        for (const char *p = b->a->inf.model; *p; p++)
            fputs(*p == '"' ? "\"\"" : (char[2]){*p, 0}, stdout);
        printf("\",\"%s\",%llu,%llu,%s,%s,%lld,%lld,%lld,%lld,%lld,%lld,%s,%.0f,%.0f,%.6g,%.6g,",
               b->mi.type, (unsigned long long)b->mi.size, (unsigned long long)b->mi.n_params,
               r->ngl > 0 ? "CUDA" : "CPU", b->isa, (long long)r->tp, (long long)r->n_threads,
               (long long)r->ngl, (long long)r->n_prompt, (long long)r->n_gen,
               (long long)r->n_depth, r->test_time, r->avg_ns, r->stddev_ns, r->avg_ts,
               r->stddev_ts);
        csv_num(bw_gbps(b, r));
        putchar(',');
        csv_num(r->stream_read_gbps > 0 ? r->stream_read_gbps : -1);
        putchar(',');
        csv_num(bw_eff(b, r));
        putchar(',');
        csv_num(r->allreduce_share);
        printf(",%lld,", (long long)r->pp);
        csv_num(r->pp_share);
        putchar('\n');
    }
}

/* ------------------------------------------------------------ command */

static void read_cpu_info(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(buf, cap, "%s", colon + 2);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
}

static int bench_all(struct bench *b)
{
    const struct bench_args *a = b->a;
    int tests = 0;
    for (int i = 0; i < a->p.n; i++)
        tests += a->p.v[i] > 0;
    for (int i = 0; i < a->n.n; i++)
        tests += a->n.v[i] > 0;
    const struct ntp_cli_ints *t = &a->inf.threads, *tp = &a->inf.tp, *ngl = &a->inf.gpu_layers;
    b->cap_rows = tests * a->d.n * tp->n * t->n * ngl->n;
    b->rows = calloc((size_t)b->cap_rows, sizeof *b->rows);
    if (b->rows == NULL)
        return 1;
    for (int it = 0; it < t->n; it++)
        for (int ip = 0; ip < tp->n; ip++) {
            /* Measured right before the tests it is compared with, on the same nodes. */
            const double stream = stream_read(b->topo, tp->v[ip], t->v[it], a);
            for (int ig = 0; ig < ngl->n; ig++)
                if (bench_combo(b, tp->v[ip], t->v[it], ngl->v[ig], stream) != 0)
                    return 1;
        }
    return 0;
}

static int bench_run(struct bench *b)
{
    struct ntp_kernels k;
    if (ntp__kernels_init(&k, NULL) != NTP_OK) {
        fprintf(stderr, "numatp bench: %s\n", ntp_last_error());
        return 1;
    }
    b->isa = k.isa;
    read_cpu_info(b->cpu_info, sizeof b->cpu_info);
    if (model_info_read(b->a->inf.model, &b->mi) != 0)
        return 1;
    int rc = bench_all(b);
    if (rc == 0 && b->a->fmt == OUT_JSON)
        print_json(b);
    else if (rc == 0 && b->a->fmt == OUT_CSV)
        print_csv(b);
    else if (rc == 0)
        print_md(b);
    return rc;
}

int ntp_cli_bench(int argc, char **argv)
{
    struct bench_args a = {.reps = 5, .fmt = -1, .inf = {.ctx = -1}};
    const struct ntp_cli_opt own[] = {
        {"--n-prompt", "-p", NTP_CLI_INTS, .dst = &a.p, .lo = 0, .hi = MAX_TOKENS,
         .max_n = NTP_CLI_MAX_LIST},
        {"--n-gen", "-n", NTP_CLI_INTS, .dst = &a.n, .lo = 0, .hi = MAX_TOKENS,
         .max_n = NTP_CLI_MAX_LIST},
        {"--n-depth", "-d", NTP_CLI_INTS, .dst = &a.d, .lo = 0, .hi = MAX_TOKENS,
         .max_n = NTP_CLI_MAX_LIST},
        {"--repetitions", "-r", NTP_CLI_INT, .dst = &a.reps, .lo = 1, .hi = 1000},
        {"--output", "-o", NTP_CLI_CHOICE, .dst = &a.fmt, .choices = out_fmts},
        {"--stream-size", NULL, NTP_CLI_STR, .dst = &a.stream_str},
        {"--json", NULL, NTP_CLI_FLAG, .dst = &a.json},
        {"--csv", NULL, NTP_CLI_FLAG, .dst = &a.csv},
        {"--md", NULL, NTP_CLI_FLAG, .dst = &a.md},
        {"--help", "-h", NTP_CLI_FLAG, .dst = &a.help},
        {NULL},
    };
    struct ntp_cli_opt inf[NTP_CLI_INFER_N_OPTS + 1];
    ntp_cli_infer_opts(&a.inf, true, inf);
    struct bench b = {.a = &a};
    int rc =
        ntp_cli_parse("bench", argc, argv, (const struct ntp_cli_opt *const[]){own, inf, NULL});
    if (rc != 0 || a.help)
        return rc != 0 ? rc : (usage(stdout), 0);
    if (ntp_topology_detect(&b.topo) != NTP_OK) {
        fprintf(stderr, "numatp bench: %s\n", ntp_last_error());
        return 1;
    }
    rc = bench_check(&a, ntp__membw_node_cores(b.topo, -1));
    if (rc == 0)
        rc = bench_run(&b);
    for (int i = 0; i < b.n_rows; i++)
        free(b.rows[i].samples_ns);
    free(b.rows);
    ntp_topology_free(b.topo);
    return rc;
}
