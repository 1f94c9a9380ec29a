/*
 * cmd_bench.c - `numatp bench`: prompt processing (pp: p tokens as one
 * batch) and generation (tg: n tokens one at a time) speed, like llama-bench,
 * for every combination of the listed tensor-parallel sizes, thread counts
 * and GPU layer counts. Each test runs once as a warm-up, then r times; the
 * result is the mean and standard deviation of the repetitions. Tokens are
 * random valid ids, not text, as llama-bench does.
 *
 * What llama-bench lacks: the weight bandwidth generation achieves (bytes
 * of weights read per token x tok/s) and its ratio to the STREAM read
 * bandwidth measured in the same run with the same threads (src/numa/membw).
 *
 * Output: a markdown table shaped like llama-bench's (default), --csv, or
 * --json with llama-bench's field names where the meaning is the same.
 */
#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "cli/cmd_bench.h"
#include "kernels/kernels.h"
#include "model/arch.h"
#include "numa/membw.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_LIST 32 /* values of one list option */

struct int_list {
    int64_t v[MAX_LIST];
    int n;
};

enum out_fmt { OUT_MD, OUT_CSV, OUT_JSON };

struct bench_args {
    const char *model, *p_str, *n_str, *tp_str, *t_str, *ngl_str, *out_str, *stream_str;
    uint64_t stream_bytes; /* STREAM array size; 0: skip the measurement */
    int64_t reps;
    bool json, csv, md, help;
    struct int_list p, n, tp, t, ngl; /* parsed lists */
    enum out_fmt fmt;
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
    int64_t tp, n_threads, ngl;
    int reps;
    double *samples_ns; /* [reps]; owned */
    double avg_ns, stddev_ns, avg_ts, stddev_ts;
    double stream_read_gbps; /* STREAM read of the same threads; 0 when not measured */
    double allreduce_share;  /* all-reduce time / decode time over the timed passes; -1 with
                                one device (no all-reduce) */
    char test_time[32];
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: numatp bench -m FILE [options]\n\n"
        "Measure prompt processing (pp) and generation (tg) speed like llama-bench, for\n"
        "every combination of the listed values. LIST: comma-separated values, e.g. 1,2,4.\n\n"
        "options:\n"
        "  -m, --model FILE        GGUF model (required)\n"
        "  -p, --n-prompt LIST     prompt tokens processed as one batch; 0 skips pp (default 512)\n"
        "  -n, --n-gen LIST        tokens generated one at a time; 0 skips tg (default 128)\n"
        "  -r, --repetitions N     timed repetitions after one warm-up (default 5)\n"
        "  -t, --threads LIST      threads (default: the machine's physical cores)\n"
        "  --tp LIST               tensor-parallel CPU devices; 0: one per NUMA node; more\n"
        "                          than the nodes: virtual devices (default 1)\n"
        "  -ngl, --n-gpu-layers LIST  layers on the GPU (default 0)\n"
        "  --stream-size SIZE      STREAM read array for bw_efficiency, e.g. 256M (default:\n"
        "                          4 x LLC, 64M to 1G); 0 skips it (bw_efficiency null)\n"
        "  -o, --output FMT        md (default), csv or json\n"
        "  --md, --csv, --json     the same as -o md|csv|json\n"
        "  -h, --help              this help\n\n"
        "Results go to stdout, progress to stderr. bw_gbps is the weight bandwidth of\n"
        "generation; bw_efficiency divides it by the STREAM read bandwidth of the same\n"
        "threads measured in the same run.\n");
}

/* Parse "1,2,4" into l, each value in [lo, hi]. 0 or 2 after a message. */
static int parse_list(const char *name, const char *s, int64_t lo, int64_t hi, struct int_list *l)
{
    l->n = 0;
    const char *p = s;
    while (1) {
        char *end = NULL;
        errno = 0;
        const long long v = strtoll(p, &end, 10);
        if (errno || end == p || (*end && *end != ',') || l->n == MAX_LIST) {
            fprintf(stderr, "numatp bench: %s '%s': expected up to %d comma-separated integers\n",
                    name, s, MAX_LIST);
            return 2;
        }
        if (v < lo || v > hi) {
            fprintf(stderr, "numatp bench: %s %lld: expected %lld to %lld\n", name, v,
                    (long long)lo, (long long)hi);
            return 2;
        }
        l->v[l->n++] = v;
        if (*end == '\0')
            return 0;
        p = end + 1;
    }
}

static int check_format(struct bench_args *a)
{
    const int flags = a->json + a->csv + a->md;
    if (flags > 1 || (flags && a->out_str)) {
        fprintf(stderr, "numatp bench: choose one output format (-o, --md, --csv, --json)\n");
        return 2;
    }
    a->fmt = a->json ? OUT_JSON : a->csv ? OUT_CSV : OUT_MD;
    if (a->out_str) {
        if (strcmp(a->out_str, "json") == 0)
            a->fmt = OUT_JSON;
        else if (strcmp(a->out_str, "csv") == 0)
            a->fmt = OUT_CSV;
        else if (strcmp(a->out_str, "md") != 0) {
            fprintf(stderr, "numatp bench: -o '%s': expected md, csv or json\n", a->out_str);
            return 2;
        }
    }
    return 0;
}

/*
 * A GPU layer count without a usable GPU: a clear refusal instead of a CPU
 * number that would look like a GPU one.
 */
static int check_features(const struct bench_args *a)
{
    for (int i = 0; i < a->ngl.n; i++)
        if (a->ngl.v[i] > 0 && ntp_cuda_device_count() < 1) {
            fprintf(stderr, "numatp bench: -ngl %lld: no CUDA GPU is usable (%s); only -ngl 0\n",
                    (long long)a->ngl.v[i],
                    ntp_cuda_compiled() ? "none found" : "this build has no CUDA backend");
            return 2;
        }
    return 0;
}

/* Check and parse the arguments; 2 on a usage error, -1 for --help. */
static int bench_check(struct bench_args *a, int n_cores)
{
    if (a->help)
        return usage(stdout), -1;
    if (a->model == NULL) {
        fprintf(stderr, "numatp bench: -m FILE is required (see numatp bench --help)\n");
        return 2;
    }
    struct stat st;
    errno = 0;
    if (stat(a->model, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "numatp bench: -m %s: %s\n", a->model,
                errno ? strerror(errno) : "not a regular file");
        return 2;
    }
    if (a->reps < 1 || a->reps > 1000) {
        fprintf(stderr, "numatp bench: -r %lld: expected 1 to 1000\n", (long long)a->reps);
        return 2;
    }
    char t_default[16];
    snprintf(t_default, sizeof t_default, "%d", n_cores);
    int rc = parse_list("-p", a->p_str ? a->p_str : "512", 0, 1 << 20, &a->p);
    if (rc == 0)
        rc = parse_list("-n", a->n_str ? a->n_str : "128", 0, 1 << 20, &a->n);
    if (rc == 0)
        rc = parse_list("-t", a->t_str ? a->t_str : t_default, 1, 4096, &a->t);
    if (rc == 0)
        rc = parse_list("--tp", a->tp_str ? a->tp_str : "1", 0, 64, &a->tp);
    if (rc == 0)
        rc = parse_list("-ngl", a->ngl_str ? a->ngl_str : "0", 0, 100000, &a->ngl);
    if (rc == 0 && a->stream_str && strcmp(a->stream_str, "0") != 0 &&
        !ntp_cli_parse_size(a->stream_str, &a->stream_bytes)) {
        fprintf(stderr,
                "numatp bench: --stream-size '%s': expected 0 or a byte count such as "
                "256M\n",
                a->stream_str);
        rc = 2;
    }
    if (rc == 0)
        rc = check_format(a);
    if (rc == 0)
        rc = check_features(a);
    bool any = false;
    for (int i = 0; i < a->p.n; i++)
        any |= a->p.v[i] > 0;
    for (int i = 0; i < a->n.n; i++)
        any |= a->n.v[i] > 0;
    if (rc == 0 && !any) {
        fprintf(stderr, "numatp bench: -p and -n are all 0: nothing to measure\n");
        return 2;
    }
    return rc;
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
    for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++) {
        const ntp_gguf_tensor *t = ntp_gguf_tensor_at(g, i);
        uint64_t ne = 1;
        for (uint32_t d = 0; d < t->n_dims; d++)
            ne *= (uint64_t)t->ne[d];
        mi->size += t->size;
        mi->n_params += ne;
        /* Generation reads every weight once per token, except the embedding: one row of it
           (negligible), unless the output head reuses it. */
        if (!(has_output && strcmp(t->name, "token_embd.weight") == 0))
            mi->bytes_per_token += t->size;
    }
    const char *arch = "?";
    uint32_t ft = 0;
    ntp_gguf_get_str(g, "general.architecture", &arch);
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

/* One timed pass of a test from an empty cache: ns into *ns. */
static int run_once(ntp_context *c, const ntp_model *m, const struct result *r, int32_t *tok,
                    uint32_t *seed, double *ns)
{
    const int64_t n = r->n_prompt ? r->n_prompt : r->n_gen;
    random_tokens(m, tok, n, seed);
    ntp_context_reset(c);
    const double t0 = ntp_cli_now();
    ntp_status s = NTP_OK;
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

/* Warm up once, then r->reps timed passes; fill the statistics of r. */
static int run_test(ntp_context *c, const ntp_model *m, struct result *r, int32_t *tok,
                    const char *tag)
{
    uint32_t seed = 0x1234567u;
    double warm;
    ntp_cli_iso_time(r->test_time, sizeof r->test_time);
    fprintf(stderr, "\rnumatp bench: %s warm-up%20s", tag, "");
    if (run_once(c, m, r, tok, &seed, &warm) != 0)
        return 1;
    double *ts = malloc((size_t)r->reps * sizeof *ts);
    if (ts == NULL)
        return 1;
    const int64_t n = r->n_prompt ? r->n_prompt : r->n_gen;
    ntp_context_reset_stats(c); /* the share covers the timed passes, not the warm-up */
    for (int i = 0; i < r->reps; i++) {
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
    mean_sd(r->samples_ns, r->reps, &r->avg_ns, &r->stddev_ns);
    mean_sd(ts, r->reps, &r->avg_ts, &r->stddev_ts);
    fprintf(stderr, "\rnumatp bench: %s %.2f ± %.2f t/s%20s\n", tag, r->avg_ts, r->stddev_ts, "");
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
 * Load with t threads and ngl GPU layers. A loader that ran no layer on a GPU
 * although ngl > 0 would make a CPU figure look like a GPU one: refuse it.
 */
static int load_model(const char *path, int64_t tp, int64_t t, int64_t ngl, ntp_model **out)
{
    ntp_model_params mp = ntp_model_default_params();
    mp.n_threads = (int32_t)t;
    mp.tp = (int32_t)tp;
    mp.n_gpu_layers = (int32_t)ngl;
    const double t0 = ntp_cli_now();
    if (ntp_model_load(path, mp, out) != NTP_OK) {
        fprintf(stderr, "numatp bench: %s\n", ntp_last_error());
        return 1;
    }
    /* ntp_model_load puts n_gpu_layers on a GPU or fails: no CPU figure passes for a GPU one. */
    fprintf(stderr, "numatp bench: loaded %s on %s (%.2f s)\n", path, ntp_model_layout_desc(*out),
            ntp_cli_now() - t0);
    return 0;
}

/* Every test of one (tp, threads, ngl): load, context, pp and tg tests. */
static int bench_combo(struct bench *b, int64_t tp, int64_t t, int64_t ngl, double stream_gbps)
{
    ntp_model *m = NULL;
    if (load_model(b->a->model, tp, t, ngl, &m) != 0)
        return 1;
    int64_t max_n = 1;
    for (int i = 0; i < b->a->p.n; i++)
        max_n = b->a->p.v[i] > max_n ? b->a->p.v[i] : max_n;
    for (int i = 0; i < b->a->n.n; i++)
        max_n = b->a->n.v[i] > max_n ? b->a->n.v[i] : max_n;
    ntp_context_params cp = ntp_context_default_params();
    cp.n_ctx = (int32_t)max_n;
    ntp_context *c = NULL;
    int32_t *tok = malloc((size_t)max_n * sizeof *tok);
    int rc = 0;
    if (tok == NULL || ntp_context_new(m, cp, &c) != NTP_OK) {
        fprintf(stderr, "numatp bench: %s\n", tok ? ntp_last_error() : "out of memory");
        rc = 1;
    }
    for (int k = 0; rc == 0 && k < b->a->p.n + b->a->n.n; k++) {
        const bool pp = k < b->a->p.n;
        const int64_t n = pp ? b->a->p.v[k] : b->a->n.v[k - b->a->p.n];
        if (n == 0)
            continue;
        struct result *r = &b->rows[b->n_rows];
        /* --tp 0 (auto): report the CPU devices the loader made. */
        const int64_t tp_used = tp ? tp : ntp_model_n_devices(m) - (ngl > 0 ? 1 : 0);
        *r = (struct result){.n_prompt = pp ? n : 0,
                             .n_gen = pp ? 0 : n,
                             .tp = tp_used,
                             .n_threads = t,
                             .ngl = ngl,
                             .reps = (int)b->a->reps,
                             .stream_read_gbps = stream_gbps};
        r->samples_ns = calloc((size_t)r->reps, sizeof *r->samples_ns);
        char tag[96];
        snprintf(tag, sizeof tag, "[%d/%d] %s%lld, %lld threads, tp %lld:", b->n_rows + 1,
                 b->cap_rows, pp ? "pp" : "tg", (long long)n, (long long)t, (long long)tp_used);
        rc = r->samples_ns ? run_test(c, m, r, tok, tag) : 1;
        b->n_rows++;
    }
    ntp_context_free(c);
    free(tok);
    ntp_model_free(m);
    return rc;
}

/* ------------------------------------------------------------- output */

static void test_name(const struct result *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%lld", r->n_prompt ? "pp" : "tg",
             (long long)(r->n_prompt ? r->n_prompt : r->n_gen));
}

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
    printf("| %-30s | %10s | %10s | %-10s | %-6s | %3s | %7s | %13s | %20s |\n", "model", "size",
           "params", "backend", "isa", "tp", "threads", "test", "t/s");
    printf("| %.30s | %.9s: | %.9s: | %.10s | %.6s | %.2s: | %.6s: | %.12s: | %.19s: |\n",
           "------------------------------", "----------", "----------", "----------", "------",
           "---", "-------", "-------------", "--------------------");
    for (int i = 0; i < b->n_rows; i++) {
        const struct result *r = &b->rows[i];
        char test[32], ts[64];
        test_name(r, test, sizeof test);
        snprintf(ts, sizeof ts, "%.2f ± %.2f", r->avg_ts, r->stddev_ts);
        /* 21: "±" is two bytes but one column. */
        printf("| %-30s | %10s | %10s | %-10s | %-6s | %3lld | %7lld | %13s | %21s |\n", b->mi.type,
               size, params, r->ngl > 0 ? "CUDA" : "CPU", b->isa, (long long)r->tp,
               (long long)r->n_threads, test, ts);
    }
}

/* A double or null (for "not applicable" / "not measured"). */
static void json_num(FILE *f, double v)
{
    if (v < 0 || !isfinite(v))
        fputs("null", f);
    else
        fprintf(f, "%.6g", v);
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
    fputs("  {\"build_commit\": null, \"numatp_version\": ", f);
    ntp_cli_json_str(f, ntp_version());
    fputs(", \"cpu_info\": ", f);
    ntp_cli_json_str(f, b->cpu_info);
    fprintf(f, ", \"backends\": \"%s\", \"model_filename\": ", r->ngl > 0 ? "CUDA" : "CPU");
    ntp_cli_json_str(f, b->a->model);
    fputs(", \"model_type\": ", f);
    ntp_cli_json_str(f, b->mi.type);
    fprintf(f,
            ", \"model_size\": %llu, \"model_n_params\": %llu, \"n_batch\": %d, "
            "\"n_threads\": %lld, \"n_gpu_layers\": %lld, \"type_k\": \"f16\", "
            "\"type_v\": \"f16\", \"n_prompt\": %lld, \"n_gen\": %lld, \"test_time\": \"%s\", ",
            (unsigned long long)b->mi.size, (unsigned long long)b->mi.n_params,
            ntp_context_default_params().n_batch, (long long)r->n_threads, (long long)r->ngl,
            (long long)r->n_prompt, (long long)r->n_gen, r->test_time);
    fprintf(f,
            "\"avg_ns\": %.0f, \"stddev_ns\": %.0f, \"avg_ts\": %.6g, \"stddev_ts\": %.6g, "
            "\"samples_ns\": ",
            r->avg_ns, r->stddev_ns, r->avg_ts, r->stddev_ts);
    json_samples(f, r, false);
    fputs(", \"samples_ts\": ", f);
    json_samples(f, r, true);
    fprintf(f, ", \"tp\": %lld, \"isa\": \"%s\", \"weight_bytes_per_token\": %llu, \"bw_gbps\": ",
            (long long)r->tp, b->isa, (unsigned long long)b->mi.bytes_per_token);
    json_num(f, bw_gbps(b, r));
    fputs(", \"stream_read_gbps\": ", f);
    json_num(f, r->stream_read_gbps > 0 ? r->stream_read_gbps : -1);
    fputs(", \"bw_efficiency\": ", f);
    json_num(f, bw_eff(b, r));
    fputs(", \"allreduce_share\": ", f);
    json_num(f, r->allreduce_share);
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
    printf("model_filename,model_type,model_size,model_n_params,backends,isa,tp,n_threads,"
           "n_gpu_layers,n_prompt,n_gen,test_time,avg_ns,stddev_ns,avg_ts,stddev_ts,bw_gbps,"
           "stream_read_gbps,bw_efficiency,allreduce_share\n");
    for (int i = 0; i < b->n_rows; i++) {
        const struct result *r = &b->rows[i];
        /* The file name is quoted (CSV doubles an embedded quote). */
        putchar('"');
        for (const char *p = b->a->model; *p; p++)
            fputs(*p == '"' ? "\"\"" : (char[2]){*p, 0}, stdout);
        printf("\",\"%s\",%llu,%llu,%s,%s,%lld,%lld,%lld,%lld,%lld,%s,%.0f,%.0f,%.6g,%.6g,",
               b->mi.type, (unsigned long long)b->mi.size, (unsigned long long)b->mi.n_params,
               r->ngl > 0 ? "CUDA" : "CPU", b->isa, (long long)r->tp, (long long)r->n_threads,
               (long long)r->ngl, (long long)r->n_prompt, (long long)r->n_gen, r->test_time,
               r->avg_ns, r->stddev_ns, r->avg_ts, r->stddev_ts);
        csv_num(bw_gbps(b, r));
        putchar(',');
        csv_num(r->stream_read_gbps > 0 ? r->stream_read_gbps : -1);
        putchar(',');
        csv_num(bw_eff(b, r));
        putchar(',');
        csv_num(r->allreduce_share);
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
    b->cap_rows = tests * a->tp.n * a->t.n * a->ngl.n;
    b->rows = calloc((size_t)b->cap_rows, sizeof *b->rows);
    if (b->rows == NULL)
        return 1;
    for (int it = 0; it < a->t.n; it++)
        for (int ip = 0; ip < a->tp.n; ip++) {
            /* Measured right before the tests it is compared with, on the same nodes. */
            const double stream = stream_read(b->topo, a->tp.v[ip], a->t.v[it], a);
            for (int ig = 0; ig < a->ngl.n; ig++)
                if (bench_combo(b, a->tp.v[ip], a->t.v[it], a->ngl.v[ig], stream) != 0)
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
    if (model_info_read(b->a->model, &b->mi) != 0)
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
    struct bench_args a = {.reps = 5};
    const struct ntp_cli_opt opts[] = {
        {"--model", "-m", NTP_CLI_STR, &a.model},
        {"--n-prompt", "-p", NTP_CLI_STR, &a.p_str},
        {"--n-gen", "-n", NTP_CLI_STR, &a.n_str},
        {"--repetitions", "-r", NTP_CLI_INT, &a.reps},
        {"--threads", "-t", NTP_CLI_STR, &a.t_str},
        {"--tp", NULL, NTP_CLI_STR, &a.tp_str},
        {"--n-gpu-layers", "-ngl", NTP_CLI_STR, &a.ngl_str},
        {"--output", "-o", NTP_CLI_STR, &a.out_str},
        {"--stream-size", NULL, NTP_CLI_STR, &a.stream_str},
        {"--json", NULL, NTP_CLI_FLAG, &a.json},
        {"--csv", NULL, NTP_CLI_FLAG, &a.csv},
        {"--md", NULL, NTP_CLI_FLAG, &a.md},
        {"--help", "-h", NTP_CLI_FLAG, &a.help},
        {NULL, NULL, NTP_CLI_FLAG, NULL},
    };
    struct bench b = {.a = &a};
    int rc = ntp_cli_parse_opts("bench", argc, argv, opts);
    if (rc == 0 && ntp_topology_detect(&b.topo) != NTP_OK) {
        fprintf(stderr, "numatp bench: %s\n", ntp_last_error());
        rc = 1;
    }
    if (rc == 0)
        rc = bench_check(&a, ntp__membw_node_cores(b.topo, -1));
    if (rc == 0)
        rc = bench_run(&b);
    for (int i = 0; i < b.n_rows; i++)
        free(b.rows[i].samples_ns);
    free(b.rows);
    ntp_topology_free(b.topo);
    return rc < 0 ? 0 : rc;
}
