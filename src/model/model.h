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
#include "model/arch.h"

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
};

struct ntp_model {
    const struct ntp_arch *arch; /* architecture table entry (static) */
    struct ntp_model_cfg cfg;    /* sizes, RoPE, options: what devices need to compute */
    float *rope_freqs;           /* [n_rot / 2] llama3 frequency factors, or NULL (host) */
    struct ntp_tokenizer *tok;   /* tokenizer (owner: the model) */
    ntp_model_params params;     /* as given to ntp_model_load */
    enum ntp_type embd_type;     /* type of token_embd */
    uint8_t *embd;               /* [n_vocab][embd_row bytes] token embedding (host, aligned) */
    size_t embd_row;             /* bytes per embedding row */
    int n_dev;                   /* devices in use (1 until tensor parallelism lands) */
    struct ntp_model_device dev[NTP_MAX_DEVICES];
    char device_desc[256]; /* ntp_model_device_desc() text */
};

/*
 * Dequantize the embedding row of token tok into x[0, n_embd).
 * tok must be in [0, n_vocab) (callers check).
 */
void ntp__model_embed(const struct ntp_model *m, int32_t tok, float *x);

#endif /* NTP_MODEL_MODEL_H */
