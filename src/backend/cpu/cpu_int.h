/*
 * cpu_int.h - what the CPU device's files share: the device and per-context
 * state structs. Internal to src/backend/cpu/.
 */
#ifndef NTP_BACKEND_CPU_INT_H
#define NTP_BACKEND_CPU_INT_H

#include "backend/cpu/cpu_device.h"

struct cpu_device {
    struct ntp_cpu_device_params p; /* as created */
    struct ntp_kernels k;           /* kernel table chosen for this device */
};

/*
 * Per-context state. Every buffer is owned by the state and lives in the
 * device's memory; [a][b] means a rows of b elements. Widths are the shard's:
 * nh = shard.n_head, nkv = shard.n_head_kv, nff = shard.n_ff.
 */
struct ntp_dev_state {
    struct ntp_device *dev;        /* the device that made it */
    struct ntp_dev_state_params p; /* as given (pointers owned by the model) */
    int64_t n_embd, hdk, hdv;      /* hidden size and head widths (from cfg) */
    size_t kv_row;                 /* bytes of one position of K (or V) in one layer */
    uint8_t *k_cache;              /* [n_layer][n_ctx][nkv * hdk] in kv_type */
    uint8_t *v_cache;              /* [n_layer][n_ctx][nkv * hdv] in kv_type */
    float *x;                      /* [n_batch][n_embd] residual stream (the hidden state) */
    float *xn;                     /* [n_batch][n_embd] normed input of a projection */
    float *q;                      /* [n_batch][nh * hdk] */
    float *kx;                     /* [n_batch][nkv * hdk] new keys */
    float *vx;                     /* [n_batch][nkv * hdv] new values */
    float *att;                    /* [n_batch][nh * hdv] attention output (input of O) */
    float *part;                   /* [n_batch][n_embd] partial sum of O or down */
    float *gate;                   /* [n_batch][nff] */
    float *up;                     /* [n_batch][nff] */
    float *rope_cs;                /* [n_batch][n_rot] cos/sin of each token's position */
    void *act;                     /* [n_batch][act_row] activations quantized for a matmul */
    size_t act_row;                /* bytes per row of act (largest need over the weights) */
    float *thr;                    /* [n_threads][thr_floats] per-thread scratch */
    int64_t thr_floats;            /* floats per thread: attention scores (n_ctx) */
    int n_threads;                 /* team size the scratch was sized for */
};

/* Team entry points of cpu_layer.c (each runs one parallel region). */
ntp_status ntp__cpu_run_layers(struct ntp_dev_state *s, const struct ntp_dev_run *run);
ntp_status ntp__cpu_run_output(struct ntp_dev_state *s, const struct ntp_dev_output_run *run);

#endif /* NTP_BACKEND_CPU_INT_H */
