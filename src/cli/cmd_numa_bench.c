/*
 * cmd_numa_bench.c - `numatp numa-bench`: the machine's NUMA matrix. For
 * every (cpu node i, memory node j): STREAM read/write/copy/triad bandwidth
 * with all cores of i and with one core, and the idle load-to-use latency;
 * per node, the GEMV bandwidth of the quantized matrix-vector kernels; the
 * all-reduce latency once src/comm/ provides one. Tables on stdout (or
 * --json), an SVG heat map of the read bandwidth with --svg, a progress bar
 * on stderr. The method is in docs/numa-bench.md.
 */
#include "cli/cli.h"
#include "cli/json.h"
#include "cli/opts.h"
#include "core/core.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "comm/comm.h"
#include "numa/membw.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- state */

/* The GEMV kernels tried per node: the weight types of the usual model files. */
static const enum ntp_type gemv_types[] = {NTP_TYPE_Q4_0, NTP_TYPE_Q8_0, NTP_TYPE_Q4_K};
#define N_GEMV (int)(sizeof gemv_types / sizeof gemv_types[0])
#define GEMV_K 4096 /* elements per row: a typical hidden size, a multiple of 256 */

struct nb_cell {
    struct ntp_membw_result all;   /* every core of the cpu node */
    struct ntp_membw_result one;   /* one core */
    struct ntp_latency_result lat; /* ns per dependent load */
};

struct nb_gemv {
    struct ntp_membw_stat gbps[N_GEMV]; /* weight bytes per second / 1e9, by gemv_types */
    int best;                           /* index of the best median */
};

/* All-reduce latency of one group size, by vector length (AR_LENS). */
static const int64_t ar_lens[] = {1024, 4096, 16384};
#define N_AR_LENS (int)(sizeof ar_lens / sizeof ar_lens[0])

struct nb_allreduce {
    int n_dev;
    struct ntp_membw_stat us[N_AR_LENS]; /* microseconds per call */
};

struct nb {
    ntp_topology *topo; /* owned */
    int n;              /* NUMA nodes with cores */
    uint64_t bytes;     /* bytes per array */
    int reps;           /* repetitions */
    bool json;          /* --json */
    const char *svg;    /* --svg FILE, or NULL */
    FILE *svg_f;        /* svg, opened before measuring so a bad path fails at once; owned */
    const char *isa;    /* kernel ISA of the GEMV runs (static string) */
    struct ntp_kernels kernels;
    struct nb_cell *cell;    /* [n * n], row = cpu node; owned */
    struct nb_gemv *gemv;    /* [n]; owned */
    int done, total;         /* progress */
    double min_share;        /* least cpu_share of the measurements (1: undisturbed) */
    struct nb_allreduce *ar; /* [n_ar_dev - 1] rows for 2 .. n_ar_dev devices; owned */
    int n_ar_dev;            /* most devices of the all-reduce table (< 2: no table) */
    int ar_calls;            /* all-reduce calls per timed repetition */
};

/* Record the CPU share of a measurement (see ntp_membw_team_params.cpu_share). */
static void note_share(struct nb *b, double share)
{
    if (share > 0 && share < b->min_share)
        b->min_share = share;
}

/* The bar, then what runs now: "<what> cpu i mem j", or "<what> i devices" when j < 0. */
static void progress(struct nb *b, const char *what, int i, int j)
{
    const int width = 30, fill = b->total ? b->done * width / b->total : width;
    char bar[64];
    for (int k = 0; k < width; k++)
        bar[k] = k < fill ? '#' : '.';
    bar[width] = '\0';
    if (b->done >= b->total)
        fprintf(stderr, "\r[%s] %d/%d done%40s\n", bar, b->done, b->total, "");
    else if (j < 0)
        fprintf(stderr, "\r[%s] %d/%d %s %d devices%20s", bar, b->done, b->total, what, i, "");
    else
        fprintf(stderr, "\r[%s] %d/%d %s cpu %d mem %d%20s", bar, b->done, b->total, what, i, j,
                "");
    fflush(stderr);
}

/* ------------------------------------------------------------ measuring */

static int measure_cell(struct nb *b, int i, int j)
{
    struct nb_cell *c = &b->cell[i * b->n + j];
    struct ntp_membw_params p = ntp__membw_default_params(b->topo);
    p.cpu_node = i;
    p.mem_node = j;
    p.bytes = b->bytes;
    p.reps = b->reps;
    progress(b, "bandwidth, all cores,", i, j);
    ntp_status s = ntp__membw_measure(&p, &c->all);
    b->done++;
    p.n_threads = 1;
    if (s == NTP_OK) {
        progress(b, "bandwidth, one core, ", i, j);
        s = ntp__membw_measure(&p, &c->one);
        b->done++;
    }
    if (s == NTP_OK) {
        progress(b, "latency,             ", i, j);
        struct ntp_latency_params lp = ntp__latency_default_params(b->topo);
        lp.cpu_node = i;
        lp.mem_node = j;
        lp.bytes = b->bytes;
        lp.reps = b->reps;
        s = ntp__membw_latency(&lp, &c->lat);
        b->done++;
    }
    if (s == NTP_OK) {
        note_share(b, c->all.cpu_share);
        note_share(b, c->one.cpu_share);
        note_share(b, c->lat.cpu_share);
    }
    if (s != NTP_OK) {
        fprintf(stderr, "\nnumatp numa-bench: cpu node %d, memory node %d: %s\n", i, j,
                ntp_last_error());
        return 1;
    }
    return 0;
}

/* One GEMV run: a matrix of n_rows quantized rows on one node times one activation row. */
struct gemv_job {
    const struct ntp_kernels *k;
    enum ntp_type type;
    uint8_t *w;           /* [n_rows * row_bytes] on the node; owned by run_gemv */
    size_t row_bytes;     /* bytes of one row of GEMV_K elements */
    int64_t n_rows;       /* rows of the matrix */
    const uint8_t *proto; /* [16 * row_bytes] quantized random rows, copied into w */
    const void *x;        /* one activation row in the type's act_type */
    float *y;             /* [n_rows] */
    atomic_int failed;    /* a kernel call returned an error */
};

/* Step 0 first-touches (fills) this thread's rows; later steps multiply them. */
static void gemv_step(void *user, int step, int ith, int nth)
{
    const struct gemv_job *g = user;
    int64_t r0, r1;
    ntp__slice(g->n_rows, ith, nth, &r0, &r1);
    if (step == 0) {
        for (int64_t r = r0; r < r1; r++)
            memcpy(g->w + (size_t)r * g->row_bytes, g->proto + (size_t)(r % 16) * g->row_bytes,
                   g->row_bytes);
        return;
    }
    struct ntp_matmul_args a = {.wtype = g->type,
                                .w = g->w,
                                .w_stride = g->row_bytes,
                                .n_rows = g->n_rows,
                                .k = GEMV_K,
                                .x = g->x,
                                .x_stride = 0,
                                .n_tok = 1,
                                .y = g->y,
                                .ldy = g->n_rows,
                                .ith = ith,
                                .nth = nth};
    if (ntp__kernels_matmul(g->k, &a) != NTP_OK)
        atomic_store(&((struct gemv_job *)user)->failed, 1);
}

/* Random prototype rows and the quantized activation of type t. */
static ntp_status gemv_inputs(const struct ntp_kernels *k, enum ntp_type t, uint8_t *proto, void *x)
{
    float *f = malloc(16 * GEMV_K * sizeof *f);
    if (f == NULL)
        return ntp__error(NTP_E_NOMEM, "gemv: out of memory");
    uint32_t s = 12345;
    for (int i = 0; i < 16 * GEMV_K; i++) {
        s = s * 1664525u + 1013904223u;
        f[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    ntp_status st = ntp__quantize_rows(t, f, proto, 16, GEMV_K);
    if (st == NTP_OK && k->type[t].quantize_act)
        k->type[t].quantize_act(f, x, GEMV_K);
    else if (st == NTP_OK)
        memcpy(x, f, GEMV_K * sizeof *f);
    free(f);
    return st;
}

/* GB/s of type gemv_types[ti] on node i: matrix and threads on node i. */
static ntp_status run_gemv(struct nb *b, int i, int ti, struct ntp_membw_stat *out)
{
    const enum ntp_type t = gemv_types[ti];
    struct gemv_job g = {.k = &b->kernels, .type = t};
    size_t act_bytes = ntp__kernels_act_row_size(&b->kernels, t, GEMV_K);
    if (act_bytes == 0 || ntp_type_row_size(t, GEMV_K, &g.row_bytes) != NTP_OK)
        return ntp__error(NTP_E_UNSUPPORTED, "gemv: no kernel for %s", ntp_type_name(t));
    g.n_rows = (int64_t)(b->bytes / g.row_bytes);
    if (g.n_rows < 16)
        g.n_rows = 16;
    const size_t w_bytes = (size_t)g.n_rows * g.row_bytes;
    uint8_t *proto = malloc(16 * g.row_bytes);
    void *x = ntp__alloc_aligned(act_bytes, 64);
    g.y = malloc((size_t)g.n_rows * sizeof *g.y);
    g.w = ntp__membw_alloc(b->topo, i, w_bytes);
    g.proto = proto;
    g.x = x;
    ntp_status s = proto && x && g.y && g.w ? gemv_inputs(&b->kernels, t, proto, x)
                                            : ntp__error(NTP_E_NOMEM, "gemv: out of memory");
    double *sec = calloc((size_t)b->reps + 2, sizeof *sec);
    if (s == NTP_OK && sec) {
        double share = 1;
        struct ntp_membw_team_params tp = {.topo = b->topo,
                                           .cpu_node = i,
                                           .n_threads = ntp__membw_node_cores(b->topo, i),
                                           .n_steps = b->reps + 2,
                                           .fn = gemv_step,
                                           .user = &g,
                                           .seconds = sec,
                                           .cpu_share = &share};
        s = ntp__membw_team_run(&tp);
        note_share(b, share);
    }
    if (s == NTP_OK && (sec == NULL || atomic_load(&g.failed)))
        s = ntp__error(NTP_E_INTERNAL, "gemv: the %s kernel failed: %s", ntp_type_name(t),
                       ntp_last_error());
    if (s == NTP_OK) {
        for (int r = 0; r < b->reps; r++) /* steps: fill, warm-up, timed */
            sec[r] = (double)w_bytes / sec[r + 2] * 1e-9;
        *out = ntp__membw_stat(sec, b->reps);
    }
    free(sec);
    ntp__membw_free(g.w, w_bytes);
    free(g.y);
    ntp__free_aligned(x);
    free(proto);
    return s;
}

static int measure_gemv(struct nb *b, int i)
{
    struct nb_gemv *g = &b->gemv[i];
    g->best = 0;
    for (int ti = 0; ti < N_GEMV; ti++) {
        progress(b, "GEMV,                ", i, i);
        ntp_status s = run_gemv(b, i, ti, &g->gbps[ti]);
        b->done++;
        if (s != NTP_OK) {
            fprintf(stderr, "\nnumatp numa-bench: node %d: %s\n", i, ntp_last_error());
            return 1;
        }
        if (g->gbps[ti].median > g->gbps[g->best].median)
            g->best = ti;
    }
    return 0;
}

/* One all-reduce group: device d's thread calls the collective on its own buffer. */
struct ar_job {
    struct ntp_comm *ar;
    float *buf[NTP_COMM_MAX_SIZE]; /* [n] per device, in its node's memory; owned */
    int64_t n;                     /* floats per call */
    int calls;                     /* back-to-back calls per step */
    atomic_int failed;
};

/* Step 0: first touch; then AR_CALLS back-to-back calls (zeros stay zeros: no overflow). */
static void ar_step(void *user, int step, int ith, int nth)
{
    struct ar_job *j = user;
    (void)nth;
    if (step == 0) {
        memset(j->buf[ith], 0, (size_t)j->n * sizeof(float));
        return;
    }
    for (int c = 0; c < j->calls; c++)
        if (j->ar->iface->allreduce(j->ar, ith, j->buf[ith], j->n) != NTP_OK) {
            atomic_store(&j->failed, 1);
            return;
        }
}

/* Microseconds per call of n_dev devices (one thread each) on vectors of n floats. */
static ntp_status run_allreduce(struct nb *b, int n_dev, int64_t n, struct ntp_membw_stat *out)
{
    const int n_nodes = b->n;
    int nodes[NTP_COMM_MAX_SIZE];
    struct ar_job j = {.n = n, .calls = b->ar_calls};
    for (int d = 0; d < n_dev; d++)
        nodes[d] = n_nodes > 1 ? ntp_topology_node_os_index(b->topo, d % n_nodes) : -1;
    const struct ntp_comm_params cp = {.size = n_dev, .max_n = n, .max_threads = 1, .nodes = nodes};
    ntp_status s = ntp__comm_new("shm", &cp, &j.ar);
    for (int d = 0; s == NTP_OK && d < n_dev; d++) {
        j.buf[d] = ntp__membw_alloc(b->topo, n_nodes > 1 ? d % n_nodes : 0, (size_t)n * 4);
        s = j.buf[d] ? NTP_OK : NTP_E_NOMEM;
    }
    double *sec = calloc((size_t)b->reps + 2, sizeof *sec);
    if (s == NTP_OK && sec) {
        struct ntp_membw_team_params tp = {.topo = b->topo,
                                           .cpu_node = -1,
                                           .n_threads = n_dev,
                                           .n_steps = b->reps + 2,
                                           .fn = ar_step,
                                           .user = &j,
                                           .seconds = sec,
                                           .spread = n_nodes > 1};
        /* No note_share: a device waiting for the others sleeps by design. */
        s = ntp__membw_team_run(&tp);
    }
    if (s == NTP_OK && (sec == NULL || atomic_load(&j.failed)))
        s = ntp__error(NTP_E_INTERNAL, "all-reduce of %d devices failed: %s", n_dev,
                       ntp_last_error());
    if (s == NTP_OK) {
        for (int r = 0; r < b->reps; r++) /* steps: touch, warm-up, timed */
            sec[r] = sec[r + 2] / b->ar_calls * 1e6;
        *out = ntp__membw_stat(sec, b->reps);
    }
    for (int d = 0; d < n_dev; d++)
        ntp__membw_free(j.buf[d], (size_t)n * 4);
    ntp__comm_free(j.ar);
    free(sec);
    return s;
}

static int measure_allreduce(struct nb *b)
{
    for (int n_dev = 2; n_dev <= b->n_ar_dev; n_dev++) {
        struct nb_allreduce *r = &b->ar[n_dev - 2];
        r->n_dev = n_dev;
        for (int l = 0; l < N_AR_LENS; l++) {
            progress(b, "all-reduce,          ", n_dev, -1);
            ntp_status s = run_allreduce(b, n_dev, ar_lens[l], &r->us[l]);
            b->done++;
            if (s != NTP_OK) {
                fprintf(stderr, "\nnumatp numa-bench: %s\n", ntp_last_error());
                return 1;
            }
        }
    }
    return 0;
}

static int measure_all(struct nb *b)
{
    b->total =
        3 * b->n * b->n + N_GEMV * b->n + (b->n_ar_dev > 1 ? b->n_ar_dev - 1 : 0) * N_AR_LENS;
    b->min_share = 1;
    for (int i = 0; i < b->n; i++)
        for (int j = 0; j < b->n; j++)
            if (measure_cell(b, i, j) != 0)
                return 1;
    for (int i = 0; i < b->n; i++)
        if (measure_gemv(b, i) != 0)
            return 1;
    if (measure_allreduce(b) != 0)
        return 1;
    progress(b, "", 0, 0);
    return 0;
}

/* --------------------------------------------------------------- output */

/* How the all-reduce devices were made, or why there is no table. */
static const char *allreduce_note(const struct nb *b)
{
    if (b->n_ar_dev < 2)
        return "not measured: an all-reduce needs 2 devices and this machine has one core";
    if (b->n > 1)
        return "one device per NUMA node (one pinned thread each, buffers in its node's memory)";
    return "one NUMA node: virtual devices, one pinned core each, all memory local";
}

/* A warning when the measuring threads did not have their cores to themselves. */
static void print_share_warning(const struct nb *b)
{
    if (b->min_share < 0.9)
        fprintf(stderr,
                "numatp numa-bench: warning: the machine was busy; a measurement's busiest thread "
                "ran only %.0f%% of the time, so the figures are low and noisy\n",
                100 * b->min_share);
}

static const char *one_node_note(const struct nb *b)
{
    return b->n == 1 ? "this machine has one NUMA node (with cores), so the matrix is 1x1: every "
                       "access is local and there is no remote memory to compare with"
                     : NULL;
}

typedef struct ntp_membw_stat (*cell_get_fn)(const struct nb_cell *c, int kernel);

static struct ntp_membw_stat get_all(const struct nb_cell *c, int k)
{
    return c->all.gbps[k];
}
static struct ntp_membw_stat get_one(const struct nb_cell *c, int k)
{
    return c->one.gbps[k];
}
static struct ntp_membw_stat get_lat(const struct nb_cell *c, int k)
{
    (void)k;
    return c->lat.ns;
}

/* An aligned matrix: rows = cpu node, columns = memory node, "median (min-max)" per cell. */
static void print_matrix(const struct nb *b, const char *title, cell_get_fn get, int k)
{
    printf("\n%s\n%-9s", title, "cpu\\mem");
    for (int j = 0; j < b->n; j++)
        printf(" %24d", j);
    printf("\n");
    for (int i = 0; i < b->n; i++) {
        printf("%-9d", i);
        for (int j = 0; j < b->n; j++) {
            const struct ntp_membw_stat s = get(&b->cell[i * b->n + j], k);
            char buf[64];
            snprintf(buf, sizeof buf, "%.2f (%.2f-%.2f)", s.median, s.min, s.max);
            printf(" %24s", buf);
        }
        printf("\n");
    }
}

static void print_allreduce_text(const struct nb *b)
{
    printf("\nall-reduce latency, us per call (%s, %d back-to-back calls)\n%-8s", allreduce_note(b),
           b->ar_calls, "devices");
    for (int l = 0; l < N_AR_LENS; l++) {
        char h[32];
        snprintf(h, sizeof h, "%lld floats", (long long)ar_lens[l]);
        printf(" %24s", h);
    }
    printf("\n");
    for (int d = 0; d + 2 <= b->n_ar_dev; d++) {
        printf("%-8d", b->ar[d].n_dev);
        for (int l = 0; l < N_AR_LENS; l++) {
            char buf[64];
            const struct ntp_membw_stat st = b->ar[d].us[l];
            snprintf(buf, sizeof buf, "%.1f (%.1f-%.1f)", st.median, st.min, st.max);
            printf(" %24s", buf);
        }
        printf("\n");
    }
}

static void print_gemv_text(const struct nb *b)
{
    printf("\nGEMV GB/s of weights (matrix-vector product, %d-wide rows, node-local, all cores, "
           "%s kernels)\n%-6s",
           GEMV_K, b->isa, "node");
    for (int t = 0; t < N_GEMV; t++)
        printf(" %22s", ntp_type_name(gemv_types[t]));
    printf("  best\n");
    for (int i = 0; i < b->n; i++) {
        printf("%-6d", i);
        for (int t = 0; t < N_GEMV; t++) {
            const struct ntp_membw_stat s = b->gemv[i].gbps[t];
            char buf[64];
            snprintf(buf, sizeof buf, "%.2f (%.2f-%.2f)", s.median, s.min, s.max);
            printf(" %22s", buf);
        }
        printf("  %s\n", ntp_type_name(gemv_types[b->gemv[i].best]));
    }
}

static void print_text(const struct nb *b)
{
    printf("numatp numa-bench: %d NUMA node%s, LLC %.0f MiB, arrays of %.0f MiB, median of %d "
           "repetitions (min-max)\n",
           b->n, b->n == 1 ? "" : "s", (double)ntp_topology_llc_bytes(b->topo) / 1048576.0,
           (double)b->bytes / 1048576.0, b->reps);
    for (int i = 0; i < b->n; i++)
        printf("  node %d: OS node %d, %d cores\n", i, ntp_topology_node_os_index(b->topo, i),
               ntp__membw_node_cores(b->topo, i));
    if (one_node_note(b))
        printf("note: %s\n", one_node_note(b));
    printf("read loop: %s; write: SSE2 non-temporal stores\n",
           b->cell[0].all.read_isa ? b->cell[0].all.read_isa : "?");
    char title[160];
    for (int k = 0; k < NTP_MEMBW_N_KERNELS; k++) {
        snprintf(title, sizeof title,
                 "%s GB/s, all cores of the cpu node (rows: cpu node, columns: memory node)",
                 ntp__membw_kernel_name(k));
        print_matrix(b, title, get_all, k);
    }
    for (int k = 0; k < NTP_MEMBW_N_KERNELS; k++) {
        snprintf(title, sizeof title, "%s GB/s, one core", ntp__membw_kernel_name(k));
        print_matrix(b, title, get_one, k);
    }
    print_matrix(b, "idle load-to-use latency, ns per load (pointer chase, one core)", get_lat, 0);
    print_gemv_text(b);
    print_allreduce_text(b);
    printf("\nCPU share of the measuring threads: %.2f at the least (1 = undisturbed)\n",
           b->min_share);
}

static void json_stat(FILE *f, struct ntp_membw_stat s)
{
    fprintf(f, "{\"median\": %.4f, \"min\": %.4f, \"max\": %.4f}", s.median, s.min, s.max);
}

/* A matrix as a JSON array of rows (cpu node) of cells (memory node). */
static void json_matrix(FILE *f, const struct nb *b, cell_get_fn get, int k)
{
    fputs("[", f);
    for (int i = 0; i < b->n; i++) {
        fputs(i ? ", [" : "[", f);
        for (int j = 0; j < b->n; j++) {
            fputs(j ? ", " : "", f);
            json_stat(f, get(&b->cell[i * b->n + j], k));
        }
        fputs("]", f);
    }
    fputs("]", f);
}

static void json_bandwidth(FILE *f, const struct nb *b, const char *name, cell_get_fn get)
{
    fprintf(f, "  \"%s\": {", name);
    for (int k = 0; k < NTP_MEMBW_N_KERNELS; k++) {
        fprintf(f, "%s\n    \"%s\": ", k ? "," : "", ntp__membw_kernel_name(k));
        json_matrix(f, b, get, k);
    }
    fputs("\n  },\n", f);
}

static void json_nodes(FILE *f, const struct nb *b)
{
    fputs("  \"nodes\": [", f);
    for (int i = 0; i < b->n; i++)
        fprintf(f, "%s{\"index\": %d, \"os_index\": %d, \"cores\": %d, \"memory_bytes\": %llu}",
                i ? ", " : "", i, ntp_topology_node_os_index(b->topo, i),
                ntp__membw_node_cores(b->topo, i),
                (unsigned long long)ntp_topology_node_memory(b->topo, i));
    fputs("],\n  \"placed_fraction\": [", f);
    for (int i = 0; i < b->n; i++) {
        fputs(i ? ", [" : "[", f);
        for (int j = 0; j < b->n; j++)
            fprintf(f, "%s%.3f", j ? ", " : "", b->cell[i * b->n + j].all.placed);
        fputs("]", f);
    }
    fputs("],\n", f);
}

static void json_gemv(FILE *f, const struct nb *b)
{
    fprintf(f, "  \"gemv\": {\"isa\": \"%s\", \"k\": %d, \"nodes\": [", b->isa, GEMV_K);
    for (int i = 0; i < b->n; i++) {
        const struct nb_gemv *g = &b->gemv[i];
        fprintf(f, "%s\n    {\"node\": %d, \"best_type\": \"%s\", \"best_gbps\": %.4f",
                i ? "," : "", i, ntp_type_name(gemv_types[g->best]), g->gbps[g->best].median);
        for (int t = 0; t < N_GEMV; t++) {
            fprintf(f, ", \"%s\": ", ntp_type_name(gemv_types[t]));
            json_stat(f, g->gbps[t]);
        }
        fputs("}", f);
    }
    fputs("\n  ]},\n", f);
}

static void json_allreduce(FILE *f, const struct nb *b)
{
    fputs("  \"allreduce_note\": ", f);
    ntp_cli_json_str(f, allreduce_note(b));
    fprintf(f, ",\n  \"allreduce_calls\": %d,\n  \"allreduce_lengths\": [", b->ar_calls);
    for (int l = 0; l < N_AR_LENS; l++)
        fprintf(f, "%s%lld", l ? ", " : "", (long long)ar_lens[l]);
    fputs("],\n  \"allreduce_us\": [", f);
    for (int d = 0; d + 2 <= b->n_ar_dev; d++) {
        fprintf(f, "%s\n    {\"n_dev\": %d, \"us\": [", d ? "," : "", b->ar[d].n_dev);
        for (int l = 0; l < N_AR_LENS; l++) {
            fputs(l ? ", " : "", f);
            json_stat(f, b->ar[d].us[l]);
        }
        fputs("]}", f);
    }
    fputs("],\n", f);
}

static void print_json(const struct nb *b)
{
    char when[32];
    ntp_cli_iso_time(when, sizeof when);
    FILE *f = stdout;
    fprintf(f, "{\n  \"numatp_version\": \"%s\",\n  \"test_time\": \"%s\",\n", ntp_version(), when);
    fprintf(f,
            "  \"n_nodes\": %d,\n  \"llc_bytes\": %llu,\n  \"array_bytes\": %llu,\n"
            "  \"reps\": %d,\n  \"note\": ",
            b->n, (unsigned long long)ntp_topology_llc_bytes(b->topo), (unsigned long long)b->bytes,
            b->reps);
    ntp_cli_json_str(f, one_node_note(b));
    fputs(",\n  \"read_loop\": ", f);
    ntp_cli_json_str(f, b->cell[0].all.read_isa);
    fputs(",\n", f);
    json_nodes(f, b);
    json_bandwidth(f, b, "bandwidth_gbps_all_cores", get_all);
    json_bandwidth(f, b, "bandwidth_gbps_one_core", get_one);
    fputs("  \"latency_ns\": ", f);
    json_matrix(f, b, get_lat, 0);
    fputs(",\n", f);
    json_gemv(f, b);
    json_allreduce(f, b);
    fprintf(f, "  \"min_cpu_share\": %.4f\n}\n", b->min_share);
}

/* ------------------------------------------------------------------ svg */

/* A sequential palette (viridis, 5 stops) at t in [0, 1], as "#rrggbb". */
static void palette(double t, char out[8])
{
    static const unsigned char stops[5][3] = {
        {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const double x = t * 4;
    const int i = x >= 4 ? 3 : (int)x;
    const double f = x - i;
    int c[3];
    for (int k = 0; k < 3; k++)
        c[k] = (int)(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]) + 0.5);
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

struct svg_geom {
    int left, top, cell_w, cell_h, width, height;
    double lo, hi; /* range of the read medians */
};

static void svg_cells(FILE *f, const struct nb *b, const struct svg_geom *g)
{
    for (int j = 0; j < b->n; j++)
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">mem %d</text>\n",
                g->left + j * g->cell_w + g->cell_w / 2, g->top - 8, j);
    for (int i = 0; i < b->n; i++) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">cpu %d</text>\n", g->left - 8,
                g->top + i * g->cell_h + g->cell_h / 2 + 5, i);
        for (int j = 0; j < b->n; j++) {
            const double v = b->cell[i * b->n + j].all.gbps[NTP_MEMBW_READ].median;
            const double t = g->hi > g->lo ? (v - g->lo) / (g->hi - g->lo) : 0.75;
            char col[8];
            palette(t, col);
            const int x = g->left + j * g->cell_w, y = g->top + i * g->cell_h;
            fprintf(f,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                    "stroke=\"#ffffff\" stroke-width=\"2\"/>\n",
                    x, y, g->cell_w, g->cell_h, col);
            fprintf(f,
                    "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"16\" "
                    "fill=\"%s\">%.1f</text>\n",
                    x + g->cell_w / 2, y + g->cell_h / 2 + 6, t > 0.6 ? "#000000" : "#ffffff", v);
        }
    }
}

static void svg_legend(FILE *f, const struct svg_geom *g, int y)
{
    const int x = g->left, w = 200;
    fprintf(f, "<defs><linearGradient id=\"scale\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">\n");
    for (int s = 0; s <= 4; s++) {
        char col[8];
        palette(s / 4.0, col);
        fprintf(f, "<stop offset=\"%d%%\" stop-color=\"%s\"/>\n", s * 25, col);
    }
    fprintf(f, "</linearGradient></defs>\n");
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"14\" fill=\"url(#scale)\" "
            "stroke=\"#888888\"/>\n",
            x, y, w);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"start\">%.1f</text>\n", x, y + 30, g->lo);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.1f GB/s</text>\n", x + w, y + 30,
            g->hi);
}

static int write_svg(struct nb *b)
{
    FILE *f = b->svg_f;
    b->svg_f = NULL;
    struct svg_geom g = {.left = 90, .top = 120, .cell_w = 110, .cell_h = 70};
    g.width = g.left + b->n * g.cell_w + 40;
    g.width = g.width < 560 ? 560 : g.width;
    g.height = g.top + b->n * g.cell_h + 70;
    g.lo = g.hi = b->cell[0].all.gbps[NTP_MEMBW_READ].median;
    for (int c = 1; c < b->n * b->n; c++) {
        const double v = b->cell[c].all.gbps[NTP_MEMBW_READ].median;
        g.lo = v < g.lo ? v : g.lo;
        g.hi = v > g.hi ? v : g.hi;
    }
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"13\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
            g.width, g.height, g.width, g.height);
    fprintf(f,
            "<text x=\"20\" y=\"28\" font-size=\"17\" font-weight=\"bold\">numatp numa-bench: "
            "read bandwidth (GB/s)</text>\n"
            "<text x=\"20\" y=\"50\">all cores of the cpu node, median of %d, %.0f MiB "
            "arrays</text>\n<text x=\"20\" y=\"68\">%s</text>\n",
            b->reps, (double)b->bytes / 1048576.0,
            b->n == 1 ? "one NUMA node: a 1x1 matrix (all memory is local)"
                      : "rows: cpu node, columns: memory node");
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-style=\"italic\">memory "
            "node</text>\n",
            g.left + b->n * g.cell_w / 2, g.top - 28);
    fprintf(f,
            "<text transform=\"translate(%d,%d) rotate(-90)\" text-anchor=\"middle\" "
            "font-style=\"italic\">cpu node</text>\n",
            g.left - 58, g.top + b->n * g.cell_h / 2);
    svg_cells(f, b, &g);
    svg_legend(f, &g, g.top + b->n * g.cell_h + 16);
    fprintf(f, "</svg>\n");
    const bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed) {
        fprintf(stderr, "numatp numa-bench: --svg %s: write failed: %s\n", b->svg, strerror(errno));
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------- command */

static void usage(FILE *f)
{
    fprintf(f, "usage: numatp numa-bench [--size SIZE] [--reps N] [--json] [--svg FILE]\n\n"
               "Measure the machine's NUMA matrix: for every (cpu node, memory node) pair, the\n"
               "read, write (non-temporal), copy and triad bandwidth with all cores of the cpu\n"
               "node and with one core, and the idle load-to-use latency (pointer chase); per\n"
               "node, the GEMV bandwidth of the quantized kernels. Method: docs/numa-bench.md.\n\n"
               "options:\n"
               "  --size SIZE      bytes of each array, e.g. 512M, 1G (default: 4 x LLC, between\n"
               "                   64M and 1G); three arrays are live at once\n"
               "  --reps N         timed repetitions; the median is reported (default 5)\n"
               "  --json           print JSON instead of tables\n"
               "  --svg FILE       also write a heat map of the read bandwidth as SVG\n"
               "  --ar-calls N     all-reduce calls per repetition (default 2000)\n"
               "  -h, --help       this help\n");
}

struct nb_args {
    const char *size, *svg;
    int64_t reps, ar_calls;
    bool json, help;
};

/* Check the arguments into b and open --svg's file; 2 on a usage error, 1 when that file
 * cannot be made, -1 for --help. */
static int nb_check(const struct nb_args *a, struct nb *b)
{
    if (a->help)
        return usage(stdout), -1;
    if (a->size && !ntp_cli_parse_size(a->size, &b->bytes)) {
        fprintf(stderr,
                "numatp numa-bench: --size '%s': expected a positive byte count such as "
                "4096, 512M or 1G\n",
                a->size);
        return 2;
    }
    const uint64_t avail = (uint64_t)sysconf(_SC_AVPHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    if (a->size && (b->bytes < (64u << 10) || b->bytes > avail / 3)) {
        fprintf(stderr,
                "numatp numa-bench: --size %s: expected 64K to %llu MiB (three arrays "
                "must fit in the %llu MiB of available memory)\n",
                a->size, (unsigned long long)(avail / 3 >> 20), (unsigned long long)(avail >> 20));
        return 2;
    }
    b->ar_calls = (int)a->ar_calls;
    b->reps = (int)a->reps;
    b->json = a->json;
    b->svg = a->svg;
    if (a->svg && (b->svg_f = fopen(a->svg, "w")) == NULL) {
        fprintf(stderr, "numatp numa-bench: --svg %s: %s\n", a->svg, strerror(errno));
        return 1;
    }
    return 0;
}

static int nb_run(struct nb *b)
{
    if (ntp_topology_detect(&b->topo) != NTP_OK || ntp__kernels_init(&b->kernels, NULL) != NTP_OK) {
        fprintf(stderr, "numatp numa-bench: %s\n", ntp_last_error());
        return 1;
    }
    b->isa = b->kernels.isa;
    b->n = ntp_topology_n_nodes(b->topo);
    const uint64_t llc = ntp_topology_llc_bytes(b->topo);
    if (b->bytes == 0 && 4 * llc > ntp__membw_default_bytes(b->topo))
        fprintf(stderr,
                "numatp numa-bench: arrays capped at %.0f MiB (4 x the %.0f MiB "
                "last-level cache would be %.0f MiB; see docs/numa-bench.md)\n",
                (double)ntp__membw_default_bytes(b->topo) / 1048576.0, (double)llc / 1048576.0,
                4.0 * (double)llc / 1048576.0);
    else if (b->bytes && b->bytes < 4 * llc)
        fprintf(stderr,
                "numatp numa-bench: warning: arrays of %.1f MiB are less than 4 x the "
                "last-level cache (%.0f MiB): caches inflate the figures\n",
                (double)b->bytes / 1048576.0, (double)llc / 1048576.0);
    if (b->bytes == 0)
        b->bytes = ntp__membw_default_bytes(b->topo);
    b->cell = calloc((size_t)b->n * (size_t)b->n, sizeof *b->cell);
    b->gemv = calloc((size_t)b->n, sizeof *b->gemv);
    b->n_ar_dev = b->n > 1 ? b->n : ntp__membw_node_cores(b->topo, -1);
    b->n_ar_dev = b->n_ar_dev > NTP_COMM_MAX_SIZE ? NTP_COMM_MAX_SIZE : b->n_ar_dev;
    b->ar = calloc(b->n_ar_dev > 1 ? (size_t)b->n_ar_dev - 1 : 1, sizeof *b->ar);
    if (b->cell == NULL || b->gemv == NULL || b->ar == NULL) {
        fprintf(stderr, "numatp numa-bench: out of memory\n");
        return 1;
    }
    int rc = measure_all(b);
    if (rc == 0 && b->json)
        print_json(b);
    else if (rc == 0)
        print_text(b);
    if (rc == 0 && b->svg)
        rc = write_svg(b);
    if (rc == 0)
        print_share_warning(b);
    return rc;
}

int ntp_cli_numa_bench(int argc, char **argv)
{
    struct nb_args a = {.reps = 5, .ar_calls = 2000};
    const struct ntp_cli_opt opts[] = {
        {"--size", NULL, NTP_CLI_STR, .dst = &a.size},
        {"--reps", NULL, NTP_CLI_INT, .dst = &a.reps, .lo = 1, .hi = 1000},
        {"--json", NULL, NTP_CLI_FLAG, .dst = &a.json},
        {"--svg", NULL, NTP_CLI_STR, .dst = &a.svg},
        {"--ar-calls", NULL, NTP_CLI_INT, .dst = &a.ar_calls, .lo = 1, .hi = 10000000},
        {"--help", "-h", NTP_CLI_FLAG, .dst = &a.help},
        {NULL},
    };
    struct nb b = {0};
    int rc =
        ntp_cli_parse("numa-bench", argc, argv, (const struct ntp_cli_opt *const[]){opts, NULL});
    if (rc == 0)
        rc = nb_check(&a, &b);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    rc = nb_run(&b);
    if (b.svg_f) { /* not written: no half-made file is left */
        fclose(b.svg_f);
        remove(b.svg);
    }
    free(b.cell);
    free(b.gemv);
    free(b.ar);
    ntp_topology_free(b.topo);
    return rc;
}
