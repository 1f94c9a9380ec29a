/*
 * model.h - the loaded model: its description (architecture, hyper-parameters,
 * RoPE), its tokenizer, the host copy of the token embedding, and for every
 * device the shard of the weights it holds. Internal; the public handle is
 * ntp_model in include/ntp.h.
 */
#ifndef NTP_MODEL_MODEL_H
#define NTP_MODEL_MODEL_H

#include "ntp.h"

#include "backend/device.h"
#include "comm/world.h"
#include "model/arch.h"
#include "model/plan.h"

#include <pthread.h>

/* Most devices a model can span (NUMA nodes plus GPUs). */
#define NTP_MAX_DEVICES 16

struct ntp_tokenizer;

/* One device of a model and what it holds. */
struct ntp_model_device {
    struct ntp_device *dev;   /* the device (owner: the model) */
    struct ntp_shard shard;   /* its part of the model (the shard plan) */
    struct ntp_dev_weights w; /* its weights; w.layer is malloc'd (owner: the model) */
    void *buf;                /* device memory holding every weight of w (owner: the model) */
    uint64_t bytes;           /* size of buf */
    int n_threads;            /* threads of its team (slices of the all-reduce) */
};

struct ntp_model {
    const struct ntp_arch *arch; /* architecture table entry (static) */
    struct ntp_model_cfg cfg;    /* sizes, RoPE, options: what devices need to compute */
    float *rope_freqs;           /* [n_rot / 2] llama3 frequency factors, or NULL (host) */
    bool *swa_layers;            /* [n_layer] sliding-window layers (cfg.is_swa), or NULL */
    struct ntp_tokenizer *tok;   /* tokenizer (owner: the model) */
    ntp_model_params params;     /* as given to ntp_model_load */
    enum ntp_type embd_type;     /* type of token_embd */
    uint8_t *embd;               /* [n_vocab][embd_row bytes] token embedding (host, aligned) */
    size_t embd_row;             /* bytes per embedding row */
    int n_dev;                   /* devices in use here (under mpirun the group has more) */
    struct ntp_model_device dev[NTP_MAX_DEVICES];
    char device_desc[1024];   /* ntp_model_device_desc() text */
    ntp_topology *topo;       /* the machine (owned; the devices' threads are bound with it) */
    struct ntp_plan plan;     /* the shard plan of the devices (of every process's, under
                                 mpirun: this one's are plan.shard[world_dev0 ..]) */
    int world_dev0;           /* this process's first device in the plan (mpirun) */
    int pp, pp_stage;         /* pipeline stages over the processes, this one's (1, 0: none) */
    char layout_desc[320];    /* which devices were made and why (the layout's description) */
    pthread_mutex_t run_lock; /* held while a context runs the devices: each device has one
                                 team, so runs of two contexts take turns (exec/context.c) */

    /* Under mpirun, each process's output-head columns: logits are gathered. */
    int world_vocab0[NTP_WORLD_MAX];
    int world_nvocab[NTP_WORLD_MAX];
};

/*
 * Dequantize the embedding row of token tok into x[0, n_embd), times
 * cfg.embd_scale. tok must be in [0, n_vocab) (callers check).
 */
void ntp__model_embed(const struct ntp_model *m, int32_t tok, float *x);

/*
 * The model's description from the file (describe.c): read_cfg sets m->arch
 * and m->cfg (and the sliding-window layers); rope_freqs reads llama3's
 * per-frequency factors when the file has them; file_features is the
 * architecture's NTP_FEAT_* bits plus those of the optional tensors the
 * file has (biases, an untied head, latent attention's variants).
 */
ntp_status ntp__model_read_cfg(const ntp_gguf *g, struct ntp_model *m);
ntp_status ntp__model_rope_freqs(struct ntp_model *m, const ntp_gguf *g);
unsigned ntp__model_file_features(const struct ntp_model *m, const ntp_gguf *g);

/*
 * Hybrid offload (hybrid.c), called by the loader. place: once the CPU
 * devices have their shards, put a GPU device holding the first
 * params.n_gpu_layers blocks in front of them (and the head, with
 * params.gpu_output); a no-op when n_gpu_layers is 0. check_fits: NTP_E_NOMEM
 * saying how many layers fit when the GPU's share does not. host_dev: the
 * device whose memory check also counts the host's token embedding (-1: none).
 */
ntp_status ntp__hybrid_place(struct ntp_model *m);
ntp_status ntp__hybrid_check_fits(struct ntp_model *m, const ntp_gguf *g);
int ntp__hybrid_host_dev(const struct ntp_model *m);

#endif /* NTP_MODEL_MODEL_H */
