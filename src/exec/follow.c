/*
 * follow.c - rank 0 leads, the other ranks repeat its context calls
 * (follow.h). An order is a fixed header, broadcast from rank 0, and for a
 * decode the batch's token ids and sequences after it.
 */
#include "exec/follow.h"

#include "comm/world.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

/* Contexts one leader may have open at once. */
#define MAX_CONTEXTS 16

enum op { OP_NEW = 1, OP_DECODE, OP_SEQ_RESET, OP_RESET, OP_FREE, OP_END };

struct order {
    int32_t op, ctx;
    int32_t n;            /* OP_DECODE: tokens; OP_SEQ_RESET: the sequence */
    int32_t flags;        /* OP_DECODE: 1 all logits, 2 with sequences */
    ntp_context_params p; /* OP_NEW */
};

static bool leading;
static bool used[MAX_CONTEXTS];

void ntp__follow_lead(bool on)
{
    leading = on;
}

bool ntp__follow_leading(void)
{
    return leading;
}

/* The order, then its payload (a[0, na) and b[0, nb)), to every rank. */
static ntp_status tell(struct order *o, const void *a, size_t na, const void *b, size_t nb)
{
    ntp_status s = ntp__world_bcast(o, sizeof *o, 0);
    if (s == NTP_OK && na)
        s = ntp__world_bcast((void *)a, na, 0); /* rank 0 only reads its buffer */
    if (s == NTP_OK && nb)
        s = ntp__world_bcast((void *)b, nb, 0);
    return s;
}

ntp_status ntp__lead_new(const ntp_context_params *p, int32_t *id)
{
    *id = -1;
    for (int32_t i = 0; i < MAX_CONTEXTS && *id < 0; i++)
        if (!used[i])
            *id = i;
    if (*id < 0)
        return ntp__error(NTP_E_OVERFLOW, "under mpirun: at most %d contexts at once",
                          MAX_CONTEXTS);
    used[*id] = true;
    struct order o = {.op = OP_NEW, .ctx = *id, .p = *p};
    return tell(&o, NULL, 0, NULL, 0);
}

ntp_status ntp__lead_decode(int32_t id, const int32_t *tokens, const int32_t *seq, int32_t n,
                            bool all_logits)
{
    struct order o = {.op = OP_DECODE, .ctx = id, .n = n, .flags = all_logits | (seq ? 2 : 0)};
    const size_t bytes = n > 0 && tokens ? (size_t)n * sizeof(int32_t) : 0;
    return tell(&o, tokens, bytes, seq, seq ? bytes : 0);
}

ntp_status ntp__lead_seq_reset(int32_t id, int32_t seq)
{
    struct order o = {.op = OP_SEQ_RESET, .ctx = id, .n = seq};
    return tell(&o, NULL, 0, NULL, 0);
}

ntp_status ntp__lead_reset(int32_t id)
{
    struct order o = {.op = OP_RESET, .ctx = id};
    return tell(&o, NULL, 0, NULL, 0);
}

ntp_status ntp__lead_free(int32_t id)
{
    used[id] = false;
    struct order o = {.op = OP_FREE, .ctx = id};
    return tell(&o, NULL, 0, NULL, 0);
}

ntp_status ntp__lead_end(void)
{
    struct order o = {.op = OP_END};
    return tell(&o, NULL, 0, NULL, 0);
}

/* Receive a decode's token ids and sequences, then run it on c. */
static ntp_status follow_decode(ntp_context *c, const struct order *o, int32_t **buf, int32_t *cap)
{
    const int32_t n = o->n > 0 ? o->n : 0;
    if (2 * n > *cap) {
        int32_t *p = realloc(*buf, (size_t)(2 * n) * sizeof *p);
        if (p == NULL)
            return ntp__error(NTP_E_NOMEM, "following rank 0: out of memory");
        *buf = p;
        *cap = 2 * n;
    }
    const size_t bytes = (size_t)n * sizeof(int32_t);
    ntp_status s = ntp__world_bcast(*buf, bytes, 0);
    if (s == NTP_OK && (o->flags & 2))
        s = ntp__world_bcast(*buf + n, bytes, 0);
    if (s == NTP_OK)
        s = ntp_decode_seqs(c, *buf, (o->flags & 2) ? *buf + n : NULL, o->n, (o->flags & 1) != 0);
    /* The leader's call failed its checks of the arguments alike; go on as it does. */
    return s == NTP_E_INVALID_ARG || s == NTP_E_OVERFLOW ? NTP_OK : s;
}

ntp_status ntp__follow(ntp_model *m)
{
    ntp_context *ctx[MAX_CONTEXTS] = {NULL};
    int32_t *buf = NULL, cap = 0;
    ntp_status s = NTP_OK;
    for (bool end = false; !end && s == NTP_OK;) {
        struct order o;
        if ((s = ntp__world_bcast(&o, sizeof o, 0)) != NTP_OK)
            break;
        if (o.op != OP_END &&
            (o.ctx < 0 || o.ctx >= MAX_CONTEXTS || (o.op != OP_NEW && ctx[o.ctx] == NULL))) {
            s = ntp__error(NTP_E_INTERNAL, "following rank 0: order %d for context %d", o.op,
                           o.ctx);
            break;
        }
        switch (o.op) {
        case OP_NEW:
            s = ntp_context_new(m, o.p, &ctx[o.ctx]);
            break;
        case OP_DECODE:
            s = follow_decode(ctx[o.ctx], &o, &buf, &cap);
            break;
        case OP_SEQ_RESET:
            ntp_context_seq_reset(ctx[o.ctx], o.n);
            break;
        case OP_RESET:
            ntp_context_reset(ctx[o.ctx]);
            break;
        case OP_FREE:
            ntp_context_free(ctx[o.ctx]);
            ctx[o.ctx] = NULL;
            break;
        case OP_END:
            end = true;
            break;
        default:
            s = ntp__error(NTP_E_INTERNAL, "following rank 0: unknown order %d", o.op);
        }
    }
    for (int i = 0; i < MAX_CONTEXTS; i++)
        ntp_context_free(ctx[i]);
    free(buf);
    return s;
}
