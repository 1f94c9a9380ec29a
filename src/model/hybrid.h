/*
 * hybrid.h - what `numatp plan` asks about hybrid GPU + CPU offload
 * (--gpu-layers, --gpu-output, --cpu-moe) without loading a model. The loader's side
 * (placing the GPU device, checking that its share fits) is declared in
 * model/model.h; both live in hybrid.c.
 */
#ifndef NTP_MODEL_HYBRID_H
#define NTP_MODEL_HYBRID_H

#include "ntp.h"

#include <stdbool.h>
#include <stdint.h>

struct ntp_hybrid_plan {
    int64_t n_layer;    /* blocks of the model */
    int64_t ngl;        /* blocks on the GPU: [0, ngl) (the request, at most n_layer) */
    bool head;          /* the output head on the GPU too */
    bool attn_only;     /* --cpu-moe on a mixture of experts: the GPU holds the blocks'
                           attention halves, the CPU devices their FFNs */
    uint64_t gpu_bytes; /* GPU memory the GPU's weights take (F16 copies of types the
                           kernels cannot read included) */
    uint64_t gpu_free;  /* free memory of GPU 0 (0: no GPU) */
    uint64_t gpu_keep;  /* part of it kept for the KV cache and scratch */
    int64_t fit;        /* blocks that fit on GPU 0 (ngl when all do); -1: no GPU to ask */
    char gpu_desc[320]; /* GPU 0's description, or why there is none */
};

/* Plan the GPU's share of the model at path for ngl blocks (and the head; --cpu-moe). */
ntp_status ntp__hybrid_plan_file(const char *path, int32_t ngl, bool gpu_output, bool cpu_moe,
                                 struct ntp_hybrid_plan *out);

#endif /* NTP_MODEL_HYBRID_H */
