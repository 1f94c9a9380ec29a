/*
 * cpu_moe.h - the mixture-of-experts FFN of the CPU device
 * (docs/architecture.md "Mixture of experts"): routing, the grouped expert
 * products and the weighted sum, on the device's share of every expert.
 * Internal to src/backend/cpu/.
 */
#ifndef NTP_BACKEND_CPU_MOE_H
#define NTP_BACKEND_CPU_MOE_H

#include "backend/cpu/cpu_int.h"

struct ntp_place_count;

/* The buffers of struct cpu_moe, allocated, touched, placed and freed as one list. */
#define NTP_CPU_MOE_BUFS 15

/*
 * A context's buffers for the expert FFN, in the device's memory. A batch
 * of n_tok tokens routes each token to n_used experts; the n_tok * n_used
 * (token, expert) pairs are "slots", ordered by expert, so the tokens of
 * one expert are consecutive rows of the activations and outputs.
 */
struct cpu_moe {
    int64_t n_expert, n_used;    /* experts, experts per token */
    int64_t n_ff;                /* this device's slice of one expert's width */
    int64_t e0, n_local;         /* the experts it holds: [e0, e0 + n_local) */
    float *logits;               /* [n_batch][n_expert] router logits */
    void *act_r;                 /* [n_batch][row_r] the normed rows in the router's act_type */
    int32_t *sel;                /* [n_batch][n_used] each token's experts, best first */
    float *w;                    /* [n_batch][n_used] their weights (sum 1) */
    int64_t *slot_of;            /* [n_batch][n_used] the slot of each (token, choice); -1
                                    where the expert is another device's */
    int64_t *tok_of;             /* [n_batch * n_used] the token of each slot */
    int64_t *cnt;                /* [n_expert] tokens routed to each expert */
    struct ntp_moe_group *group; /* [n_expert] the experts with tokens held here (indexes
                                    of the device's experts), n_group of them */
    int64_t n_group;
    void *act_g, *act_u; /* [slots][row_g], [slots][row_u] the slots' rows for gate and up */
    float *hg, *hu;      /* [slots][n_ff] gate and up outputs; hg becomes act(gate) * up */
    void *act_d;         /* [slots][row_d] act(gate) * up in down's act_type */
    float *yd;           /* [slots][n_embd] each slot's partial expert output */
    float *route;        /* [n_batch][2 * n_expert] routing's probabilities and scores */
    size_t row_r, row_g, row_u, row_d; /* bytes per row of act_r, act_g, act_u (0 when no
                                          layer's up needs its own), act_d */
    void *buf[NTP_CPU_MOE_BUFS];       /* the buffers above, in their order (owned) */
};

/*
 * The buffers of a context of the device c whose shard p describes, placed
 * on c's node and first touched by its team; *out NULL for a dense model.
 */
ntp_status ntp__cpu_moe_new(const struct cpu_device *c, const struct ntp_dev_state_params *p,
                            struct cpu_moe **out);
/* Free; NULL is a no-op. */
void ntp__cpu_moe_free(struct cpu_moe *m);
/* Where the buffers' pages are, added to *pc (--verify-numa). */
ntp_status ntp__cpu_moe_place(const struct cpu_moe *m, int node, struct ntp_place_count *pc);

/*
 * The FFN half of block il after its norm, run by every thread (ith of nth)
 * of the device's team: s->xn holds the normed rows (each thread wrote its
 * own tokens; this meets the team first), and s->part receives this
 * device's partial sum of every token's experts, ready for the block's
 * all-reduce once the team has met again. Returns the first failure this
 * thread saw (it still keeps to every barrier).
 */
ntp_status ntp__cpu_moe_ffn(struct ntp_dev_state *s, const struct ntp_kernels *k,
                            struct ntp_team *team, int ith, int nth, int64_t il, int64_t n_tok);

#endif /* NTP_BACKEND_CPU_MOE_H */
