/*
 * tile.h - the register tiles shared by the three matmul engines (legacy.c,
 * kquant.c, float.c). Each engine has one tile function over R rows x T
 * tokens (R, T compile-time constants after inlining): a weight block is
 * decoded once per row and used for T tokens, an activation block is loaded
 * once per token and used for R rows. Decode (one token) is the same tile
 * with T = 1. NTP_X86_FORMAT instantiates the shapes of one format and
 * ntp__x86_drive walks a thread's slice with them.
 */
#ifndef NTP_KERNELS_X86_TILE_H
#define NTP_KERNELS_X86_TILE_H

#include "kernels/kernels.h"

#include <stddef.h>
#include <stdint.h>

#define MR NTP_X86_MR /* rows of a full tile */
#define MT NTP_X86_MT /* tokens of a full tile */

/* One tile: rows [0, R) of w (ws bytes apart) times tokens [0, T) of x, into y (ldy). */
typedef void (*ntp__x86_tile_fn)(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs,
                                 int64_t k, float *y, int64_t ldy);

/* The four tile shapes of one format: full, rows only, tokens only, single. */
struct ntp__x86_tiles {
    ntp__x86_tile_fn rt, r1, t1, one;
    int64_t block; /* elements per block; k must be a multiple */
};

/* One product over this thread's rows: full tiles first, then the leftover rows and tokens. */
static inline ntp_status ntp__x86_drive(const struct ntp_matmul_args *a,
                                        const struct ntp__x86_tiles *tl)
{
    if (a->k % tl->block != 0)
        return NTP_E_UNSUPPORTED;
    int64_t r0, r1;
    ntp__slice(a->n_rows, a->ith, a->nth, &r0, &r1);
    const uint8_t *w = a->w, *x = a->x;
    const size_t ws = a->w_stride, xs = a->x_stride;
    int64_t r = r0;
    for (; r + MR <= r1; r += MR) {
        int64_t t = 0;
        for (; t + MT <= a->n_tok; t += MT)
            tl->rt(w + r * ws, ws, x + t * xs, xs, a->k, a->y + t * a->ldy + r, a->ldy);
        for (; t < a->n_tok; t++)
            tl->r1(w + r * ws, ws, x + t * xs, xs, a->k, a->y + t * a->ldy + r, a->ldy);
    }
    for (; r < r1; r++) {
        int64_t t = 0;
        for (; t + MT <= a->n_tok; t += MT)
            tl->t1(w + r * ws, ws, x + t * xs, xs, a->k, a->y + t * a->ldy + r, a->ldy);
        for (; t < a->n_tok; t++)
            tl->one(w + r * ws, ws, x + t * xs, xs, a->k, a->y + t * a->ldy + r, a->ldy);
    }
    return NTP_OK;
}

/* ===================================================== instantiations */

/*
 * The four tile shapes, the matmul and the dot product of one format of an
 * engine: engine(fmt, R, T, ...) with R and T constants, so that each shape
 * compiles to its own fully unrolled loop.
 */
#define NTP_X86_FORMAT(name, engine, fmt, blk)                                                     \
    static void name##_rt(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t k,     \
                          float *y, int64_t ldy)                                                   \
    {                                                                                              \
        engine(fmt, MR, MT, w, ws, x, xs, k, y, ldy);                                              \
    }                                                                                              \
    static void name##_r1(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t k,     \
                          float *y, int64_t ldy)                                                   \
    {                                                                                              \
        engine(fmt, MR, 1, w, ws, x, xs, k, y, ldy);                                               \
    }                                                                                              \
    static void name##_t1(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t k,     \
                          float *y, int64_t ldy)                                                   \
    {                                                                                              \
        engine(fmt, 1, MT, w, ws, x, xs, k, y, ldy);                                               \
    }                                                                                              \
    static void name##_one(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t k,    \
                           float *y, int64_t ldy)                                                  \
    {                                                                                              \
        engine(fmt, 1, 1, w, ws, x, xs, k, y, ldy);                                                \
    }                                                                                              \
    static ntp_status name##_matmul(const struct ntp_matmul_args *a)                               \
    {                                                                                              \
        static const struct ntp__x86_tiles tl = {name##_rt, name##_r1, name##_t1, name##_one,      \
                                                 blk};                                             \
        return ntp__x86_drive(a, &tl);                                                             \
    }                                                                                              \
    static float name##_dot(int64_t k, const void *w, const void *x)                               \
    {                                                                                              \
        float y;                                                                                   \
        engine(fmt, 1, 1, w, 0, x, 0, k, &y, 1);                                                   \
        return y;                                                                                  \
    }

#endif /* NTP_KERNELS_X86_TILE_H */
