/*
 * kernels.c - `bench/kernels`: speed of the CPU kernels per weight format and
 * ISA, with the machine's read bandwidth measured in the same run as the
 * ceiling of decode.
 *
 *   matvec (decode): one token through a weight matrix larger than the LLC
 *     (2 x hwloc's LLC size, at least 256 MiB, at most 1 GiB): GB/s of
 *     weight bytes streamed, and that as a fraction of the STREAM-style read
 *     bandwidth of the same thread count.
 *   matmul (prefill): 128 tokens (--mm-tok) through a --mm-mib matrix
 *     (default 32 MiB): GOP/s counting a multiply and an add per weight per
 *     token. A few tokens (--mm-tok 8) is the decode step of a server
 *     batching 8 streams.
 *   moe_decode, moe_prefill (mixture of experts, --moe E,U: E experts, U
 *     per token; default 128,8 as Qwen3-30B-A3B): the matvec matrix cut into
 *     E experts, each token routed to U of them, through the grouped expert
 *     product. Decode runs 4E/U tokens one after another, each to U other
 *     experts, so that every expert is read from memory: GB/s of the chosen
 *     experts' bytes, and that against the read bandwidth. Prefill routes
 *     --mm-tok tokens at once (each expert read once for its tokens): GOP/s.
 *     Both in the packed layout where the ISA packs the type, as at load.
 *   Every figure is given twice: by wall time, and by the slowest thread's
 *   CPU time ("cpu-time"), which is what the kernel does on a core it has to
 *   itself; on a machine others share the two differ.
 *
 * Threads are our own pthreads pinned one per CPU (1 and 2 by default); each
 * runs its (ith, nth) slice as the CPU device does. Activations are quantized
 * once beforehand: these are the products alone. Median of --reps runs.
 *
 *   bench/kernels [--json] [--threads 1,2] [--isa avx2,avx512,amx] [--types q4_0,q8_0]
 *                 [--mv-mib N] [--mm-mib N] [--mm-tok N] [--reps N] [--k N (row length, 4096)]
 *                 [--moe E,U | 0 (none)]
 */
#include "core/core.h"
#include "kernels/kernels.h"
#include "kernels/packed.h"
#include "kernels/quant.h"
#include "ntp.h"

#if NTP_HAVE_X86_KERNELS
#include <immintrin.h>
#endif
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MAX_THREADS 64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the calling thread: on a shared machine, what a job cost while it ran. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------ thread team */

/* A job every thread of the team runs with its index; the team times the slowest. */
struct team {
    int nth;
    pthread_barrier_t start, done;
    void (*job)(void *ctx, int ith, int nth);
    void *ctx;
    int quit;
    pthread_t tid[MAX_THREADS];
    double cpu[MAX_THREADS]; /* CPU seconds each thread spent in the last job */
};

struct worker_arg {
    struct team *tm;
    int ith;
};

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % CPU_SETSIZE, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *worker(void *p)
{
    struct worker_arg *a = p;
    pin(a->ith);
    for (;;) {
        pthread_barrier_wait(&a->tm->start);
        if (a->tm->quit)
            break;
        const double c0 = cpu_now();
        a->tm->job(a->tm->ctx, a->ith, a->tm->nth);
        a->tm->cpu[a->ith] = cpu_now() - c0;
        pthread_barrier_wait(&a->tm->done);
    }
    free(a);
    return NULL;
}

static void team_start(struct team *tm, int nth)
{
    memset(tm, 0, sizeof *tm);
    tm->nth = nth;
    pthread_barrier_init(&tm->start, NULL, (unsigned)nth + 1);
    pthread_barrier_init(&tm->done, NULL, (unsigned)nth + 1);
    for (int i = 0; i < nth; i++) {
        struct worker_arg *a = malloc(sizeof *a);
        a->tm = tm;
        a->ith = i;
        pthread_create(&tm->tid[i], NULL, worker, a);
    }
}

static double team_run(struct team *tm, void (*job)(void *, int, int), void *ctx)
{
    tm->job = job;
    tm->ctx = ctx;
    const double t0 = now();
    pthread_barrier_wait(&tm->start);
    pthread_barrier_wait(&tm->done);
    return now() - t0;
}

static void team_stop(struct team *tm)
{
    tm->quit = 1;
    pthread_barrier_wait(&tm->start);
    for (int i = 0; i < tm->nth; i++)
        pthread_join(tm->tid[i], NULL);
    pthread_barrier_destroy(&tm->start);
    pthread_barrier_destroy(&tm->done);
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/*
 * Median wall seconds of reps runs of job after one warm-up; *cpu gets the
 * median of the slowest thread's CPU seconds (equal to wall on an idle machine,
 * smaller when other processes took the cores: the speed an idle core gives).
 */
static double median_run(struct team *tm, void (*job)(void *, int, int), void *ctx, int reps,
                         double *cpu)
{
    double t[32], c[32];
    if (reps > 32)
        reps = 32;
    team_run(tm, job, ctx);
    for (int i = 0; i < reps; i++) {
        t[i] = team_run(tm, job, ctx);
        c[i] = 0;
        for (int j = 0; j < tm->nth; j++)
            c[i] = tm->cpu[j] > c[i] ? tm->cpu[j] : c[i];
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    qsort(c, (size_t)reps, sizeof c[0], cmp_double);
    *cpu = c[reps / 2];
    return t[reps / 2];
}

/* ------------------------------------------------------------- bandwidth */

struct stream_ctx {
    const uint8_t *buf;
    size_t bytes;
    volatile uint64_t sink[MAX_THREADS * 8];
};

#if NTP_HAVE_X86_KERNELS
__attribute__((target("avx2"))) static uint64_t read_bytes(const uint8_t *p, size_t n)
{
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a = _mm256_add_epi64(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_add_epi64(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
        c = _mm256_add_epi64(c, _mm256_load_si256((const __m256i *)(p + i + 64)));
        d = _mm256_add_epi64(d, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
    return (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
}
#else
/* Elsewhere a plain sum of 64-bit words, which the compiler vectorizes. */
static uint64_t read_bytes(const uint8_t *p, size_t n)
{
    const uint64_t *u = (const uint64_t *)p;
    uint64_t s = 0;
    for (size_t i = 0; i < n / 8; i++)
        s += u[i];
    return s;
}
#endif

static void stream_job(void *p, int ith, int nth)
{
    struct stream_ctx *c = p;
    int64_t i0, i1;
    ntp__slice((int64_t)(c->bytes / 4096), ith, nth, &i0, &i1);
    c->sink[ith * 8] = read_bytes(c->buf + i0 * 4096, (size_t)(i1 - i0) * 4096);
}

/* -------------------------------------------------------------- products */

struct mm_ctx {
    const struct ntp_kernels *k;
    struct ntp_matmul_args a;
};

static void mm_job(void *p, int ith, int nth)
{
    struct mm_ctx *c = p;
    struct ntp_matmul_args a = c->a;
    a.ith = ith;
    a.nth = nth;
    if (ntp__kernels_matmul(c->k, &a) != NTP_OK)
        abort();
}

/* A weight matrix of rows x k in type t, filled by repeating 64 quantized random rows. */
static uint8_t *make_weights(enum ntp_type t, int64_t k, int64_t rows, size_t *row_bytes)
{
    ntp_type_row_size(t, k, row_bytes);
    uint8_t *w = ntp__alloc_aligned(*row_bytes * (size_t)rows, 4096);
    const int64_t seed_rows = rows < 64 ? rows : 64;
    float *f = malloc((size_t)(seed_rows * k) * sizeof(float));
    uint32_t s = 12345;
    for (int64_t i = 0; i < seed_rows * k; i++) {
        s = s * 1664525u + 1013904223u;
        f[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    if (t == NTP_TYPE_F32)
        memcpy(w, f, *row_bytes * (size_t)seed_rows);
    else
        ntp__quantize_rows(t, f, w, seed_rows, k);
    for (int64_t r = seed_rows; r < rows; r += seed_rows) {
        const int64_t n = rows - r < seed_rows ? rows - r : seed_rows;
        memcpy(w + (size_t)r * *row_bytes, w, (size_t)n * *row_bytes);
    }
    free(f);
    return w;
}

static void *make_acts(const struct ntp_kernels *k, enum ntp_type t, int64_t kk, int64_t n_tok,
                       size_t *stride)
{
    *stride = ntp__kernels_act_row_size(k, t, kk);
    uint8_t *x = ntp__alloc_aligned(*stride * (size_t)n_tok, 64);
    float *f = malloc((size_t)kk * sizeof(float));
    for (int64_t tk = 0; tk < n_tok; tk++) {
        for (int64_t i = 0; i < kk; i++)
            f[i] = (float)((i * 7 + tk * 13) % 97) / 97.0f - 0.5f;
        if (k->type[t].quantize_act)
            k->type[t].quantize_act(f, x + tk * *stride, kk);
        else
            memcpy(x + tk * *stride, f, *stride);
    }
    free(f);
    return x;
}

/* ------------------------------------------------------------------ main */

struct opts {
    bool json;
    int threads[8], n_threads;
    const char *isas[4];
    int n_isas;
    enum ntp_type types[16];
    int n_types;
    size_t mv_bytes, mm_bytes;
    int reps;
    int64_t k;            /* elements per weight row (--k, default 4096) */
    int64_t mm_tok;       /* tokens of the matmul (--mm-tok, default 128) */
    int n_expert, n_used; /* --moe E,U (default 128,8; E 0: no expert products) */
};

static void split(char *s, void (*add)(struct opts *, const char *), struct opts *o)
{
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
        add(o, tok);
}
static void add_thr(struct opts *o, const char *s)
{
    if (o->n_threads < 8)
        o->threads[o->n_threads++] = atoi(s);
}
static void add_isa(struct opts *o, const char *s)
{
    if (o->n_isas < 4)
        o->isas[o->n_isas++] = s;
}
static void add_type(struct opts *o, const char *s)
{
    enum ntp_type t;
    if (o->n_types < 16 && ntp_type_from_name(s, &t) == NTP_OK)
        o->types[o->n_types++] = t;
    else
        fprintf(stderr, "kernels: unknown type '%s' ignored\n", s);
}

static const char usage[] =
    "usage: kernels [--json] [--threads 1,2] [--isa avx2,avx512,amx] [--types q4_0,...]\n"
    "               [--mv-mib N] [--mm-mib N] [--mm-tok N] [--reps N] [--k N] [--moe E,U | 0]\n";

/* 0: run; 1: --help was printed; -1: a bad flag (usage on stderr). */
static int parse(int argc, char **argv, struct opts *o, uint64_t llc)
{
    static const enum ntp_type all[] = {NTP_TYPE_Q4_0, NTP_TYPE_Q8_0, NTP_TYPE_Q4_K, NTP_TYPE_Q6_K,
                                        NTP_TYPE_Q4_1, NTP_TYPE_Q5_0, NTP_TYPE_Q5_1, NTP_TYPE_Q2_K,
                                        NTP_TYPE_Q3_K, NTP_TYPE_Q5_K, NTP_TYPE_F16,  NTP_TYPE_BF16,
                                        NTP_TYPE_F32};
    uint64_t mv = 2 * llc;
    mv = mv < (256u << 20) ? (256u << 20) : mv > (1u << 30) ? (1u << 30) : mv;
    *o = (struct opts){.mv_bytes = mv,
                       .mm_bytes = 32u << 20,
                       .reps = 5,
                       .k = 4096,
                       .mm_tok = 128,
                       .n_expert = 128,
                       .n_used = 8};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--json") == 0)
            o->json = true;
        else if (strcmp(argv[i], "--threads") == 0 && v && ++i)
            split(argv[i], add_thr, o);
        else if (strcmp(argv[i], "--isa") == 0 && v && ++i)
            split(argv[i], add_isa, o);
        else if (strcmp(argv[i], "--types") == 0 && v && ++i)
            split(argv[i], add_type, o);
        else if (strcmp(argv[i], "--mv-mib") == 0 && v && ++i)
            o->mv_bytes = (size_t)atol(argv[i]) << 20;
        else if (strcmp(argv[i], "--mm-mib") == 0 && v && ++i)
            o->mm_bytes = (size_t)atol(argv[i]) << 20;
        else if (strcmp(argv[i], "--mm-tok") == 0 && v && ++i)
            o->mm_tok = atol(argv[i]) >= 1 && atol(argv[i]) <= 4096 ? atol(argv[i]) : 128;
        else if (strcmp(argv[i], "--reps") == 0 && v && ++i)
            o->reps = atoi(argv[i]);
        else if (strcmp(argv[i], "--moe") == 0 && v && ++i) {
            const bool none = strcmp(argv[i], "0") == 0;
            if (none)
                o->n_expert = 0;
            else if (sscanf(argv[i], "%d,%d", &o->n_expert, &o->n_used) != 2 || o->n_expert < 1 ||
                     o->n_expert > 1024 || o->n_used < 1 || o->n_used > o->n_expert) {
                fprintf(stderr, "kernels: --moe %s: expected E,U with 1 <= U <= E <= 1024, or 0\n",
                        argv[i]);
                return -1;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("%s", usage);
            return 1;
        } else if (strcmp(argv[i], "--k") == 0 && v && ++i)
            o->k = atol(argv[i]) / 256 * 256 > 0 ? atol(argv[i]) / 256 * 256 : 256;
        else {
            fprintf(stderr, "%s", usage);
            return -1;
        }
    }
    if (o->n_threads == 0) {
        o->threads[0] = 1;
        o->threads[1] = 2;
        o->n_threads = 2;
    }
    if (o->n_isas == 0) {
        static const char *cand[] = {"avx2", "avx512", "amx"};
        for (int i = 0; i < 3; i++)
            if (ntp__kernels_isa_ok(cand[i]))
                o->isas[o->n_isas++] = cand[i];
    }
    if (o->n_types == 0)
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            o->types[o->n_types++] = all[i];
    return 0;
}

static bool first_json = true;

static void emit(const struct opts *o, const char *isa, const char *op, const char *t, int nth,
                 double value, double cpu_value, const char *unit, double frac)
{
    if (o->json) {
        printf("%s  {\"isa\": \"%s\", \"op\": \"%s\", \"type\": \"%s\", \"threads\": %d, "
               "\"value\": %.3f, \"value_cpu\": %.3f, \"unit\": \"%s\", \"of_read_bw\": %.3f}",
               first_json ? "[\n" : ",\n", isa, op, t, nth, value, cpu_value, unit, frac);
        first_json = false;
    } else {
        printf("%-7s %-18s %-5s t=%d %9.2f %-5s  cpu-time %9.2f", isa, op, t, nth, value, unit,
               cpu_value);
        if (frac > 0)
            printf("  (%3.0f%% of read bw)", 100 * frac);
        putchar('\n');
    }
    fflush(stdout);
}

/* ---------------------------------------------------- mixture of experts */

struct moe_ctx {
    const struct ntp_kernels *k;
    struct ntp_moe_matmul_args a;      /* the product of one step (group, n_group set per step) */
    const struct ntp_moe_group *steps; /* [n_step][n_used] decode, or the prefill's groups */
    int64_t n_step, n_group;           /* steps one after another, groups in each */
};

static void moe_job(void *p, int ith, int nth)
{
    struct moe_ctx *c = p;
    struct ntp_moe_matmul_args a = c->a;
    a.ith = ith;
    a.nth = nth;
    a.n_group = c->n_group;
    for (int64_t st = 0; st < c->n_step; st++) {
        a.group = c->steps + st * c->n_group;
        if (ntp__kernels_matmul_experts(c->k, &a) != NTP_OK)
            abort();
    }
}

/*
 * Decode and prefill through E experts cut from the matvec matrix w (rows of
 * rb bytes, x a quantized activation row repeated; see the header).
 */
static void bench_moe(const struct opts *o, const struct ntp_kernels *k, struct team *tm,
                      enum ntp_type t, const uint8_t *w, size_t rb, int64_t w_rows,
                      enum ntp_pack_layout layout, double read_bw)
{
    const int E = o->n_expert, U = o->n_used;
    const int64_t rows = w_rows / E / NTP_PACK_ROWS * NTP_PACK_ROWS, kk = o->k;
    const int64_t n_tok = o->mm_tok, n_step = 4 * ((E + U - 1) / U);
    if (rows == 0)
        return;
    size_t xs;
    void *x = make_acts(k, t, kk, n_tok * U, &xs);
    float *y = ntp__alloc_aligned((size_t)(n_tok * U * rows) * sizeof(float), 64);
    /* n_step * U >= 4E: the decode's groups, then room for the prefill's (at most E) */
    struct ntp_moe_group *g = calloc((size_t)(n_step * U), sizeof *g);
    /* Decode: step st's token goes to experts (st * U + j) mod E, slot j. */
    for (int64_t st = 0; st < n_step; st++)
        for (int j = 0; j < U; j++)
            g[st * U + j] = (struct ntp_moe_group){(st * U + j) % E, j, 1};
    struct moe_ctx c = {k,
                        {.wtype = t,
                         .w = w,
                         .w_stride = rb,
                         .layout = layout,
                         .rows = rows,
                         .k = kk,
                         .x = x,
                         .x_stride = xs,
                         .y = y,
                         .ldy = rows},
                        g,
                        n_step,
                        U};
    double cs;
    const double s = median_run(tm, moe_job, &c, o->reps, &cs);
    const double bytes = (double)n_step * U * (double)rows * (double)rb;
    const char *suffix = layout != NTP_PACK_NONE ? "_packed" : "";
    char op[32];
    snprintf(op, sizeof op, "moe_decode%s", suffix);
    emit(o, k->isa, op, ntp_type_name(t), tm->nth, bytes / s / 1e9, bytes / cs / 1e9, "GB/s",
         bytes / s / 1e9 / read_bw);
    /* Prefill: token i goes to experts (i + j * E / U) mod E; slots grouped by expert. */
    int64_t n_group = 0, slot = 0;
    for (int e = 0; e < E; e++) {
        int64_t n = 0;
        for (int64_t i = 0; i < n_tok; i++)
            for (int j = 0; j < U; j++)
                n += (i + (int64_t)j * E / U) % E == e;
        if (n > 0)
            g[n_group++] = (struct ntp_moe_group){e, slot, n};
        slot += n;
    }
    c.n_step = 1;
    c.n_group = n_group;
    const double s2 = median_run(tm, moe_job, &c, o->reps < 3 ? o->reps : 3, &cs);
    const double ops = 2.0 * (double)rows * (double)kk * (double)(n_tok * U);
    snprintf(op, sizeof op, "moe_prefill%s", suffix);
    emit(o, k->isa, op, ntp_type_name(t), tm->nth, ops / s2 / 1e9, ops / cs / 1e9, "GOP/s", 0);
    free(g);
    ntp__free_aligned(x);
    ntp__free_aligned(y);
}

/* Decode and prefill of one type on one ISA with nth threads. */
static void bench_type(const struct opts *o, const struct ntp_kernels *k, struct team *tm,
                       enum ntp_type t, double read_bw)
{
    const int64_t kk = o->k;
    size_t rb, xs;
    ntp_type_row_size(t, kk, &rb);
    const int64_t mv_rows = (int64_t)(o->mv_bytes / rb), mm_rows = (int64_t)(o->mm_bytes / rb);
    const int64_t n_tok = o->mm_tok;
    /* the matvec's rows, and the matmul's when --mm-mib asks for more */
    const int64_t w_rows = mv_rows > mm_rows ? mv_rows : mm_rows;
    uint8_t *w = make_weights(t, kk, w_rows, &rb);
    void *x = make_acts(k, t, kk, n_tok, &xs);
    float *y = ntp__alloc_aligned(
        (size_t)(mv_rows > mm_rows * n_tok ? mv_rows : mm_rows * n_tok) * sizeof(float), 64);
    struct mm_ctx c = {
        k, {t, w, rb, mv_rows, kk, x, xs, 1, y, mv_rows, 0, 1, NTP_PACK_NONE, NULL, NULL}};
    double cs, cs2;
    const double s = median_run(tm, mm_job, &c, o->reps, &cs);
    const double bytes = (double)rb * (double)mv_rows;
    emit(o, k->isa, "matvec", ntp_type_name(t), tm->nth, bytes / s / 1e9, bytes / cs / 1e9, "GB/s",
         bytes / s / 1e9 / read_bw);
    c.a.n_rows = mm_rows;
    c.a.n_tok = n_tok;
    c.a.ldy = mm_rows;
    const double s2 = median_run(tm, mm_job, &c, o->reps < 3 ? o->reps : 3, &cs2);
    const double ops = 2.0 * (double)mm_rows * (double)kk * (double)n_tok;
    emit(o, k->isa, "matmul", ntp_type_name(t), tm->nth, ops / s2 / 1e9, ops / cs2 / 1e9, "GOP/s",
         0);
    if (o->n_expert > 0 && k->type[t].pack == NTP_PACK_NONE)
        bench_moe(o, k, tm, t, w, rb, w_rows, NTP_PACK_NONE, read_bw);
    if (k->type[t].pack != NTP_PACK_NONE) {
        /* The same matrices in the packed layout the CPU device gives them at load. */
        const int64_t pv_rows = mv_rows / NTP_PACK_ROWS * NTP_PACK_ROWS;
        const size_t gbytes = rb * NTP_PACK_ROWS;
        const int64_t n_groups = w_rows / NTP_PACK_ROWS;
        uint8_t *wp = ntp__alloc_aligned(gbytes * (size_t)n_groups, 64);
        for (int64_t g = 0; g < n_groups; g++)
            ntp__pack_group(k->type[t].pack, t, wp + g * gbytes, w + g * gbytes, rb, kk);
        c.a = (struct ntp_matmul_args){t,       wp, rb, pv_rows,         kk,   x,   xs, 1, y,
                                       pv_rows, 0,  1,  k->type[t].pack, NULL, NULL};
        const double ps = median_run(tm, mm_job, &c, o->reps, &cs);
        const double pbytes = (double)rb * (double)pv_rows;
        emit(o, k->isa, "matvec_packed", ntp_type_name(t), tm->nth, pbytes / ps / 1e9,
             pbytes / cs / 1e9, "GB/s", pbytes / ps / 1e9 / read_bw);
        c.a.n_rows = c.a.ldy = mm_rows / NTP_PACK_ROWS * NTP_PACK_ROWS;
        c.a.n_tok = n_tok;
        const double ps2 = median_run(tm, mm_job, &c, o->reps < 3 ? o->reps : 3, &cs2);
        const double pops = 2.0 * (double)c.a.n_rows * (double)kk * (double)n_tok;
        emit(o, k->isa, "matmul_packed", ntp_type_name(t), tm->nth, pops / ps2 / 1e9,
             pops / cs2 / 1e9, "GOP/s", 0);
        if (o->n_expert > 0)
            bench_moe(o, k, tm, t, wp, rb, n_groups * NTP_PACK_ROWS, k->type[t].pack, read_bw);
        ntp__free_aligned(wp);
    }
    ntp__free_aligned(w);
    ntp__free_aligned(x);
    ntp__free_aligned(y);
}

int main(int argc, char **argv)
{
    ntp_topology *topo = NULL;
    uint64_t llc = 32u << 20;
    if (ntp_topology_detect(&topo) == NTP_OK) {
        llc = ntp_topology_llc_bytes(topo);
        ntp_topology_free(topo);
    }
    struct opts o;
    const int pr = parse(argc, argv, &o, llc);
    if (pr != 0)
        return pr < 0 ? 2 : 0;
    if (!o.json)
        printf("# LLC %llu MiB; matvec matrix %zu MiB (k = %lld), matmul %zu MiB x %lld tokens, "
               "median of %d\n",
               (unsigned long long)(llc >> 20), o.mv_bytes >> 20, (long long)o.k, o.mm_bytes >> 20,
               (long long)o.mm_tok, o.reps);
    struct stream_ctx sc = {.bytes = o.mv_bytes};
    /*
     * The ceiling gets transparent huge pages (as numatp bench's STREAM does):
     * the best this memory reads. The weights keep 4 KiB pages like a loaded
     * model's, so the percentages are conservative.
     */
    sc.buf = ntp__alloc_aligned(sc.bytes, 2u << 20);
    madvise((void *)sc.buf, sc.bytes, MADV_HUGEPAGE);
    memset((void *)sc.buf, 1, sc.bytes);
    for (int ti = 0; ti < o.n_threads; ti++) {
        struct team tm;
        team_start(&tm, o.threads[ti]);
        double cbw;
        const double bw = (double)sc.bytes / median_run(&tm, stream_job, &sc, o.reps, &cbw) / 1e9;
        emit(&o, "-", "read", "-", tm.nth, bw, (double)sc.bytes / cbw / 1e9, "GB/s", 0);
        for (int ii = 0; ii < o.n_isas; ii++) {
            struct ntp_kernels k;
            if (ntp__kernels_init(&k, o.isas[ii]) != NTP_OK) {
                fprintf(stderr, "kernels: %s\n", ntp_last_error());
                continue;
            }
            for (int i = 0; i < o.n_types; i++)
                bench_type(&o, &k, &tm, o.types[i], bw);
        }
        team_stop(&tm);
    }
    if (o.json)
        printf("\n]\n");
    ntp__free_aligned((void *)sc.buf);
    return 0;
}
