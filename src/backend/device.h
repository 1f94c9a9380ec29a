/*
 * device.h - the device interface: what the forward pass (src/exec/) asks of
 * a device that holds a shard of a model, whatever the device is (a NUMA
 * node's CPU cores, a CUDA GPU). Device kinds are listed in registry.h.
 *
 * A device is a const struct ntp_device_iface of function pointers plus a
 * context. The model and exec code call only these functions and never
 * branch on the kind of device. Optional members may be NULL; each says so.
 *
 * Tensor parallelism (docs/architecture.md "The two cuts"): every device holds a shard
 * of each weight, described by struct ntp_shard: its query heads and KV
 * heads (column shards of Q/K/V, row shard of O), its slice of the FFN width
 * (column shards of gate/up, row shard of down) and its slice of the vocabulary
 * (column shard of the output head). Inside run_layers a device meets the
 * others exactly twice per layer, in the all-reduce of the O and down
 * partial sums, through its group's collective (comm/comm.h); with one
 * device there is none. What a backend needs of the model is in this header
 * and model/config.h, so a new backend needs nothing else from exec/ or model/.
 *
 * exec/ checks the arguments of every run (positions, token counts, layer
 * and row ranges) before it calls a device; devices do not check them again.
 */
#ifndef NTP_BACKEND_DEVICE_H
#define NTP_BACKEND_DEVICE_H

#include "ntp.h"

#include "comm/comm.h"
#include "kernels/kernels.h"
#include "model/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------- model description */

/* The part of the model one device holds (the shard plan for that device). */
struct ntp_shard {
    int64_t layer0, n_layer;     /* transformer blocks [layer0, layer0 + n_layer) on this device */
    int64_t head0, n_head;       /* query heads [head0, head0 + n_head) */
    int64_t head_kv0, n_head_kv; /* KV heads [head_kv0, head_kv0 + n_head_kv); they hold every
                                    query head's group */
    int64_t ff0, n_ff;           /* FFN features [ff0, ff0 + n_ff); of a mixture of
                                    experts: of each expert's width it holds */
    int64_t expert0, n_expert;   /* a mixture of experts' experts [expert0, expert0 +
                                    n_expert): all of them when split by features, a
                                    share of whole ones when split by experts */
    int64_t dff0, n_dff;         /* a dense FFN's features: ff0, n_ff again in a dense model;
                                    in a mixture, those of its leading dense blocks
                                    (deepseek2), always cut by features */
    int64_t sff0, n_sff;         /* the shared experts' features (deepseek2), cut likewise */
    int64_t vocab0, n_vocab;     /* output-head rows [vocab0, vocab0 + n_vocab); 0 rows: no head */
    /*
     * Which halves of its blocks it holds (--cpu-moe; config.h,
     * ntp__tensor_attn_half): both by default. ffn_only: the first ffn_only
     * blocks of the shard only their FFN half (another device runs their
     * attention, and this one keeps no KV cache for them); attn_only: every
     * block only its attention half (another device runs the FFNs).
     */
    int64_t ffn_only;
    bool attn_only;
};

/* Whether the shard holds block il's attention half. */
static inline bool ntp__shard_attn(const struct ntp_shard *sh, int64_t il)
{
    return il >= sh->layer0 + sh->ffn_only && il < sh->layer0 + sh->n_layer;
}

/* Whether the shard holds block il's FFN half. */
static inline bool ntp__shard_ffn(const struct ntp_shard *sh, int64_t il)
{
    return !sh->attn_only && il >= sh->layer0 && il < sh->layer0 + sh->n_layer;
}

/*
 * One weight shard in device memory. data is a device address (host memory
 * for the CPU device); row r of the shard starts at data + r * row_stride.
 * For row-parallel shards (O, down) ne[0] is the shard's input width.
 */
struct ntp_dev_tensor {
    enum ntp_type type; /* element type as in the file */
    int64_t ne[2];      /* shard shape, GGUF order (ne[0] contiguous); ne[1] = 1 for vectors */
    size_t row_stride;  /* bytes between rows */
    void *data;         /* device address; NULL when the model lacks the tensor */
    enum ntp_pack_layout layout; /* NTP_PACK_NONE: the file's rows; else interleaved
                                    (kernels/packed.h) for the device's kernels, which
                                    told pack_matrix they want it */
};

/*
 * The weights of one device, indexed by the architecture table's tensor ids
 * (src/model/arch.h). Per-layer tensors of layer il are layer[il - layer0];
 * per-model tensors (output_norm, output) are in global. Owner: the model,
 * which allocated the memory through the device.
 */
struct ntp_dev_weights {
    struct ntp_dev_tensor *layer;              /* [shard.n_layer][NTP_T_COUNT] */
    struct ntp_dev_tensor global[NTP_T_COUNT]; /* OUTPUT_NORM and OUTPUT (OUTPUT may alias
                                                  a copy of TOKEN_EMBD when tied) */
};

/* ----------------------------------------------------------------- device */

/* Per-context state on a device (KV cache, scratch); defined by each backend. */
struct ntp_dev_state;
struct ntp_device;
struct ntp_place_count; /* src/numa/place.h */

/* What a device's per-context state must hold. */
struct ntp_dev_state_params {
    const struct ntp_model_cfg *cfg; /* model description (owner: model) */
    const struct ntp_shard *shard;   /* what this device holds (owner: model) */
    const struct ntp_dev_weights *w; /* this device's weights (owner: model) */
    struct ntp_comm_member comm;     /* the tensor-parallel group's collective and this
                                        device's rank in it; comm.comm NULL: alone */
    int64_t n_ctx;                   /* positions in the KV cache, per sequence */
    int64_t n_seq;                   /* sequences the KV cache holds (0: one) */
    int64_t n_batch;                 /* most tokens per run_layers/run_output call */
    enum ntp_type kv_type;           /* F16, F32, Q8_0 or Q4_0 (the CPU device; CUDA: F16, F32) */
};

/*
 * One run of the transformer blocks over a batch of tokens. Without seq the
 * batch is consecutive tokens of sequence 0 at pos .. pos + n_tok - 1. With
 * seq (only in a state of several sequences) token t belongs to sequence
 * seq[t] at position tpos[t]; a sequence's tokens in a batch are consecutive
 * positions in batch order, and each sees its own sequence's cache only.
 */
struct ntp_dev_run {
    int64_t pos;         /* position of the first token (without seq) */
    int64_t n_tok;       /* tokens in the batch, 1 .. n_batch */
    int64_t layer0;      /* first block to run (inside the shard) */
    int64_t layer1;      /* one past the last block */
    const int32_t *seq;  /* [n_tok] each token's sequence, or NULL; host memory that stays
                            valid until the run is waited for */
    const int32_t *tpos; /* [n_tok] each token's position (with seq) */
};

/* Token t's sequence and position in a run. */
static inline int32_t ntp__run_seq(const struct ntp_dev_run *r, int64_t t)
{
    return r->seq ? r->seq[t] : 0;
}

static inline int64_t ntp__run_pos(const struct ntp_dev_run *r, int64_t t)
{
    return r->seq ? r->tpos[t] : r->pos + t;
}

/* One run of the output head: final norm, then logits of the device's vocabulary slice. */
struct ntp_dev_output_run {
    int64_t tok0;  /* first batch row (of the hidden state) to compute logits for */
    int64_t n_tok; /* rows tok0 .. tok0 + n_tok - 1 */
    float *logits; /* host memory: row t at logits + t * ld, this device writes
                      columns [shard.vocab0, shard.vocab0 + shard.n_vocab) */
    int64_t ld;    /* floats between logit rows (the full n_vocab) */
};

struct ntp_device_iface {
    const char *name; /* "cpu", "cuda" */

    /* Free the device and everything it still holds. Required. */
    void (*destroy)(struct ntp_device *d);
    /* Whether weights of type t can be computed with on this device. Required. */
    bool (*supports_type)(struct ntp_device *d, enum ntp_type t);
    /*
     * Bytes of memory free for new buffers (the CPU device: MemAvailable, or
     * its memory_limit when one is set). Optional: NULL means unknown, and
     * the loader then skips its fit check.
     */
    ntp_status (*mem_available)(struct ntp_device *d, uint64_t *bytes);

    /* Device memory of size bytes, 64-byte aligned. Required. */
    ntp_status (*buffer_alloc)(struct ntp_device *d, size_t size, void **out);
    /* Free a buffer_alloc result; NULL is a no-op. Required. */
    void (*buffer_free)(struct ntp_device *d, void *buf);
    /*
     * Copy n_rows rows of row_bytes from host src (rows src_stride apart) to
     * device dst (rows dst_stride apart): a whole tensor, a row range or a
     * column slice of every row. Required.
     */
    ntp_status (*upload_2d)(struct ntp_device *d, void *dst, size_t dst_stride, const void *src,
                            size_t src_stride, size_t row_bytes, size_t n_rows);

    /*
     * Rearrange a weight matrix just uploaded to t->data, in place, into the
     * layout the device's kernels multiply fastest, and set t->layout when it
     * did. The bytes stay where they are (same size, same pages). Optional:
     * NULL keeps the file's layout.
     */
    ntp_status (*pack_matrix)(struct ntp_device *d, struct ntp_dev_tensor *t);

    /* State for one context (KV cache, scratch). Required. */
    ntp_status (*state_new)(struct ntp_device *d, const struct ntp_dev_state_params *p,
                            struct ntp_dev_state **out);
    /* Free a state; NULL is a no-op. Required. */
    void (*state_free)(struct ntp_device *d, struct ntp_dev_state *s);
    /* Forget the KV cache (positions start over). Optional: NULL means nothing to clear. */
    void (*state_clear)(struct ntp_device *d, struct ntp_dev_state *s);

    /* Set the batch's hidden state, n_tok rows of n_embd floats from host memory. Required. */
    ntp_status (*hidden_write)(struct ntp_device *d, struct ntp_dev_state *s, const float *x,
                               int64_t n_tok);
    /* Read the batch's hidden state back to host memory. Required. */
    ntp_status (*hidden_read)(struct ntp_device *d, struct ntp_dev_state *s, float *x,
                              int64_t n_tok);
    /* Run blocks [layer0, layer1) on the batch, updating the hidden state. Required. */
    ntp_status (*run_layers)(struct ntp_device *d, struct ntp_dev_state *s,
                             const struct ntp_dev_run *run);
    /*
     * Final norm and output head for some rows of the hidden state. Optional:
     * NULL on a device that never holds the head (the model then keeps it on
     * another device).
     */
    ntp_status (*run_output)(struct ntp_device *d, struct ntp_dev_state *s,
                             const struct ntp_dev_output_run *run);

    /*
     * Asynchronous forms of run_layers and run_output: start checks the
     * arguments, hands the work to the device's own threads and returns;
     * run_wait blocks until it is done and returns its status. The devices of
     * a tensor-parallel group must run at the same time (they meet in their
     * all-reduces), so a device joins a group of more than one only when it
     * has these. Optional (all three or none): NULL means the device only
     * runs synchronously, alone in its pipeline stage.
     */
    ntp_status (*run_layers_start)(struct ntp_device *d, struct ntp_dev_state *s,
                                   const struct ntp_dev_run *run);
    ntp_status (*run_output_start)(struct ntp_device *d, struct ntp_dev_state *s,
                                   const struct ntp_dev_output_run *run);
    ntp_status (*run_wait)(struct ntp_device *d, struct ntp_dev_state *s);

    /*
     * Where the pages of a buffer_alloc result (buffer_place) or of a
     * state's buffers (state_place) are, added to *c (--verify-numa).
     * Optional: NULL on devices with their own memory (a GPU).
     */
    ntp_status (*buffer_place)(struct ntp_device *d, const void *buf, size_t size,
                               struct ntp_place_count *c);
    ntp_status (*state_place)(struct ntp_device *d, struct ntp_dev_state *s,
                              struct ntp_place_count *c);
    /* OS index of the NUMA node holding the device's memory (-1: none). Optional. */
    int (*node)(struct ntp_device *d);
};

/* A device: its functions and its context. */
struct ntp_device {
    const struct ntp_device_iface *iface; /* never NULL */
    void *impl;                           /* backend context (owner: the device) */
    char desc[64];                        /* "cpu node 0, 2 threads, ref kernels", for logs */
};

#endif /* NTP_BACKEND_DEVICE_H */
