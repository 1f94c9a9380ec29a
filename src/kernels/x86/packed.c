/*
 * packed.c - the products with packed weights (NTP_PACK_R16, packed.h):
 * Q4_0, Q5_0 and Q8_0 against Q8_0 activations, Q4_1 and Q5_1 against Q8_1,
 * Q2_K .. Q6_K against Q8_K. Built into the AVX-512 library only (16
 * rows are the 16 int32 lanes of a 512-bit vector); its fill is the only one
 * that asks for the layout.
 *
 * Every tile, decode and prefill alike, prefetches the weight stream
 * NTP_X86_PF bytes ahead: a tile of 8 tokens consumes a group's bytes 8
 * times slower than decode, and still ran at 1/3 of its in-cache speed on a
 * matrix larger than the LLC without it (bench/RESULTS.md). The k-quants'
 * prefill from 32 tokens on makes a super-block's codes once for many
 * tiles instead (pkp_drive).
 */
#include "kernels/x86/packed_int.h"

#include <stdalign.h>
#include <stddef.h>

_Static_assert(offsetof(ntp_pack_q8_0, qs) == offsetof(ntp_pack_q4_0, qs),
               "Q4_0 and Q8_0 groups keep their codes at the same offset");

/*
 * Products with packed legacy weights (packed.h): lane r of a 512-bit
 * vector is row r of a 16-row group, so a block of 16 rows times one token
 * is 8 vpdpbusd (4 codes of every row times 4 activation codes broadcast),
 * one int->float convert and one FMA (two with a minimum), and no
 * horizontal sum anywhere.
 *
 * Per activation block the tile needs the token's scale, the zero-point
 * correction -z * (sum of its codes) (Q4_0, Q5_0, Q8_0) or Q8_1's scaled
 * sum s (Q4_1, Q5_1: the minimum's term m * s); pk_act_prep tabulates them
 * for a tile of tokens and a chunk of blocks, once per call, on the stack
 * (24 KiB).
 */
#define PK_TT 8 /* tokens per tile: float accumulators in registers */

struct pk_act {
    int32_t corr[PK_TT][PK_KC]; /* -z * sum of the block's codes */
    float dx[PK_TT][PK_KC];     /* the block's scale */
    float sx[PK_TT][PK_KC];     /* Q8_1: d * sum of the codes */
};

static void pk_act_prep(enum lg_fmt f, const uint8_t *x, size_t xs, int T, int64_t b0, int64_t kc,
                        struct pk_act *pa)
{
    const __m256i one = _mm256_set1_epi8(1);
    for (int t = 0; t < T; t++)
        for (int64_t b = 0; b < kc; b++) {
            const uint8_t *xb = x + t * xs + (size_t)(b0 + b) * lg_xbytes(f);
            if (lg_zero(f) != 0) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(xb + lg_xcodes(f)));
                pa->corr[t][b] =
                    -lg_zero(f) *
                    ntp__x86_hsum_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), one, q));
            }
            pa->dx[t][b] = ntp__x86_h2f(xb);
            if (lg_q81(f))
                pa->sx[t][b] = ntp__x86_h2f(xb + LG_XSUM);
        }
}

/* Offsets in a packed legacy block of the codes, the fifth bits and the minima (0: none). */

/* Dword e of the activation block's codes, broadcast to the 16 lanes. */
NTP_INLINE __m512i pk_x4(const uint8_t *xq, int e)
{
    int32_t v;
    memcpy(&v, xq + 4 * e, sizeof v);
    return _mm512_set1_epi32(v);
}

/*
 * T tokens times one group over kc blocks: y[t][0, 16) = the sums (when
 * add, y's sums of the blocks before, each block's added to them in turn:
 * one chain of FMAs over the whole row, however k is cut into chunks, so
 * that amx.c may cut it elsewhere and keep the bits). g is the group's first packed block of the
 * chunk, x the tile's first token at block b0 of the chunk. u[e] holds elements 4e..4e+3 of every
 * row (for Q4_0: the low nibbles of code vector e, or the high nibbles of vector e - 4), so it
 * pairs with dword e of the activation codes.
 */
NTP_INLINE void pk_tile(enum lg_fmt f, int T, const uint8_t *g, int64_t kc, const uint8_t *x,
                        size_t xs, const struct pk_act *pa, float *y, int64_t ldy, bool add)
{
    const size_t pb = NTP_PACK_ROWS * lg_wbytes(f), codes = pk_qs_off(f);
    const size_t xb = lg_xbytes(f), xc = lg_xcodes(f);
    const int nq = f == LG_Q8_0 ? 8 : 4; /* 64-byte code vectors per packed block */
    const bool q5 = f == LG_Q5_0 || f == LG_Q5_1;
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512 acc[PK_TT];
    for (int t = 0; t < T; t++)
        acc[t] = add ? _mm512_loadu_ps(y + t * ldy) : _mm512_setzero_ps();
    for (int64_t b = 0; b < kc; b++) {
        const uint8_t *p = g + (size_t)b * pb;
        for (size_t o = 0; NTP_X86_PF > 0 && o < pb; o += 64)
            _mm_prefetch((const char *)p + NTP_X86_PF + o, _MM_HINT_T0);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        __m512i u[8];
        const __m512i qh = q5 ? _mm512_loadu_si512((const void *)(p + pk_qh_off(f))) : m4;
        for (int c = 0; c < nq; c++) {
            const __m512i v = _mm512_loadu_si512((const void *)(p + codes + 64 * c));
            if (q5) {
                u[c] = pk_code5(v, qh, c, false);
                u[c + 4] = pk_code5(v, qh, 4 + c, true);
            } else if (f != LG_Q8_0) {
                u[c] = _mm512_and_si512(v, m4);
                u[c + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            } else {
                u[c] = v;
            }
        }
        const __m512 mw =
            pk_m_off(f) ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + pk_m_off(f))))
                        : dw;
        for (int t = 0; t < T; t++) {
            const uint8_t *xq = x + t * xs + (size_t)b * xb + xc;
            /* Two dependency chains when few tokens leave the units idle. */
            __m512i s0 = lg_zero(f) ? _mm512_set1_epi32(pa->corr[t][b]) : _mm512_setzero_si512();
            __m512i s1 = _mm512_setzero_si512();
            for (int e = 0; e < 8; e += 2) {
                s0 = _mm512_dpbusd_epi32(s0, u[e], pk_x4(xq, e));
                if (T <= 2)
                    s1 = _mm512_dpbusd_epi32(s1, u[e + 1], pk_x4(xq, e + 1));
                else
                    s0 = _mm512_dpbusd_epi32(s0, u[e + 1], pk_x4(xq, e + 1));
            }
            if (T <= 2)
                s0 = _mm512_add_epi32(s0, s1);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0),
                                     _mm512_mul_ps(dw, _mm512_set1_ps(pa->dx[t][b])), acc[t]);
            if (lg_q81(f))
                acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(pa->sx[t][b]), acc[t]);
        }
    }
    for (int t = 0; t < T; t++)
        _mm512_storeu_ps(y + t * ldy, acc[t]);
}

/*
 * One function per format and token count T, with T a constant in it (the
 * accumulators stay in registers), called through a table indexed by T - 1.
 * Separate functions keep each one small: all eight inlined into one driver
 * took GCC 46 s to compile, and 245 s under ASan.
 */
#define PK_TILE_ARGS                                                                               \
    const uint8_t *g, int64_t kc, const uint8_t *x, size_t xs, const struct pk_act *pa, float *y,  \
        int64_t ldy, bool add
typedef void pk_tile_fn(PK_TILE_ARGS);
#define PK_TILE_FN(f, n)                                                                           \
    static __attribute__((noinline)) void pk_tile_##f##_##n(PK_TILE_ARGS)                          \
    {                                                                                              \
        pk_tile(f, n, g, kc, x, xs, pa, y, ldy, add);                                              \
    }
/* m(f, T) for T = 1 .. 8, and the table of the functions pre##f##_T. */
#define PK_EACH_T(m, f) m(f, 1) m(f, 2) m(f, 3) m(f, 4) m(f, 5) m(f, 6) m(f, 7) m(f, 8)
#define PK_TABLE(pre, f)                                                                           \
    {                                                                                              \
        pre##f##_1, pre##f##_2, pre##f##_3, pre##f##_4, pre##f##_5, pre##f##_6, pre##f##_7,        \
            pre##f##_8                                                                             \
    }
#define PK_TILES(f)                                                                                \
    PK_EACH_T(PK_TILE_FN, f)                                                                       \
    static pk_tile_fn *const pk_tiles_##f[PK_TT] = PK_TABLE(pk_tile_, f);
PK_TILES(LG_Q4_0)
PK_TILES(LG_Q4_1)
PK_TILES(LG_Q5_0)
PK_TILES(LG_Q5_1)
PK_TILES(LG_Q8_0)

/*
 * Token tiles, then chunks of k (tabulated activations), then this thread's
 * groups. A device's column shard may be empty (k = 0): y is zero then.
 */
NTP_INLINE ntp_status pk_drive(enum lg_fmt f, pk_tile_fn *const tiles[PK_TT],
                               const struct ntp_matmul_args *a)
{
    if (a->k % NTP_QK != 0 || a->n_rows % NTP_PACK_ROWS != 0)
        return NTP_E_UNSUPPORTED;
    const int64_t nb = a->k / NTP_QK;
    const size_t pb = NTP_PACK_ROWS * lg_wbytes(f), gbytes = (size_t)nb * pb;
    int64_t g0, g1;
    ntp__slice(a->n_rows / NTP_PACK_ROWS, a->ith, a->nth, &g0, &g1);
    const uint8_t *w = a->w, *x = a->x;
    struct pk_act pa;
    for (int64_t t0 = 0; t0 < a->n_tok; t0 += PK_TT) {
        const int T = (int)(a->n_tok - t0 < PK_TT ? a->n_tok - t0 : PK_TT);
        for (int64_t b0 = 0; b0 == 0 || b0 < nb; b0 += PK_KC) { /* k = 0 stores zeros */
            const int64_t kc = nb - b0 < PK_KC ? nb - b0 : PK_KC;
            pk_act_prep(f, x + t0 * a->x_stride, a->x_stride, T, b0, kc, &pa);
            for (int64_t g = g0; g < g1; g++)
                tiles[T - 1](w + g * gbytes + (size_t)b0 * pb, kc,
                             x + t0 * a->x_stride + (size_t)b0 * lg_xbytes(f), a->x_stride, &pa,
                             a->y + t0 * a->ldy + g * NTP_PACK_ROWS, a->ldy, b0 > 0);
        }
    }
    return NTP_OK;
}

static ntp_status q4_0_matmul_packed(const struct ntp_matmul_args *a)
{
    return pk_drive(LG_Q4_0, pk_tiles_LG_Q4_0, a);
}

static ntp_status q4_1_matmul_packed(const struct ntp_matmul_args *a)
{
    return pk_drive(LG_Q4_1, pk_tiles_LG_Q4_1, a);
}

static ntp_status q5_0_matmul_packed(const struct ntp_matmul_args *a)
{
    return pk_drive(LG_Q5_0, pk_tiles_LG_Q5_0, a);
}

static ntp_status q5_1_matmul_packed(const struct ntp_matmul_args *a)
{
    return pk_drive(LG_Q5_1, pk_tiles_LG_Q5_1, a);
}

static ntp_status q8_0_matmul_packed(const struct ntp_matmul_args *a)
{
    return pk_drive(LG_Q8_0, pk_tiles_LG_Q8_0, a);
}

/*
 * Packed Q4_K and Q6_K (packed.h) against Q8_K activations. A code vector
 * holds elements 4e..4e+3 of the 16 rows as unsigned bytes; vpdpbusd with
 * the broadcast activation dword sums a sub-block of every row in int32,
 * and the sub-block's scale is applied in float (its per-row scale times d,
 * tabulated once per super-block and shared by the tile's tokens), except
 * in Q4_K and Q5_K, whose 6-bit scales multiply the sums in int32 (amx.c
 * gives the same bits). The offset terms (Q4_K's mins, Q6_K's -32) pair
 * each sub-block's coefficient with Q8_K's bsums in vpdpwssd. Each token's
 * super-block sum (sacc, or isum) takes the Q8_K block's scale once, at the
 * end of the super-block, not once per sub-block.
 */

_Static_assert(offsetof(ntp_pack_q5_K, qs) == offsetof(ntp_pack_q4_K, qs) &&
                   offsetof(ntp_pack_q5_K, sc) == offsetof(ntp_pack_q4_K, sc) &&
                   offsetof(ntp_pack_q5_K, dmin) == offsetof(ntp_pack_q4_K, dmin),
               "a Q5_K group begins as a Q4_K group");

/*
 * Q4_K and Q5_K (q5): sub-block 2c + half of the group p times T tokens,
 * added to isum in int32 times its row's 6-bit scale s (Q4_K's high nibbles
 * are used in place: their sums are 16 times the true ones, shifted back,
 * which is exact), so that a super-block's sum is exact and the same as
 * amx.c's (a prefill there gives the bits of a decode here). One sub-block
 * at a time keeps T integer accumulators, not 2T, so that eight tokens stay
 * in registers (both sub-blocks of a code vector at once spilled: 1.3x
 * slower at 8 tokens). Q5_K's code vector (c, i) begins at Q4_K's offset
 * (asserted).
 */
NTP_INLINE void pkk_q4k_half(bool q5, int T, const uint8_t *p, int c, int half, __m512i s,
                             const uint8_t *xs0, size_t xs, __m512i isum[PK_TT])
{
    const ntp_pack_q5_K *pk = (const ntp_pack_q5_K *)p;
    __m512i a[PK_TT], b = _mm512_setzero_si512();
    for (int t = 0; t < T; t++)
        a[t] = _mm512_setzero_si512();
    for (int i = 0; i < 8; i++) {
        const __m512i v = _mm512_loadu_si512((const void *)pk->qs[c][i]);
        __m512i u;
        if (q5)
            u = pk_code5(v, _mm512_loadu_si512((const void *)pk->qh[i]), 2 * c + half, half);
        else
            u = _mm512_and_si512(v, _mm512_set1_epi8((char)(half ? 0xf0 : 0x0f)));
        for (int t = 0; t < T; t++) {
            const __m512i x4 = pkk_x4(xs0 + t * xs, PKK_QS, 16 * c + 8 * half + i);
            if (T == 1 && i % 2) /* one token alone gets two chains */
                b = _mm512_dpbusd_epi32(b, u, x4);
            else
                a[t] = _mm512_dpbusd_epi32(a[t], u, x4);
        }
    }
    if (T == 1)
        a[0] = _mm512_add_epi32(a[0], b);
    for (int t = 0; t < T; t++)
        isum[t] = _mm512_add_epi32(
            isum[t], _mm512_mullo_epi32(half && !q5 ? _mm512_srai_epi32(a[t], 4) : a[t], s));
}

/*
 * Q4_K and Q5_K, T tokens times one group over nsb super-blocks: y[t][0,
 * 16) = the sums. Code vector (c, i) holds dword 16c + i of sub-block 2c in
 * its low nibbles and dword 16c + 8 + i of sub-block 2c + 1 in its high
 * ones; Q5_K's fifth bits are bits 2c and 2c + 1 of qh[i] (pk_code5). Per
 * super-block and token, the float operations are amx.c's: d x sum -
 * dmin x mins, times the Q8_K block's scale.
 */
NTP_INLINE void pkk_q4k_tile(bool q5, int T, const uint8_t *g, int64_t nsb, const uint8_t *x,
                             size_t xs, float *y, int64_t ldy)
{
    const size_t pb = q5 ? sizeof(ntp_pack_q5_K) : sizeof(ntp_pack_q4_K);
    __m512 acc[PK_TT];
    __m512i isum[PK_TT];
    for (int t = 0; t < T; t++)
        acc[t] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        for (int t = 0; t < T; t++)
            isum[t] = _mm512_setzero_si512();
        const uint8_t *p = g + (size_t)sb * pb, *xs0 = x + (size_t)sb * PKK_XB;
        const ntp_pack_q4_K *pk = (const ntp_pack_q4_K *)p;
        for (size_t o = 0; NTP_X86_PF > 0 && o < pb; o += 64)
            _mm_prefetch((const char *)p + NTP_X86_PF + o, _MM_HINT_T0);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        __m128i sc[8], mn[8];
        pkk_scales_q4k(pk, sc, mn);
        for (int c = 0; c < 4; c++) {
            const __m512i s_lo = _mm512_cvtepu8_epi32(sc[2 * c]);
            const __m512i s_hi = _mm512_cvtepu8_epi32(sc[2 * c + 1]);
            switch (c) { /* c a constant in every call (the fifth bits' shifts are immediates) */
#define PKK_Q4K(cc)                                                                                \
    case cc:                                                                                       \
        pkk_q4k_half(q5, T, p, cc, 0, s_lo, xs0, xs, isum);                                        \
        pkk_q4k_half(q5, T, p, cc, 1, s_hi, xs0, xs, isum);                                        \
        break;
                PKK_Q4K(0)
                PKK_Q4K(1)
                PKK_Q4K(2)
                PKK_Q4K(3)
#undef PKK_Q4K
            }
        }
        /* minus dmin * sum over sub-blocks of min * (sum of the codes) */
        __m512i m2[8];
        for (int j = 0; j < 8; j++)
            m2[j] = pkk_dup(mn[j]);
        const __m512 dmw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)pk->dmin));
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = xs0 + t * xs;
            __m512i im = _mm512_setzero_si512();
            for (int j = 0; j < 8; j++)
                im = _mm512_dpwssd_epi32(im, m2[j], pkk_x4(xb, PKK_BSUMS, j));
            const __m512 sum = _mm512_mul_ps(_mm512_cvtepi32_ps(isum[t]), dw);
            acc[t] = _mm512_fmadd_ps(_mm512_fnmadd_ps(_mm512_cvtepi32_ps(im), dmw, sum), pkk_dx(xb),
                                     acc[t]);
        }
    }
    for (int t = 0; t < T; t++)
        _mm512_storeu_ps(y + t * ldy, acc[t]);
}

/*
 * The k-quants of 16-element sub-blocks (Q2_K, Q3_K, Q6_K), as
 * pkk_q4k_tile: sub-block s's four code vectors (dwords 4s..4s+3 of the
 * Q8_K block) give each token's sums a, which are multiplied by the rows'
 * scales and added in int32, so that a super-block's sum is exact and the
 * same as amx.c's. Per super-block and token, the float operations are
 * amx.c's too.
 */

/* isum[t] += (a[t] >> sh) * sc, for the codes of T tokens' sums a held times 2^sh (exact). */
NTP_INLINE void pkk_sub_add(int T, const __m512i c[4], const uint8_t *xs0, size_t xs, int s, int sh,
                            __m512i sc, __m512i isum[PK_TT])
{
    for (int t = 0; t < T; t++) {
        const uint8_t *xb = xs0 + t * xs;
        __m512i a = _mm512_setzero_si512();
        for (int v = 0; v < 4; v++)
            a = _mm512_dpbusd_epi32(a, c[v], pkk_x4(xb, PKK_QS, 4 * s + v));
        if (sh > 0)
            a = _mm512_srai_epi32(a, (unsigned)sh);
        isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(a, sc));
    }
}

/*
 * Q6_K: the -32 offset of the codes is -32 x sum over s of scale s x bsum
 * s, per token once per super-block: the sum of (code - 32) x scale x
 * activation, which amx.c's planes hold.
 */
NTP_INLINE void pkk_q6k_tile(int T, const uint8_t *g, int64_t nsb, const uint8_t *x, size_t xs,
                             float *y, int64_t ldy)
{
    const size_t pb = sizeof(ntp_pack_q6_K);
    __m512 acc[PK_TT];
    __m512i isum[PK_TT];
    for (int t = 0; t < T; t++)
        acc[t] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        for (int t = 0; t < T; t++)
            isum[t] = _mm512_setzero_si512();
        const uint8_t *p = g + (size_t)sb * pb;
        const ntp_pack_q6_K *pk = (const ntp_pack_q6_K *)p;
        const uint8_t *xs0 = x + (size_t)sb * PKK_XB;
        for (size_t o = 0; NTP_X86_PF > 0 && o < pb; o += 64)
            _mm_prefetch((const char *)p + NTP_X86_PF + o, _MM_HINT_T0);
        __m128i sc[16];
        for (int s = 0; s < 16; s++) {
            sc[s] = _mm_loadu_si128((const __m128i *)pk->sc[s]);
            __m512i c[4];
            pkk_q6k_codes(pk, s, c);
            pkk_sub_add(T, c, xs0, xs, s, 0, _mm512_cvtepi8_epi32(sc[s]), isum);
        }
        __m512i sp[8];
        pkk_pairs(sc, sp);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)pk->d));
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = xs0 + t * xs;
            const __m512i tot =
                _mm512_sub_epi32(isum[t], _mm512_slli_epi32(pkk_bsum_dot(sp, xb), 5));
            acc[t] =
                _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(tot), dw), pkk_dx(xb), acc[t]);
        }
    }
    for (int t = 0; t < T; t++)
        _mm512_storeu_ps(y + t * ldy, acc[t]);
}

/* isum[t] += the sums of sub-block s's codes c, scaled already, times T tokens. */
NTP_INLINE void pkk_sub_dot(int T, const __m512i c[4], const uint8_t *xs0, size_t xs, int s,
                            __m512i isum[PK_TT])
{
    for (int t = 0; t < T; t++)
        for (int v = 0; v < 4; v++)
            isum[t] = _mm512_dpbusd_epi32(isum[t], c[v], pkk_x4(xs0 + t * xs, PKK_QS, 4 * s + v));
}

/*
 * Q2_K: code vector (g, v) serves quad v of sub-blocks 4g..4g+3, field f
 * an AND away. One token takes the codes times 4^f and shifts its sums
 * back before the scale; more tokens share codes times their 4-bit scale
 * (at most 45, one vpmullw: no byte's product reaches the next), so that
 * their sums need no scaling. The mins pair with the bsums as Q6_K's
 * scales; per super-block and token, d x sum - dmin x mins, as Q4_K.
 */
NTP_INLINE void pkk_q2k_tile(int T, const uint8_t *g, int64_t nsb, const uint8_t *x, size_t xs,
                             float *y, int64_t ldy)
{
    const size_t pb = sizeof(ntp_pack_q2_K);
    __m512 acc[PK_TT];
    __m512i isum[PK_TT];
    for (int t = 0; t < T; t++)
        acc[t] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        for (int t = 0; t < T; t++)
            isum[t] = _mm512_setzero_si512();
        const uint8_t *p = g + (size_t)sb * pb;
        const ntp_pack_q2_K *pk = (const ntp_pack_q2_K *)p;
        const uint8_t *xs0 = x + (size_t)sb * PKK_XB;
        for (size_t o = 0; NTP_X86_PF > 0 && o < pb; o += 64)
            _mm_prefetch((const char *)p + NTP_X86_PF + o, _MM_HINT_T0);
        __m128i sc[16], mn[16];
        pkk_scales_q2k(pk, sc, mn);
        for (int gi = 0; gi < 4; gi++) {
            __m512i v[4];
            for (int q = 0; q < 4; q++)
                v[q] = _mm512_loadu_si512((const void *)pk->qs[gi][q]);
            for (int f = 0; f < 4; f++) {
                const int s = 4 * gi + f;
                __m512i c[4];
                if (T == 1) {
                    const __m512i mf = _mm512_set1_epi8((char)(3 << (2 * f)));
                    for (int q = 0; q < 4; q++)
                        c[q] = _mm512_and_si512(v[q], mf);
                    pkk_sub_add(T, c, xs0, xs, s, 2 * f, _mm512_cvtepu8_epi32(sc[s]), isum);
                } else {
                    const __m512i s16 = pkk_dup(sc[s]), m2 = _mm512_set1_epi8(3);
                    for (int q = 0; q < 4; q++)
                        c[q] = _mm512_mullo_epi16(
                            _mm512_and_si512(_mm512_srli_epi16(v[q], (unsigned)(2 * f)), m2), s16);
                    pkk_sub_dot(T, c, xs0, xs, s, isum);
                }
            }
        }
        __m512i mp[8];
        pkk_pairs(mn, mp);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)pk->d));
        const __m512 dmw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)pk->dmin));
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = xs0 + t * xs;
            const __m512 s = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(pkk_bsum_dot(mp, xb)), dmw,
                                              _mm512_mul_ps(_mm512_cvtepi32_ps(isum[t]), dw));
            acc[t] = _mm512_fmadd_ps(s, pkk_dx(xb), acc[t]);
        }
    }
    for (int t = 0; t < T; t++)
        _mm512_storeu_ps(y + t * ldy, acc[t]);
}

/*
 * Q3_K, sub-blocks 2i and 2i + 1 (i a constant) of the group times T
 * tokens into isum. A sub-block's sum of codes 0..7 fits int16 (at most
 * 16 x 7 x 128), so the pair's two sums share a dword and one vpdpwssd
 * multiplies both by their scales and adds them.
 */
NTP_INLINE void pkk_q3k_pair(int T, const ntp_pack_q3_K *pk, int i, __m512i sp, const uint8_t *xs0,
                             size_t xs, __m512i isum[PK_TT])
{
    __m512i c0[4], c1[4];
    pkk_q3k_codes(pk, 2 * i, c0);
    pkk_q3k_codes(pk, 2 * i + 1, c1);
    for (int t = 0; t < T; t++) {
        const uint8_t *xb = xs0 + t * xs;
        __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
        for (int v = 0; v < 4; v++) {
            a0 = _mm512_dpbusd_epi32(a0, c0[v], pkk_x4(xb, PKK_QS, 8 * i + v));
            a1 = _mm512_dpbusd_epi32(a1, c1[v], pkk_x4(xb, PKK_QS, 8 * i + 4 + v));
        }
        const __m512i a = _mm512_mask_blend_epi16(0xaaaaaaaa, a0, _mm512_slli_epi32(a1, 16));
        isum[t] = _mm512_dpwssd_epi32(isum[t], a, sp);
    }
}

/* Q3_K, as pkk_q6k_tile: the -4 offset of the codes is -4 x sum over s of (sc - 32) x bsum s. */
NTP_INLINE void pkk_q3k_tile(int T, const uint8_t *g, int64_t nsb, const uint8_t *x, size_t xs,
                             float *y, int64_t ldy)
{
    const size_t pb = sizeof(ntp_pack_q3_K);
    __m512 acc[PK_TT];
    __m512i isum[PK_TT];
    for (int t = 0; t < T; t++)
        acc[t] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        for (int t = 0; t < T; t++)
            isum[t] = _mm512_setzero_si512();
        const uint8_t *p = g + (size_t)sb * pb;
        const ntp_pack_q3_K *pk = (const ntp_pack_q3_K *)p;
        const uint8_t *xs0 = x + (size_t)sb * PKK_XB;
        for (size_t o = 0; NTP_X86_PF > 0 && o < pb; o += 64)
            _mm_prefetch((const char *)p + NTP_X86_PF + o, _MM_HINT_T0);
        __m128i sc[16];
        __m512i sp[8];
        pkk_scales_q3k(pk, sc);
        pkk_pairs(sc, sp);
        /* i a constant in every call: the third bits' shifts are immediates */
#define PKK_Q3K(i) pkk_q3k_pair(T, pk, i, sp[i], xs0, xs, isum)
        /* clang-format off */
        PKK_Q3K(0); PKK_Q3K(1); PKK_Q3K(2); PKK_Q3K(3);
        PKK_Q3K(4); PKK_Q3K(5); PKK_Q3K(6); PKK_Q3K(7);
        /* clang-format on */
#undef PKK_Q3K
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)pk->d));
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = xs0 + t * xs;
            const __m512i tot =
                _mm512_sub_epi32(isum[t], _mm512_slli_epi32(pkk_bsum_dot(sp, xb), 2));
            acc[t] =
                _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(tot), dw), pkk_dx(xb), acc[t]);
        }
    }
    for (int t = 0; t < T; t++)
        _mm512_storeu_ps(y + t * ldy, acc[t]);
}

/* The tile of format f for T tokens; one function per format and T, as pk_tiles. */
NTP_INLINE void pkk_tile(enum ntp_type f, int T, const uint8_t *g, int64_t nsb, const uint8_t *x,
                         size_t xs, float *y, int64_t ldy)
{
    if (f == NTP_TYPE_Q4_K || f == NTP_TYPE_Q5_K)
        pkk_q4k_tile(f == NTP_TYPE_Q5_K, T, g, nsb, x, xs, y, ldy);
    else if (f == NTP_TYPE_Q2_K)
        pkk_q2k_tile(T, g, nsb, x, xs, y, ldy);
    else if (f == NTP_TYPE_Q3_K)
        pkk_q3k_tile(T, g, nsb, x, xs, y, ldy);
    else
        pkk_q6k_tile(T, g, nsb, x, xs, y, ldy);
}

#define PKK_TILE_ARGS                                                                              \
    const uint8_t *g, int64_t nsb, const uint8_t *x, size_t xs, float *y, int64_t ldy
typedef void pkk_tile_fn(PKK_TILE_ARGS);
#define PKK_TILE_FN(f, n)                                                                          \
    static __attribute__((noinline)) void pkk_tile_##f##_##n(PKK_TILE_ARGS)                        \
    {                                                                                              \
        pkk_tile(NTP_TYPE_##f, n, g, nsb, x, xs, y, ldy);                                          \
    }
#define PKK_TILES(f)                                                                               \
    PK_EACH_T(PKK_TILE_FN, f)                                                                      \
    static pkk_tile_fn *const pkk_tiles_##f[PK_TT] = PK_TABLE(pkk_tile_, f);
PKK_TILES(Q2_K)
PKK_TILES(Q3_K)
PKK_TILES(Q4_K)
PKK_TILES(Q5_K)
PKK_TILES(Q6_K)

NTP_INLINE ntp_status pkk_drive(enum ntp_type f, pkk_tile_fn *const tiles[PK_TT],
                                const struct ntp_matmul_args *a)
{
    if (a->k % NTP_QK_K != 0 || a->n_rows % NTP_PACK_ROWS != 0)
        return NTP_E_UNSUPPORTED;
    const int64_t nsb = a->k / NTP_QK_K;
    const size_t gbytes = (size_t)nsb * NTP_PACK_ROWS * ntp_type_get_traits(f)->type_size;
    int64_t g0, g1;
    ntp__slice(a->n_rows / NTP_PACK_ROWS, a->ith, a->nth, &g0, &g1);
    const int64_t run = pkk_run(gbytes);
    for (int64_t r0 = g0; r0 < g1; r0 += run) {
        const int64_t r1 = r0 + run < g1 ? r0 + run : g1;
        for (int64_t t0 = 0; t0 < a->n_tok; t0 += PK_TT) {
            const int T = (int)(a->n_tok - t0 < PK_TT ? a->n_tok - t0 : PK_TT);
            for (int64_t g = r0; g < r1; g++)
                tiles[T - 1]((const uint8_t *)a->w + g * gbytes, nsb,
                             (const uint8_t *)a->x + t0 * a->x_stride, a->x_stride,
                             a->y + t0 * a->ldy + g * NTP_PACK_ROWS, a->ldy);
        }
    }
    return NTP_OK;
}

/*
 * Prefill from planes made once per group and super-block, in L1, for every
 * tile of a block of PKP_TOK tokens (whose activations are read from L2,
 * chunk by chunk of PKP_SB super-blocks), not once per tile of 8 tokens as
 * the tiles above make their codes; below PKP_MIN tokens those run.
 *
 * Q2_K and Q3_K: one plane (pkk_make, amx.c's), each code times its
 * sub-block's scale a byte, so a super-block of 16 rows times a token is 64
 * vpdpbusd and nothing else. Q3_K's plane holds (code - 4) x -(scale - 32)
 * + 128, unsigned, and 128 x the sum of the token's codes (its bsums)
 * starts the sum negative.
 *
 * Q4_K, Q5_K and Q6_K: a code times its scale needs two planes (amx.c's),
 * twice the products, so the planes hold the codes (pkc_make: 0..15, 0..31,
 * 0..63) in the order of the activation dwords, and the tiles scale each
 * sub-block's sums in int32 as pkk's tiles do: Q4_K's halves of a sub-block
 * (at most 16 x 15 x 128, an int16) take their scale in one vpdpwssd each.
 *
 * A tile takes two groups' planes (PKP_G), so that each broadcast
 * activation dword feeds two vpdpbusd, and each group's planes prefetch the
 * weights and rows they go on to (pkk_pf): one thread, bench/kernels, 512
 * tokens, GOP/s +16-18 % for Q2_K and Q3_K, +8-12 % for Q4_K, Q5_K and
 * Q6_K. Two groups' sums and sub-block sums fill the registers at 8 tokens
 * for the code planes, so their tiles run in two passes of PKC_TT tokens.
 *
 * Every sum is exact and scaled by the float operations of the tiles above
 * in the same order: the bits of a decode.
 */
#define PKP_TOK 128 /* tokens that share a group's planes */
#define PKP_SB  8   /* super-blocks of activations per chunk (300 KiB at 128 tokens) */
#define PKP_MIN 32  /* fewer tokens: pkk_drive */
#define PKP_G   2   /* groups per tile */
#define PKC_TT  4   /* tokens per pass of a two-group tile of code planes */

/* What scales a super-block of code planes: d, dmin, the sub-blocks' scales as int32, pairs. */
struct pkc_sbs {
    __m512 d, dmin;
    __m512i sc[16];
    __m512i mp[8]; /* Q4_K, Q5_K: min j twice, against bsums dword j; Q6_K: scale pairs */
};

union pkp_sbs {
    struct pkk_sbs one; /* Q2_K, Q3_K */
    struct pkc_sbs codes;
};

NTP_INLINE bool pkp_one(enum ntp_type f)
{
    return f == NTP_TYPE_Q2_K || f == NTP_TYPE_Q3_K;
}

/* The code planes of Q4_K, Q5_K or Q6_K's super-block at p: row e of pl[0] pairs with dword e. */
NTP_INLINE void pkc_make(enum ntp_type f, const uint8_t *p, pkk_planes pl, struct pkc_sbs *k)
{
    uint8_t(*row)[64] = pl[0];
    k->d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); /* d leads */
    if (f == NTP_TYPE_Q6_K) {
        const ntp_pack_q6_K *pk = (const ntp_pack_q6_K *)p;
        __m128i sc[16];
        for (int sb = 0; sb < 16; sb++) {
            sc[sb] = _mm_loadu_si128((const __m128i *)pk->sc[sb]);
            k->sc[sb] = _mm512_cvtepi8_epi32(sc[sb]);
            __m512i c[4];
            pkk_q6k_codes(pk, sb, c);
            for (int v = 0; v < 4; v++)
                _mm512_store_si512((void *)row[4 * sb + v], c[v]);
        }
        pkk_pairs(sc, k->mp);
        return;
    }
    const bool q5 = f == NTP_TYPE_Q5_K;
    const ntp_pack_q5_K *pk = (const ntp_pack_q5_K *)p; /* Q4_K's fields where Q5_K's are */
    __m128i sc[8], mn[8];
    pkk_scales_q4k((const ntp_pack_q4_K *)p, sc, mn);
    for (int j = 0; j < 8; j++) {
        k->sc[j] = _mm512_cvtepu8_epi32(sc[j]);
        k->mp[j] = pkk_dup(mn[j]);
    }
    k->dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)pk->dmin));
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < 8; i++) {
            __m512i lo, hi;
            pkk_q45k_codes(q5, pk, c, i, &lo, &hi);
            _mm512_store_si512((void *)row[16 * c + i], lo);
            _mm512_store_si512((void *)row[16 * c + 8 + i], hi);
        }
}

/* The sum of a Q8_K block's codes, from its 16 bsums. */
NTP_INLINE int32_t pkp_xsum(const uint8_t *xb)
{
    const __m256i b = _mm256_loadu_si256((const __m256i *)(xb + PKK_BSUMS));
    return ntp__x86_hsum_epi32(_mm256_madd_epi16(b, _mm256_set1_epi16(1)));
}

/* Q2_K, Q3_K (q3): T tokens' exact sums of G groups' planes pl[0, G), their 64 rows each. */
NTP_INLINE void pkp_one_sums(bool q3, int G, int T, const pkk_planes *pl, const uint8_t *x,
                             size_t xs, __m512i sum[PKP_G][PK_TT])
{
    for (int t = 0; t < T; t++) {
        const __m512i z =
            q3 ? _mm512_set1_epi32(-128 * pkp_xsum(x + t * xs)) : _mm512_setzero_si512();
        for (int g = 0; g < G; g++)
            sum[g][t] = z;
    }
#pragma GCC unroll 64
    for (int e = 0; e < 64; e++) {
        __m512i v[PKP_G];
        for (int g = 0; g < G; g++)
            v[g] = _mm512_load_si512((const void *)pl[g][e / 16][e % 16]);
        for (int t = 0; t < T; t++) {
            const __m512i bx = pkk_x4(x + t * xs, PKK_QS, e);
            for (int g = 0; g < G; g++)
                sum[g][t] = _mm512_dpbusd_epi32(sum[g][t], v[g], bx);
        }
    }
    for (int g = 0; q3 && g < G; g++) /* the plane's products are negated */
        for (int t = 0; t < T; t++)
            sum[g][t] = _mm512_sub_epi32(_mm512_setzero_si512(), sum[g][t]);
}

/* Row e of code planes pl (pkc_make): the 64 rows run on across pl's tiles. */
NTP_INLINE const uint8_t *pkc_row(const pkk_planes pl, int e)
{
    return ((const uint8_t(*)[64])pl[0])[e];
}

/*
 * Q4_K, Q5_K, Q6_K: T tokens' sums of G groups' code planes pl[0, G) with
 * their scalings k[0, G), each sub-block's times its scale, into isum[g].
 */
NTP_INLINE void pkc_sums(enum ntp_type f, int G, int T, const pkk_planes *pl,
                         const union pkp_sbs *k, const uint8_t *x, size_t xs,
                         __m512i isum[PKP_G][PK_TT])
{
    for (int g = 0; g < G; g++)
        for (int t = 0; t < T; t++)
            isum[g][t] = _mm512_setzero_si512();
    if (f == NTP_TYPE_Q6_K) {
        for (int sb = 0; sb < 16; sb++) { /* dwords 4sb .. 4sb + 3 */
            __m512i a[PKP_G][PK_TT];
            for (int g = 0; g < G; g++)
                for (int t = 0; t < T; t++)
                    a[g][t] = _mm512_setzero_si512();
            for (int v = 0; v < 4; v++) {
                __m512i r[PKP_G];
                for (int g = 0; g < G; g++)
                    r[g] = _mm512_load_si512((const void *)pkc_row(pl[g], 4 * sb + v));
                for (int t = 0; t < T; t++) {
                    const __m512i bx = pkk_x4(x + t * xs, PKK_QS, 4 * sb + v);
                    for (int g = 0; g < G; g++)
                        a[g][t] = _mm512_dpbusd_epi32(a[g][t], r[g], bx);
                }
            }
            for (int g = 0; g < G; g++)
                for (int t = 0; t < T; t++)
                    isum[g][t] = _mm512_add_epi32(isum[g][t],
                                                  _mm512_mullo_epi32(a[g][t], k[g].codes.sc[sb]));
        }
        return;
    }
    for (int j = 0; j < 8; j++) { /* dwords 8j .. 8j + 7, two halves */
        __m512i a[PKP_G][PK_TT], b[PKP_G][PK_TT];
        for (int g = 0; g < G; g++)
            for (int t = 0; t < T; t++)
                a[g][t] = b[g][t] = _mm512_setzero_si512();
        for (int v = 0; v < 4; v++) {
            __m512i r0[PKP_G], r1[PKP_G];
            for (int g = 0; g < G; g++) {
                r0[g] = _mm512_load_si512((const void *)pkc_row(pl[g], 8 * j + v));
                r1[g] = _mm512_load_si512((const void *)pkc_row(pl[g], 8 * j + 4 + v));
            }
            for (int t = 0; t < T; t++) {
                const __m512i b0 = pkk_x4(x + t * xs, PKK_QS, 8 * j + v);
                const __m512i b1 = pkk_x4(x + t * xs, PKK_QS, 8 * j + 4 + v);
                for (int g = 0; g < G; g++) {
                    a[g][t] = _mm512_dpbusd_epi32(a[g][t], r0[g], b0);
                    b[g][t] = _mm512_dpbusd_epi32(b[g][t], r1[g], b1);
                }
            }
        }
        /* Q4_K: each half's sum an int16 in its lane, times the scale in the low word */
        for (int g = 0; g < G; g++)
            for (int t = 0; t < T; t++)
                if (f == NTP_TYPE_Q4_K)
                    isum[g][t] = _mm512_dpwssd_epi32(
                        _mm512_dpwssd_epi32(isum[g][t], a[g][t], k[g].codes.sc[j]), b[g][t],
                        k[g].codes.sc[j]);
                else
                    isum[g][t] = _mm512_add_epi32(
                        isum[g][t],
                        _mm512_mullo_epi32(_mm512_add_epi32(a[g][t], b[g][t]), k[g].codes.sc[j]));
    }
}

/*
 * T tokens (x: the first one's Q8_K block of the super-block, rows xs
 * apart) times G groups' planes pl[0, G) and scalings k[0, G), added to
 * group i's acc + i PKP_TOK [0, T) with the float operations of the tiles
 * above.
 */
NTP_INLINE void pkp_tile(enum ntp_type f, int G, int T, const pkk_planes *pl,
                         const union pkp_sbs *k, const uint8_t *x, size_t xs, float (*acc)[16])
{
    __m512i sum[PKP_G][PK_TT];
    if (pkp_one(f))
        pkp_one_sums(f == NTP_TYPE_Q3_K, G, T, pl, x, xs, sum);
    else if (G == 1)
        pkc_sums(f, 1, T, pl, k, x, xs, sum);
    else /* two groups' sums fill the registers at PKC_TT tokens */
        for (int h = 0; h < T; h += PKC_TT) {
            __m512i part[PKP_G][PK_TT];
            pkc_sums(f, G, T - h < PKC_TT ? T - h : PKC_TT, pl, k, x + h * xs, xs, part);
            for (int g = 0; g < G; g++)
                for (int t = h; t < T && t < h + PKC_TT; t++)
                    sum[g][t] = part[g][t - h];
        }
    for (int g = 0; g < G; g++)
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = x + t * xs;
            const union pkp_sbs *kg = k + g;
            float *at = acc[g * PKP_TOK + t];
            __m512 s;
            if (f == NTP_TYPE_Q2_K)
                s = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(pkk_bsum_dot(kg->one.mp, xb)), kg->one.dmin,
                                     _mm512_mul_ps(_mm512_cvtepi32_ps(sum[g][t]), kg->one.d));
            else if (f == NTP_TYPE_Q3_K)
                s = _mm512_mul_ps(_mm512_cvtepi32_ps(sum[g][t]), kg->one.d);
            else if (f == NTP_TYPE_Q6_K)
                s = _mm512_mul_ps(
                    _mm512_cvtepi32_ps(_mm512_sub_epi32(
                        sum[g][t], _mm512_slli_epi32(pkk_bsum_dot(kg->codes.mp, xb), 5))),
                    kg->codes.d);
            else
                s = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(pkk_bsum_dot(kg->codes.mp, xb)),
                                     kg->codes.dmin,
                                     _mm512_mul_ps(_mm512_cvtepi32_ps(sum[g][t]), kg->codes.d));
            _mm512_store_ps(at, _mm512_fmadd_ps(s, pkk_dx(xb), _mm512_load_ps(at)));
        }
}

#define PKP_TILE_ARGS                                                                              \
    const pkk_planes *pl, const union pkp_sbs *k, const uint8_t *x, size_t xs, float(*acc)[16]
typedef void pkp_tile_fn(PKP_TILE_ARGS);
#define PKP_TILE_FN(f, n)                                                                          \
    static __attribute__((noinline)) void pkp_tile_##f##_##n(PKP_TILE_ARGS)                        \
    {                                                                                              \
        pkp_tile(NTP_TYPE_##f, 1, n, pl, k, x, xs, acc);                                           \
    }
#define PKP_TILE2_FN(f, n)                                                                         \
    static __attribute__((noinline)) void pkp_tile2_##f##_##n(PKP_TILE_ARGS)                       \
    {                                                                                              \
        pkp_tile(NTP_TYPE_##f, 2, n, pl, k, x, xs, acc);                                           \
    }
/* tiles[G - 1][T - 1]: G groups, T tokens */
#define PKP_TILES(f)                                                                               \
    PK_EACH_T(PKP_TILE_FN, f)                                                                      \
    PK_EACH_T(PKP_TILE2_FN, f)                                                                     \
    static pkp_tile_fn *const pkp_tiles_##f[PKP_G][PK_TT] = {PK_TABLE(pkp_tile_, f),               \
                                                             PK_TABLE(pkp_tile2_, f)};
PKP_TILES(Q2_K)
PKP_TILES(Q3_K)
PKP_TILES(Q4_K)
PKP_TILES(Q5_K)
PKP_TILES(Q6_K)

/*
 * Blocks of PKP_TOK tokens, chunks of PKP_SB super-blocks, this thread's
 * groups in pairs, the super-block's planes of each, the tiles of 8 tokens:
 * as amx_kq_drive,
 * the float sums of a group's block of tokens wait in acc (L1), taking y's
 * sums at the start of a chunk and giving them back at its end. The next
 * super-block's bytes are prefetched while the planes are used.
 */
NTP_INLINE ntp_status pkp_drive(enum ntp_type f, pkp_tile_fn *const tiles[PKP_G][PK_TT],
                                pkk_tile_fn *const kt[PK_TT], const struct ntp_matmul_args *a)
{
    if (a->n_tok < PKP_MIN || a->k == 0 || a->k % NTP_QK_K != 0 || a->n_rows % NTP_PACK_ROWS != 0) {
        const ntp_status st = pkk_drive(f, kt, a);
        if (st == NTP_OK)
            pkk_glu_after(a);
        return st;
    }
    const struct pkk_shape sh = pkk_shape(f, a);
    const size_t xs = a->x_stride;
    const uint8_t *w = a->w, *x = a->x;
    alignas(64) pkk_planes pl[PKP_G];
    alignas(64) float acc[PKP_G * PKP_TOK][16];
    union pkp_sbs k[PKP_G];
    for (int64_t t1 = 0; t1 < a->n_tok; t1 += PKP_TOK) {
        const int64_t nt = a->n_tok - t1 < PKP_TOK ? a->n_tok - t1 : PKP_TOK;
        for (int64_t s0 = 0; s0 < sh.nsb; s0 += PKP_SB) {
            const int64_t n = sh.nsb - s0 < PKP_SB ? sh.nsb - s0 : PKP_SB;
            for (int64_t g = sh.g0; g < sh.g1; g += PKP_G) {
                const int64_t m = sh.g1 - g < PKP_G ? sh.g1 - g : PKP_G;
                const uint8_t *p = w + g * sh.gbytes + (size_t)s0 * sh.pb;
                struct pkk_rows r[PKP_G];
                for (int64_t i = 0; i < m; i++) {
                    r[i] = pkk_rows(a, &sh, t1, s0, n, g + i);
                    pkk_acc_in(acc + i * PKP_TOK, nt, &r[i]);
                }
                for (int64_t sb = 0; sb < n; sb++) {
                    struct pkk_pf pf[PKP_G];
                    for (int64_t i = 0; i < m; i++) {
                        const uint8_t *pi = p + i * sh.gbytes;
                        pf[i] = pkk_pf(pi, sb, n, &sh, g + m + i < sh.g1, m, &r[i], nt);
                        if (pkp_one(f))
                            pkk_make(f, true, pi + (size_t)sb * sh.pb, pl[i], &k[i].one);
                        else
                            pkc_make(f, pi + (size_t)sb * sh.pb, pl[i], &k[i].codes);
                    }
                    const uint8_t *xc = x + t1 * xs + (size_t)(s0 + sb) * PKK_XB;
                    for (int64_t t0 = 0; t0 < nt; t0 += PK_TT) {
                        const int T = (int)(nt - t0 < PK_TT ? nt - t0 : PK_TT);
                        for (int64_t i = 0; i < m; i++)
                            pkk_pf_tile(&pf[i], t0 / PK_TT, (nt + PK_TT - 1) / PK_TT);
                        tiles[m - 1][T - 1]((const pkk_planes *)pl, k, xc + t0 * xs, xs, acc + t0);
                    }
                }
                for (int64_t i = 0; i < m; i++)
                    pkk_acc_out((const float(*)[16])acc + i * PKP_TOK, nt, &r[i]);
            }
        }
    }
    return NTP_OK;
}

static ntp_status q2_k_matmul_packed(const struct ntp_matmul_args *a)
{
    return pkp_drive(NTP_TYPE_Q2_K, pkp_tiles_Q2_K, pkk_tiles_Q2_K, a);
}

static ntp_status q3_k_matmul_packed(const struct ntp_matmul_args *a)
{
    return pkp_drive(NTP_TYPE_Q3_K, pkp_tiles_Q3_K, pkk_tiles_Q3_K, a);
}

static ntp_status q4_k_matmul_packed(const struct ntp_matmul_args *a)
{
    return pkp_drive(NTP_TYPE_Q4_K, pkp_tiles_Q4_K, pkk_tiles_Q4_K, a);
}

static ntp_status q5_k_matmul_packed(const struct ntp_matmul_args *a)
{
    return pkp_drive(NTP_TYPE_Q5_K, pkp_tiles_Q5_K, pkk_tiles_Q5_K, a);
}

static ntp_status q6_k_matmul_packed(const struct ntp_matmul_args *a)
{
    return pkp_drive(NTP_TYPE_Q6_K, pkp_tiles_Q6_K, pkk_tiles_Q6_K, a);
}

ntp_status NTP_X86(matmul_packed)(const struct ntp_matmul_args *a)
{
    switch (a->wtype) {
    case NTP_TYPE_Q4_0:
        return q4_0_matmul_packed(a);
    case NTP_TYPE_Q4_1:
        return q4_1_matmul_packed(a);
    case NTP_TYPE_Q5_0:
        return q5_0_matmul_packed(a);
    case NTP_TYPE_Q5_1:
        return q5_1_matmul_packed(a);
    case NTP_TYPE_Q8_0:
        return q8_0_matmul_packed(a);
    case NTP_TYPE_Q2_K:
        return q2_k_matmul_packed(a);
    case NTP_TYPE_Q3_K:
        return q3_k_matmul_packed(a);
    case NTP_TYPE_Q4_K:
        return q4_k_matmul_packed(a);
    case NTP_TYPE_Q5_K:
        return q5_k_matmul_packed(a);
    case NTP_TYPE_Q6_K:
        return q6_k_matmul_packed(a);
    default:
        return NTP_E_UNSUPPORTED;
    }
}

void NTP_X86(fill_packed)(struct ntp_kernel_type t[NTP_TYPE_COUNT])
{
    static const struct {
        enum ntp_type type;
        ntp_matmul_fn matmul;
    } fns[] = {
        {NTP_TYPE_Q4_0, q4_0_matmul_packed}, {NTP_TYPE_Q4_1, q4_1_matmul_packed},
        {NTP_TYPE_Q5_0, q5_0_matmul_packed}, {NTP_TYPE_Q5_1, q5_1_matmul_packed},
        {NTP_TYPE_Q8_0, q8_0_matmul_packed}, {NTP_TYPE_Q2_K, q2_k_matmul_packed},
        {NTP_TYPE_Q3_K, q3_k_matmul_packed}, {NTP_TYPE_Q4_K, q4_k_matmul_packed},
        {NTP_TYPE_Q5_K, q5_k_matmul_packed}, {NTP_TYPE_Q6_K, q6_k_matmul_packed},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        t[fns[i].type].pack = NTP_PACK_R16;
        t[fns[i].type].matmul_packed = fns[i].matmul;
        t[fns[i].type].packed_glu = ntp_type_get_traits(fns[i].type)->block_size == NTP_QK_K;
    }
}
