/*
 * cuda_device.c - the CUDA implementation of struct ntp_device_iface:
 * device discovery, GPU memory (cudaMalloc; never managed memory, so every
 * PCIe crossing is an explicit copy), uploads, per-context state and the
 * F16 copies of weights the kernels cannot read directly. The layer
 * computation is in cuda_layer.c. Every CUDA and cuBLAS call is checked and
 * a failure comes back as NTP_E_DEVICE with the call and CUDA's message.
 */
#include "backend/cuda/cuda_int.h"

#include "core/core.h"
#include "core/half.h"
#include "kernels/quant.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shared library of the cuBLAS major version numatp was built with. */
#define NTP_STR_(x)       #x
#define NTP_STR(x)        NTP_STR_(x)
#define NTP_CUBLAS_SONAME "libcublas.so." NTP_STR(CUBLAS_VER_MAJOR)

struct ntp_cublas ntp__cublas;
static pthread_once_t cublas_once = PTHREAD_ONCE_INIT;
static char cublas_err[256]; /* why the load failed; empty when it worked */

static void cublas_load(void)
{
    void *lib = dlopen(NTP_CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    const char *missing = NULL;
    if (lib) {
        /* POSIX allows the object-to-function pointer conversion dlsym needs. */
        *(void **)&ntp__cublas.create = dlsym(lib, "cublasCreate_v2");
        *(void **)&ntp__cublas.destroy = dlsym(lib, "cublasDestroy_v2");
        *(void **)&ntp__cublas.sgemm = dlsym(lib, "cublasSgemm_v2");
        *(void **)&ntp__cublas.gemm_ex = dlsym(lib, "cublasGemmEx");
        missing = !ntp__cublas.create    ? "cublasCreate_v2"
                  : !ntp__cublas.destroy ? "cublasDestroy_v2"
                  : !ntp__cublas.sgemm   ? "cublasSgemm_v2"
                  : !ntp__cublas.gemm_ex ? "cublasGemmEx"
                                         : NULL;
    }
    if (lib == NULL || missing) {
        snprintf(cublas_err, sizeof cublas_err, "%s", lib ? missing : dlerror());
        memset(&ntp__cublas, 0, sizeof ntp__cublas);
    }
}

ntp_status ntp__cublas_open(void)
{
    pthread_once(&cublas_once, cublas_load);
    if (ntp__cublas.create)
        return NTP_OK;
    return ntp__error(NTP_E_DEVICE, "cannot load cuBLAS (%s): %s", NTP_CUBLAS_SONAME, cublas_err);
}

ntp_status ntp__cu_status(cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return NTP_OK;
    return ntp__error(NTP_E_DEVICE, "cuda: %s: %s (%s)", what, cudaGetErrorString(e),
                      cudaGetErrorName(e));
}

ntp_status ntp__cublas_status(cublasStatus_t e, const char *what)
{
    if (e == CUBLAS_STATUS_SUCCESS)
        return NTP_OK;
    return ntp__error(NTP_E_DEVICE, "cublas: %s: status %d", what, (int)e);
}

/* Why cudaGetDeviceCount found nothing, in words a user can act on. */
static const char *no_device_hint(cudaError_t e)
{
    switch (e) {
    case cudaErrorInsufficientDriver:
        return " (no NVIDIA driver, or one older than this CUDA runtime)";
    case cudaErrorNoDevice:
        return " (the driver sees no GPU)";
    default:
        return "";
    }
}

int ntp__cuda_device_count(char *why, size_t why_size)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) {
        if (why)
            snprintf(why, why_size, "numatp was built with CUDA; cudaGetDeviceCount: %s%s",
                     e != cudaSuccess ? cudaGetErrorName(e) : "no devices", no_device_hint(e));
        (void)cudaGetLastError(); /* reset the runtime's last error so later calls start clean */
        return 0;
    }
    if (why) {
        struct cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
            snprintf(why, why_size, "%s", prop.name);
        else
            snprintf(why, why_size, "CUDA device 0");
    }
    return n;
}

static struct cuda_device *cu_of(struct ntp_device *d)
{
    return d->impl;
}

/* Make the device current on the calling thread (each call may come from another thread). */
static ntp_status cu_bind(struct ntp_device *d)
{
    return ntp__cu_status(cudaSetDevice(cu_of(d)->ordinal), "cudaSetDevice");
}

static void cu_destroy(struct ntp_device *d)
{
    if (d == NULL)
        return;
    struct cuda_device *c = cu_of(d);
    if (c) {
        (void)cudaSetDevice(c->ordinal);
        for (int i = 0; i < c->n_conv; i++)
            (void)cudaFree(c->conv[i].f16.data);
        free(c->conv);
        if (c->blas)
            (void)ntp__cublas.destroy(c->blas);
        free(c);
    }
    free(d);
}

/* Native types directly; any other type with a reference dequantizer through an F16 copy. */
static bool cu_supports_type(struct ntp_device *d, enum ntp_type t)
{
    (void)d;
    if (ntp__cu_type_native(t))
        return true;
    const ntp_quant_fns *qf = ntp__quant_fns(t);
    return qf != NULL && qf->dequantize != NULL;
}

static ntp_status cu_mem_available(struct ntp_device *d, uint64_t *bytes)
{
    size_t free_b = 0, total_b = 0;
    ntp_status s = cu_bind(d);
    if (s == NTP_OK)
        s = ntp__cu_status(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    if (s == NTP_OK)
        *bytes = free_b;
    return s;
}

static ntp_status cu_buffer_alloc(struct ntp_device *d, size_t size, void **out)
{
    *out = NULL;
    ntp_status s = cu_bind(d);
    if (s != NTP_OK)
        return s;
    /* cudaMalloc aligns to 256 bytes, more than the 64 the interface promises. */
    cudaError_t e = cudaMalloc(out, size ? size : 64);
    if (e != cudaSuccess) {
        *out = NULL;
        (void)cudaGetLastError();
        return ntp__error(e == cudaErrorMemoryAllocation ? NTP_E_NOMEM : NTP_E_DEVICE,
                          "%s: cannot allocate %zu bytes of GPU memory (%s)", d->desc, size,
                          cudaGetErrorString(e));
    }
    return NTP_OK;
}

static void cu_buffer_free(struct ntp_device *d, void *buf)
{
    if (buf == NULL)
        return;
    (void)cudaSetDevice(cu_of(d)->ordinal);
    (void)cudaFree(buf);
}

static ntp_status cu_upload_2d(struct ntp_device *d, void *dst, size_t dst_stride, const void *src,
                               size_t src_stride, size_t row_bytes, size_t n_rows)
{
    ntp_status s = cu_bind(d);
    if (s != NTP_OK || n_rows == 0 || row_bytes == 0)
        return s;
    return ntp__cu_status(
        cudaMemcpy2D(dst, dst_stride, src, src_stride, row_bytes, n_rows, cudaMemcpyHostToDevice),
        "cudaMemcpy2D (upload)");
}

/* ------------------------------------------------------ F16 conversions */

/* Download t, dequantize every row with the reference, upload as F16 into out. */
ntp_status ntp__cuda_convert_f16(struct ntp_device *d, const struct ntp_dev_tensor *t,
                                 struct ntp_dev_tensor *out)
{
    const int64_t k = t->ne[0], rows = t->ne[1];
    size_t row_bytes;
    ntp_status s = ntp_type_row_size(t->type, k, &row_bytes);
    if (s != NTP_OK)
        return s;
    uint8_t *raw = malloc(row_bytes * (size_t)rows);
    float *f = malloc((size_t)k * sizeof(float));
    ntp_f16 *h = malloc((size_t)k * (size_t)rows * sizeof(ntp_f16));
    void *dev_buf = NULL;
    if (raw == NULL || f == NULL || h == NULL)
        s = ntp__error(NTP_E_NOMEM, "%s: no host memory to convert a %s tensor", d->desc,
                       ntp_type_name(t->type));
    if (s == NTP_OK)
        s = ntp__cu_status(cudaMemcpy2D(raw, row_bytes, t->data, t->row_stride, row_bytes,
                                        (size_t)rows, cudaMemcpyDeviceToHost),
                           "cudaMemcpy2D (download for F16 conversion)");
    for (int64_t r = 0; r < rows && s == NTP_OK; r++) {
        s = ntp__dequantize_row(t->type, raw + (size_t)r * row_bytes, f, k);
        for (int64_t i = 0; i < k && s == NTP_OK; i++)
            h[r * k + i] = ntp__f32_to_f16(f[i]);
    }
    const size_t bytes = (size_t)k * (size_t)rows * sizeof(ntp_f16);
    if (s == NTP_OK)
        s = cu_buffer_alloc(d, bytes, &dev_buf);
    if (s == NTP_OK)
        s = ntp__cu_status(cudaMemcpy(dev_buf, h, bytes, cudaMemcpyHostToDevice),
                           "cudaMemcpy (F16 copy)");
    if (s == NTP_OK)
        *out = (struct ntp_dev_tensor){
            NTP_TYPE_F16, {k, rows}, (size_t)k * sizeof(ntp_f16), dev_buf, false};
    else
        cu_buffer_free(d, dev_buf);
    free(raw);
    free(f);
    free(h);
    return s;
}

/* t as the kernels will read it: itself, or its F16 copy (made once per device). */
static ntp_status resolve(struct ntp_device *d, const struct ntp_dev_tensor *t, const char *what,
                          struct ntp_dev_tensor *out)
{
    struct cuda_device *c = cu_of(d);
    *out = *t;
    if (t->data != NULL && t->layout != NTP_PACK_NONE)
        return ntp__error(NTP_E_INTERNAL,
                          "%s: %s is in a CPU device's packed layout, which the CUDA kernels "
                          "do not read",
                          d->desc, what);
    if (t->data == NULL || ntp__cu_type_native(t->type))
        return NTP_OK;
    for (int i = 0; i < c->n_conv; i++)
        if (c->conv[i].src == t->data) {
            *out = c->conv[i].f16;
            return NTP_OK;
        }
    if (c->n_conv == c->cap_conv) {
        int cap = c->cap_conv ? 2 * c->cap_conv : 16;
        struct cuda_conv *p = realloc(c->conv, (size_t)cap * sizeof *p);
        if (p == NULL)
            return ntp__error(NTP_E_NOMEM, "%s: out of memory", d->desc);
        c->conv = p;
        c->cap_conv = cap;
    }
    ntp_status s = ntp__cuda_convert_f16(d, t, out);
    if (s != NTP_OK)
        return s;
    c->conv[c->n_conv++] = (struct cuda_conv){t->data, *out};
    ntp__log(NTP_LOG_INFO,
             "%s: %s is %s, which the CUDA kernels do not read directly: dequantized to an F16 "
             "copy (%.1f MiB)",
             d->desc, what, ntp_type_name(t->type),
             (double)out->row_stride * (double)out->ne[1] / (1024.0 * 1024.0));
    return NTP_OK;
}

/* The state's view of the weights, with F16 copies in place of non-native types. */
static ntp_status resolve_weights(struct ntp_device *d, struct cuda_state *s)
{
    const struct ntp_shard *sh = s->p.shard;
    const size_t n = (size_t)sh->n_layer * NTP_T_COUNT;
    s->wl = calloc(n + 1, sizeof *s->wl);
    if (s->wl == NULL)
        return ntp__error(NTP_E_NOMEM, "%s: out of memory", d->desc);
    ntp_status st = NTP_OK;
    char what[96];
    for (size_t i = 0; i < n && st == NTP_OK; i++) {
        const int id = (int)(i % NTP_T_COUNT);
        if (ntp__tensor_name(id, (int)(sh->layer0 + (int64_t)(i / NTP_T_COUNT)), what,
                             sizeof what) != NTP_OK)
            snprintf(what, sizeof what, "a tensor");
        st = resolve(d, &s->p.w->layer[i], what, &s->wl[i]);
    }
    for (int id = 0; id < NTP_T_COUNT && st == NTP_OK; id++) {
        if (ntp__tensor_name(id, 0, what, sizeof what) != NTP_OK)
            snprintf(what, sizeof what, "a tensor");
        st = resolve(d, &s->p.w->global[id], what, &s->wg[id]);
    }
    return st;
}

/* ----------------------------------------------------------------- state */

static void cu_state_free(struct ntp_device *d, struct ntp_dev_state *ds)
{
    struct cuda_state *s = (struct cuda_state *)ds;
    if (s == NULL)
        return;
    void *bufs[] = {s->k_cache, s->v_cache, s->x,       s->xn,   s->q,        s->kx,
                    s->vx,      s->att,     s->part,    s->gate, s->up,       s->rope_cs,
                    s->wtile,   s->logits,  s->tok_dev, s->xh,   s->attn_part};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        cu_buffer_free(d, bufs[i]);
    free(s->cs_host);
    free(s->tok_host);
    free(s->wl);
    free(s);
}

/* Widen *best to the tile one matrix needs and *min_row to its row width. */
static void tile_need(const struct ntp_dev_tensor *t, int64_t *best, int64_t *min_row)
{
    if (t->data == NULL || t->ne[1] <= 1)
        return;
    const int64_t all = t->ne[0] * t->ne[1];
    *best = all > *best ? all : *best;
    *min_row = t->ne[0] > *min_row ? t->ne[0] : *min_row;
}

/* Floats of the dequantized weight tile for cuBLAS: up to 16 Mi floats, at least one row. */
static int64_t wtile_size(const struct cuda_state *s)
{
    const int64_t cap = (int64_t)16 << 20;
    int64_t best = 0, min_row = 0;
    for (int64_t i = 0; i < s->p.shard->n_layer * NTP_T_COUNT; i++)
        tile_need(&s->wl[i], &best, &min_row);
    for (int id = 0; id < NTP_T_COUNT; id++)
        tile_need(&s->wg[id], &best, &min_row);
    best = best < cap ? best : cap;
    return best > min_row ? best : min_row;
}

/* Allocate bytes of GPU memory into *p, counting the first failure in *st. */
static void st_alloc(struct ntp_device *d, size_t bytes, void *p, ntp_status *st)
{
    void **slot = p;
    if (*st == NTP_OK)
        *st = cu_buffer_alloc(d, bytes, slot);
}

static ntp_status alloc_buffers(struct ntp_device *d, struct cuda_state *s)
{
    const struct ntp_dev_state_params *p = &s->p;
    const size_t nb = (size_t)p->n_batch, fl = sizeof(float);
    const size_t kv_el = p->kv_type == NTP_TYPE_F16 ? 2 : 4;
    const size_t cells = (size_t)p->shard->n_layer * (size_t)p->n_seq * (size_t)p->n_ctx;
    ntp_status st = NTP_OK;
    st_alloc(d, cells * (size_t)(s->nkv * s->hdk) * kv_el, &s->k_cache, &st);
    st_alloc(d, cells * (size_t)(s->nkv * s->hdv) * kv_el, &s->v_cache, &st);
    st_alloc(d, nb * (size_t)s->n_embd * fl, &s->x, &st);
    st_alloc(d, nb * (size_t)s->n_embd * fl, &s->xn, &st);
    st_alloc(d, nb * (size_t)(s->nh * s->hdk) * fl, &s->q, &st);
    st_alloc(d, nb * (size_t)(s->nkv * s->hdk) * fl, &s->kx, &st);
    st_alloc(d, nb * (size_t)(s->nkv * s->hdv) * fl, &s->vx, &st);
    st_alloc(d, nb * (size_t)(s->nh * s->hdv) * fl, &s->att, &st);
    st_alloc(d, nb * (size_t)s->n_embd * fl, &s->part, &st);
    st_alloc(d, nb * (size_t)s->nff * fl, &s->gate, &st);
    st_alloc(d, nb * (size_t)s->nff * fl, &s->up, &st);
    st_alloc(d, (size_t)s->rope_tables * nb * (size_t)s->n_rot * fl, &s->rope_cs, &st);
    st_alloc(d, 2 * nb * sizeof(int32_t), &s->tok_dev, &st);
    /* Two blocks per multiprocessor; fewer (heads x tokens) split their positions. */
    s->attn_blocks = 2 * (int64_t)cu_of(d)->n_sm;
    st_alloc(d, (size_t)(2 * s->attn_blocks * (s->hdv + 2)) * fl, &s->attn_part, &st);
    if (p->n_batch > NTP_CU_MATVEC_MAX_TOK) {
        s->wtile_floats = wtile_size(s);
        st_alloc(d, (size_t)s->wtile_floats * fl, &s->wtile, &st);
        int64_t k = s->n_embd > s->nh * s->hdv ? s->n_embd : s->nh * s->hdv;
        k = s->nff > k ? s->nff : k;
        st_alloc(d, nb * (size_t)k * 2, &s->xh, &st);
    }
    const int64_t nv = p->shard->n_vocab;
    if (nv > 0 && s->wg[NTP_T_OUTPUT].data) {
        /* Logits go back in chunks of rows so that a large vocabulary needs no huge buffer. */
        const int64_t rows = ((int64_t)16 << 20) / nv;
        s->logit_rows = rows < 1 ? 1 : rows > p->n_batch ? p->n_batch : rows;
        st_alloc(d, (size_t)s->logit_rows * (size_t)nv * fl, &s->logits, &st);
    }
    if (st == NTP_OK) {
        s->cs_host = malloc((size_t)s->rope_tables * nb * (size_t)(s->n_rot ? s->n_rot : 1) * fl);
        s->tok_host = malloc(2 * nb * sizeof(int32_t));
        if (s->cs_host == NULL || s->tok_host == NULL)
            st = ntp__error(NTP_E_NOMEM, "%s: out of memory", d->desc);
    }
    return st;
}

static ntp_status check_state_params(struct ntp_device *d, const struct ntp_dev_state_params *p)
{
    const struct ntp_hparams *hp = &p->cfg->hp;
    if (p->kv_type != NTP_TYPE_F16 && p->kv_type != NTP_TYPE_F32)
        return ntp__error(NTP_E_UNSUPPORTED,
                          "%s: the CUDA device keeps an F16 or F32 cache (KV cache type %s)",
                          d->desc, ntp_type_name(p->kv_type));
    if (p->comm.comm != NULL)
        return ntp__error(NTP_E_UNSUPPORTED,
                          "%s: a GPU cannot join a CPU tensor-parallel group; give it a layer "
                          "range of its own (--gpu-layers)",
                          d->desc);
    if (ntp__cfg_moe(p->cfg) && p->shard->n_layer > 0 && !p->shard->attn_only)
        return ntp__error(NTP_E_UNSUPPORTED,
                          "%s: -ngl: the GPU cannot run mixture-of-experts layers yet (--cpu-moe "
                          "keeps them on the CPU devices)",
                          d->desc);
    if (hp->head_dim_k > NTP_CU_MAX_HEAD_DIM || hp->head_dim_v > NTP_CU_MAX_HEAD_DIM)
        return ntp__error(NTP_E_UNSUPPORTED, "%s: head width %lld/%lld (the kernels take up to %d)",
                          d->desc, (long long)hp->head_dim_k, (long long)hp->head_dim_v,
                          NTP_CU_MAX_HEAD_DIM);
    return NTP_OK;
}

static ntp_status cu_state_new(struct ntp_device *d, const struct ntp_dev_state_params *p,
                               struct ntp_dev_state **out)
{
    *out = NULL;
    ntp_status st = check_state_params(d, p);
    if (st == NTP_OK)
        st = cu_bind(d);
    if (st != NTP_OK)
        return st;
    struct cuda_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ntp__error(NTP_E_NOMEM, "%s: cannot allocate a context state", d->desc);
    s->dev = d;
    s->p = *p;
    s->p.n_seq = p->n_seq > 1 ? p->n_seq : 1;
    s->n_embd = p->cfg->hp.n_embd;
    s->hdk = p->cfg->hp.head_dim_k;
    s->hdv = p->cfg->hp.head_dim_v;
    s->nh = p->shard->n_head;
    s->nkv = p->shard->n_head_kv;
    s->nff = p->shard->n_ff;
    s->n_rot = p->cfg->rope.n_rot;
    s->rope_tables = p->cfg->is_swa ? 2 : 1;
    st = resolve_weights(d, s);
    if (st == NTP_OK)
        st = alloc_buffers(d, s);
    if (st != NTP_OK) {
        cu_state_free(d, (struct ntp_dev_state *)s);
        return st;
    }
    *out = (struct ntp_dev_state *)s;
    return NTP_OK;
}

/* Positions past the current one are never read, so nothing needs wiping. */
static void cu_state_clear(struct ntp_device *d, struct ntp_dev_state *s)
{
    (void)d;
    (void)s;
}

static ntp_status cu_hidden_write(struct ntp_device *d, struct ntp_dev_state *ds, const float *x,
                                  int64_t n_tok)
{
    struct cuda_state *s = (struct cuda_state *)ds;
    ntp_status st = cu_bind(d);
    if (st != NTP_OK || n_tok == 0)
        return st;
    return ntp__cu_status(cudaMemcpy(s->x, x, (size_t)n_tok * (size_t)s->n_embd * sizeof(float),
                                     cudaMemcpyHostToDevice),
                          "cudaMemcpy (hidden state to the GPU)");
}

static ntp_status cu_hidden_read(struct ntp_device *d, struct ntp_dev_state *ds, float *x,
                                 int64_t n_tok)
{
    struct cuda_state *s = (struct cuda_state *)ds;
    ntp_status st = cu_bind(d);
    if (st != NTP_OK || n_tok == 0)
        return st;
    return ntp__cu_status(cudaMemcpy(x, s->x, (size_t)n_tok * (size_t)s->n_embd * sizeof(float),
                                     cudaMemcpyDeviceToHost),
                          "cudaMemcpy (hidden state from the GPU)");
}

static ntp_status cu_run_layers(struct ntp_device *d, struct ntp_dev_state *ds,
                                const struct ntp_dev_run *run)
{
    ntp_status st = cu_bind(d);
    return st != NTP_OK ? st : ntp__cuda_run_layers((struct cuda_state *)ds, run);
}

static ntp_status cu_run_output(struct ntp_device *d, struct ntp_dev_state *ds,
                                const struct ntp_dev_output_run *run)
{
    ntp_status st = cu_bind(d);
    return st != NTP_OK ? st : ntp__cuda_run_output((struct cuda_state *)ds, run);
}

static const struct ntp_device_iface cuda_iface = {
    .name = "cuda",
    .destroy = cu_destroy,
    .supports_type = cu_supports_type,
    .mem_available = cu_mem_available,
    .buffer_alloc = cu_buffer_alloc,
    .buffer_free = cu_buffer_free,
    .upload_2d = cu_upload_2d,
    .state_new = cu_state_new,
    .state_free = cu_state_free,
    .state_clear = cu_state_clear,
    .hidden_write = cu_hidden_write,
    .hidden_read = cu_hidden_read,
    .run_layers = cu_run_layers,
    .run_output = cu_run_output,
};

ntp_status ntp__cuda_device_new(const struct ntp_cuda_device_params *p, struct ntp_device **out)
{
    *out = NULL;
    char why[256];
    const int n = ntp__cuda_device_count(why, sizeof why);
    if (n == 0)
        return ntp__error(NTP_E_DEVICE, "no CUDA device found (%s)", why);
    if (p->ordinal < 0 || p->ordinal >= n)
        return ntp__error(NTP_E_INVALID_ARG, "CUDA device %d does not exist (%d found)", p->ordinal,
                          n);
    struct ntp_device *d = calloc(1, sizeof *d);
    struct cuda_device *c = calloc(1, sizeof *c);
    if (d == NULL || c == NULL) {
        free(d);
        free(c);
        return ntp__error(NTP_E_NOMEM, "cuda device: out of memory");
    }
    c->ordinal = p->ordinal;
    d->iface = &cuda_iface;
    d->impl = c;
    struct cudaDeviceProp prop;
    ntp_status s = ntp__cu_status(cudaSetDevice(c->ordinal), "cudaSetDevice");
    if (s == NTP_OK)
        s = ntp__cu_status(cudaGetDeviceProperties(&prop, c->ordinal), "cudaGetDeviceProperties");
    if (s == NTP_OK)
        s = ntp__cublas_open();
    if (s == NTP_OK)
        s = ntp__cublas_status(ntp__cublas.create(&c->blas), "cublasCreate");
    if (s != NTP_OK) {
        cu_destroy(d);
        return s;
    }
    c->n_sm = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
    snprintf(d->desc, sizeof d->desc, "cuda%d %.32s, %.1f GiB, sm_%d%d", c->ordinal, prop.name,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), prop.major, prop.minor);
    *out = d;
    return NTP_OK;
}

/* ------------------------------------------------------------ public API */

bool ntp_cuda_compiled(void)
{
    return true;
}

int32_t ntp_cuda_device_count(void)
{
    return ntp__cuda_device_count(NULL, 0);
}

ntp_status ntp_cuda_device_desc(int32_t i, char *buf, size_t size)
{
    ntp__error_clear();
    if (buf == NULL || size == 0)
        return ntp__error(NTP_E_INVALID_ARG, "ntp_cuda_device_desc: no buffer");
    char why[200];
    const int n = ntp__cuda_device_count(why, sizeof why);
    snprintf(buf, size, "%s", why);
    if (n == 0)
        return ntp__error(NTP_E_DEVICE, "no CUDA device found (%s)", why);
    if (i < 0 || i >= n)
        return ntp__error(NTP_E_INVALID_ARG, "CUDA device %d does not exist (%d found)", (int)i, n);
    struct cudaDeviceProp prop;
    size_t free_b = 0, total_b = 0;
    ntp_status s = ntp__cu_status(cudaGetDeviceProperties(&prop, i), "cudaGetDeviceProperties");
    if (s == NTP_OK)
        s = ntp__cu_status(cudaSetDevice(i), "cudaSetDevice");
    if (s == NTP_OK)
        s = ntp__cu_status(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    if (s != NTP_OK)
        return s;
    const double gib = 1024.0 * 1024.0 * 1024.0;
    snprintf(buf, size, "cuda%d: %s, sm_%d%d, %.1f GiB, %.1f GiB free", (int)i, prop.name,
             prop.major, prop.minor, (double)total_b / gib, (double)free_b / gib);
    return NTP_OK;
}
