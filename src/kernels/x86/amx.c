/*
 * amx.c - prefill products with packed weights of every packed format: the
 * legacy ones (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and the k-quants (Q2_K ..
 * Q6_K) on AMX, Intel's tile unit (Sapphire Rapids and later). One TDPBSSD
 * multiplies a tile of 16 tokens x 32 activation codes by a tile of 32
 * codes x 16 rows into 16 x 16 int32 sums: the work of 32 vpdpbusd in one
 * instruction.
 *
 * The weights keep the AVX-512 library's packed layout (NTP_PACK_R16,
 * packed.h): a packed 64-byte code vector holds 4 consecutive codes of each
 * of 16 rows, which is one row of the tile the unit wants for its right
 * operand (8 rows of 16 x 4 bytes for a block of 32). Each block's codes are
 * made signed (the format's zero point subtracted, the nibbles split) into a
 * 512-byte tile, once per group for a block of tokens. The activations
 * (Q8_0, Q8_1 and Q8_K blocks) are the left operand, token t's codes a tile
 * row, copied into tiles in a row once per block of tokens.
 *
 * Every legacy block has its own scales, so each block's 16 x 16 sums leave
 * the unit (a tile store) and are scaled into float accumulators with the
 * same operations, in the same order, as packed.c's AVX-512 tile: the
 * integer sums are exact in both, so a prefill here gives the bits of a
 * decode there (tests/kernels/test_kernels_isa.c checks it). That scaling,
 * three vector operations per token and block, bounds the gain: 1.1-1.4x
 * over the AVX-512 kernels on a Xeon with AMX (bench/RESULTS-history.md, "AMX prefill").
 * The k-quants written the same way (sub-blocks of 32 and 16 with their own
 * scales) measured 0.8-1.0x there; they instead fold each sub-block's scale
 * into their weight tiles (below), and their sums leave the unit once per
 * super-block.
 *
 * Whole tiles of 16 tokens run here (the k-quants: pairs of them, the last
 * one padded where that pays); the tokens left over (and short calls) run
 * on the AVX-512 packed kernels, over the same groups of the same thread
 * slice. Built into the AVX-512 library (with -mamx-tile
 * -mamx-int8) and reached through the "amx" entry of kernels.c, which the
 * CPU must have and the kernel must let this process use (cpu_features.c).
 */
#include "kernels/isa.h"
#include "kernels/x86/packed_int.h"

#include <immintrin.h>
#include <stdalign.h>

#define AMX_TT 16 /* tokens per tile */

/*
 * The tile registers: activations in 0 and 1, weights in 2 and 3, sums in
 * 4 to 7, so that the products of up to four blocks are in flight while
 * the sums of the last ones are scaled. GCC's tile intrinsics paste their
 * register operand into the assembly text: they take literal numbers.
 */

/* LDTILECFG's 64-byte operand (palette 1). */
struct amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16]; /* bytes per row of each tile */
    uint8_t rows[16];
};

/*
 * The tile configuration for blocks of 32 bytes: A 16 x 32 bytes, B 8 x 64
 * bytes, C 16 x 16 int32. A constant object, loaded as it lies: GCC 12
 * drops the stores that fill such a structure on the stack before
 * LDTILECFG (only the zeroing and the palette byte reached it, and the
 * first tile load faulted), the miscompile the AMX issue warned of.
 */
static const alignas(64) struct amx_cfg amx_cfg32 = {
    .palette = 1,
    .colsb = {32, 32, 64, 64, 64, 64, 64, 64},
    .rows = {AMX_TT, AMX_TT, 8, 8, AMX_TT, AMX_TT, AMX_TT, AMX_TT},
};

/*
 * Sums tile tc = signed activation codes (a, stride as) times signed weight
 * codes (b, 64-byte rows), via tiles ta and tb (TDPBSSD).
 */
#define AMX_DOT(ta, tb, tc, a, as, b)                                                              \
    do {                                                                                           \
        _tile_loadd(ta, (a), (long)(as));                                                          \
        _tile_loadd(tb, (b), 64);                                                                  \
        _tile_zero(tc);                                                                            \
        _tile_dpbssd(tc, ta, tb);                                                                  \
    } while (0)

/* The tokens after the last whole tile of 16: the AVX-512 kernel's. */
static ntp_status amx_rest(const struct ntp_matmul_args *a, int64_t done)
{
    if (done == a->n_tok)
        return NTP_OK;
    struct ntp_matmul_args r = *a;
    r.x = (const uint8_t *)a->x + done * a->x_stride;
    r.y = a->y + done * a->ldy;
    r.g = a->g ? a->g + done * a->ldy : NULL;
    r.n_tok = a->n_tok - done;
    return NTP_X86(matmul_packed)(&r);
}

/* ------------------------------------------------------ legacy formats */

/*
 * A block of AMX_LG_TOK tokens shares each group's weight tiles, made once
 * for AMX_LG_KB blocks at a time (16 KiB, in L1 while every token tile runs
 * over them); the activations of the tokens and blocks are copied into
 * tiles in a row first (as the tokens lie, each tile row is 32 bytes of a
 * different cache line), with their scales beside them.
 */
#define AMX_LG_TOK 128
#define AMX_LG_KB  32

struct amx_lg_acts {
    /* the codes: [token tile][block][token][32], 128 KiB */
    alignas(64) uint8_t q[AMX_LG_TOK / AMX_TT][AMX_LG_KB][AMX_TT][32];
    float dx[AMX_LG_KB][AMX_LG_TOK]; /* each block's scale */
    float sx[AMX_LG_KB][AMX_LG_TOK]; /* Q8_1: d * sum of the codes */
};

/* The activation tiles and scales of nt tokens (from x, at stride xs) and kb blocks. */
NTP_INLINE void amx_lg_acts(enum lg_fmt f, const uint8_t *x, size_t xs, int64_t nt, int64_t kb,
                            struct amx_lg_acts *aa)
{
    const size_t xb = lg_xbytes(f), xc = lg_xcodes(f);
    for (int64_t t = 0; t < nt; t++)
        for (int64_t b = 0; b < kb; b++) {
            const uint8_t *xq = x + t * xs + (size_t)b * xb;
            _mm256_store_si256((__m256i *)aa->q[t / AMX_TT][b][t % AMX_TT],
                               _mm256_loadu_si256((const __m256i *)(xq + xc)));
            aa->dx[b][t] = ntp__x86_h2f(xq);
            if (lg_q81(f))
                aa->sx[b][t] = ntp__x86_h2f(xq + LG_XSUM);
        }
}

/*
 * Block p's weight tile in bt, as signed codes: the format's zero point
 * (pk_tile's correction -z * sum of the activation codes) is subtracted
 * here, so that TDPBSSD gives pk_tile's integer sums with no correction.
 * Row e of the tile is elements 4e..4e+3 of the 16 rows, as pk_tile's u[e].
 */
NTP_INLINE void amx_lg_weights(enum lg_fmt f, const uint8_t *p, uint8_t bt[8][64])
{
    const uint8_t *wt = p + pk_qs_off(f);
    const __m512i z = _mm512_set1_epi8((char)lg_zero(f));
    if (f == LG_Q8_0) { /* the codes plus 128: flip the top bit */
        for (int e = 0; e < 8; e++)
            _mm512_store_si512(
                (void *)bt[e],
                _mm512_xor_si512(_mm512_loadu_si512((const void *)(wt + 64 * e)), z));
        return;
    }
    const bool q5 = f == LG_Q5_0 || f == LG_Q5_1;
    const __m512i m4 = _mm512_set1_epi8(15);
    const __m512i qh = q5 ? _mm512_loadu_si512((const void *)(p + pk_qh_off(f))) : m4;
    for (int e = 0; e < 4; e++) {
        const __m512i v = _mm512_loadu_si512((const void *)(wt + 64 * e));
        const __m512i lo = q5 ? pk_code5(v, qh, e, false) : _mm512_and_si512(v, m4);
        const __m512i hi =
            q5 ? pk_code5(v, qh, 4 + e, true) : _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        _mm512_store_si512((void *)bt[e], _mm512_sub_epi8(lo, z));
        _mm512_store_si512((void *)bt[e + 4], _mm512_sub_epi8(hi, z));
    }
}

/* Block b's sums c of the 16 tokens from t0 into acc, as pk_tile scales a token's sums. */
NTP_INLINE void amx_lg_scale(enum lg_fmt f, const uint8_t *p, int64_t b, int64_t t0,
                             const struct amx_lg_acts *aa, const int32_t c[AMX_TT][16],
                             __m512 acc[AMX_TT])
{
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    const __m512 mw =
        pk_m_off(f) ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + pk_m_off(f)))) : dw;
    for (int t = 0; t < AMX_TT; t++) {
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512((const void *)c[t])),
                                 _mm512_mul_ps(dw, _mm512_set1_ps(aa->dx[b][t0 + t])), acc[t]);
        if (lg_q81(f))
            acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(aa->sx[b][t0 + t]), acc[t]);
    }
}

/*
 * The 16 tokens from t0 of aa times one group over kb blocks (weight tiles
 * wt, packed blocks g of pb bytes), four blocks at a time: y = the sums
 * (when add, y's sums of the blocks before, each block's added in turn as
 * pk_tile does). Each block of the four before is scaled after one of
 * these four's products is issued (two buffers of sums), so that the
 * vector units work while the tile unit does.
 */
NTP_INLINE void amx_lg_tile(enum lg_fmt f, const uint8_t *g, size_t pb, const uint8_t (*wt)[8][64],
                            int64_t kb, const struct amx_lg_acts *aa, int64_t t0, float *y,
                            int64_t ldy, bool add)
{
    alignas(64) int32_t c[2][4][AMX_TT][16];
    const uint8_t(*q)[AMX_TT][32] = aa->q[t0 / AMX_TT];
    __m512 acc[AMX_TT];
    for (int t = 0; t < AMX_TT; t++)
        acc[t] = add ? _mm512_loadu_ps(y + t * ldy) : _mm512_setzero_ps();
    int cur = 0;
#define AMX_LG_WAITING(i)                                                                          \
    do {                                                                                           \
        if (b > 0 && b - 4 + (i) < kb)                                                             \
            amx_lg_scale(f, g + (size_t)(b - 4 + (i)) * pb, b - 4 + (i), t0, aa, c[cur ^ 1][i],    \
                         acc);                                                                     \
    } while (0)
    for (int64_t b = 0; b < kb + 4; b += 4) {
        if (b < kb) {
            /* past the last block: the last again, not scaled */
            const int64_t bq[4] = {b, b + 1 < kb ? b + 1 : kb - 1, b + 2 < kb ? b + 2 : kb - 1,
                                   b + 3 < kb ? b + 3 : kb - 1};
            AMX_DOT(0, 2, 4, q[bq[0]], 32, wt[bq[0]]);
            AMX_LG_WAITING(0);
            AMX_DOT(1, 3, 5, q[bq[1]], 32, wt[bq[1]]);
            AMX_LG_WAITING(1);
            AMX_DOT(0, 2, 6, q[bq[2]], 32, wt[bq[2]]);
            AMX_LG_WAITING(2);
            AMX_DOT(1, 3, 7, q[bq[3]], 32, wt[bq[3]]);
            AMX_LG_WAITING(3);
            _tile_stored(4, c[cur][0], 64);
            _tile_stored(5, c[cur][1], 64);
            _tile_stored(6, c[cur][2], 64);
            _tile_stored(7, c[cur][3], 64);
            cur ^= 1;
        } else {
            for (int i = 0; i < 4; i++)
                AMX_LG_WAITING(i);
        }
    }
#undef AMX_LG_WAITING
    for (int t = 0; t < AMX_TT; t++)
        _mm512_storeu_ps(y + t * ldy, acc[t]);
}

/*
 * Whole tiles of 16 tokens (the rest on AVX-512), in blocks of AMX_LG_TOK
 * tokens and chunks of AMX_LG_KB blocks: per block and chunk the
 * activations are copied once, and each group of the thread's slice makes
 * its weight tiles once and runs every token tile over them, prefetching
 * the next group's blocks and rows of y a share per token tile meanwhile
 * (pkk_pf: on pp512 of a Q4_0 or Q8_0 model, whose groups otherwise wait on
 * memory, the blocks gave +7 %, the rows of y 9-19 % more). 184 KiB of
 * stack.
 */
NTP_INLINE ntp_status amx_lg_drive(enum lg_fmt f, const struct ntp_matmul_args *a)
{
    if (a->k % NTP_QK != 0 || a->n_rows % NTP_PACK_ROWS != 0)
        return NTP_E_UNSUPPORTED;
    const int64_t full = a->n_tok / AMX_TT * AMX_TT;
    const int64_t nb = a->k / NTP_QK;
    if (full == 0 || nb == 0)
        return NTP_X86(matmul_packed)(a); /* fewer than 16 tokens, or k = 0 */
    const size_t pb = NTP_PACK_ROWS * lg_wbytes(f), gbytes = (size_t)nb * pb;
    const size_t xs = a->x_stride, xb = lg_xbytes(f);
    int64_t g0, g1;
    ntp__slice(a->n_rows / NTP_PACK_ROWS, a->ith, a->nth, &g0, &g1);
    const uint8_t *w = a->w, *x = a->x;
    struct amx_lg_acts aa;
    alignas(64) uint8_t wt[AMX_LG_KB][8][64];
    _tile_loadconfig(&amx_cfg32);
    for (int64_t t1 = 0; t1 < full; t1 += AMX_LG_TOK) {
        const int64_t t2 = t1 + AMX_LG_TOK < full ? t1 + AMX_LG_TOK : full;
        for (int64_t b0 = 0; b0 < nb; b0 += AMX_LG_KB) {
            const int64_t kb = nb - b0 < AMX_LG_KB ? nb - b0 : AMX_LG_KB;
            amx_lg_acts(f, x + t1 * xs + (size_t)b0 * xb, xs, t2 - t1, kb, &aa);
            for (int64_t g = g0; g < g1; g++) {
                const uint8_t *p = w + g * gbytes + (size_t)b0 * pb;
                for (int64_t b = 0; b < kb; b++)
                    amx_lg_weights(f, p + (size_t)b * pb, wt[b]);
                /* the next group's blocks and rows of y, a share per token tile */
                const float *yn = a->y + t1 * a->ldy + (g + 1) * NTP_PACK_ROWS;
                const struct pkk_pf pf =
                    g + 1 < g1 ? pkk_pf_of(p + gbytes, (size_t)kb * pb, yn, NULL, t2 - t1, a->ldy)
                               : pkk_pf_of(NULL, 0, NULL, NULL, 0, 0);
                for (int64_t t0 = t1; t0 < t2; t0 += AMX_TT) {
                    pkk_pf_tile(&pf, (t0 - t1) / AMX_TT, (t2 - t1) / AMX_TT);
                    amx_lg_tile(f, p, pb, (const uint8_t(*)[8][64])wt, kb, &aa, t0 - t1,
                                a->y + t0 * a->ldy + g * NTP_PACK_ROWS, a->ldy, b0 > 0);
                }
            }
        }
    }
    _tile_release();
    return amx_rest(a, full);
}

/* The table's entry for every packed legacy format: each type's instance of the driver. */
static ntp_status legacy_amx(const struct ntp_matmul_args *a)
{
    switch (a->wtype) {
    case NTP_TYPE_Q4_0:
        return amx_lg_drive(LG_Q4_0, a);
    case NTP_TYPE_Q4_1:
        return amx_lg_drive(LG_Q4_1, a);
    case NTP_TYPE_Q5_0:
        return amx_lg_drive(LG_Q5_0, a);
    case NTP_TYPE_Q5_1:
        return amx_lg_drive(LG_Q5_1, a);
    case NTP_TYPE_Q8_0:
        return amx_lg_drive(LG_Q8_0, a);
    default:
        return NTP_X86(matmul_packed)(a);
    }
}

/* ------------------------------------------------------------ k-quants */

/*
 * The k-quants with each sub-block's scale inside the unit. The legacy path
 * above takes every block's sums out of the unit to scale them; a k-quant's
 * scale changes every 16 or 32 codes, and doing so there cost as much as
 * the AVX-512 kernel. Here the scale goes into the weights instead: each
 * code (less the format's offset) times its sub-block's scale is a plane of
 * signed bytes, or two where the product does not fit one:
 *
 *   Q4_K  code x 6-bit scale, at most 945: low 7 bits and the rest (0..7)
 *   Q5_K  the same with the fifth bit joined (at most 1953: 0..15 above)
 *   Q6_K  (code - 32) x signed scale, -4064..4096: low 7 bits, signed rest
 *   Q3_K  (code - 4) x -(scale - 32), -128..124: one plane
 *   Q2_K  code x 4-bit scale, at most 45: one plane
 *
 * TDPBSSD sums a whole super-block of each plane in the unit (4 steps of 64
 * codes), and the sums leave it once per super-block: low + 128 x high (or
 * the two halves of a one-plane super-block added), exact in int32, times
 * d; the mins (Q4_K, Q5_K, Q2_K) pair with Q8_K's bsums as in packed.c,
 * and Q6_K's and Q3_K's offsets are in the planes. packed.c sums a
 * super-block exactly too, so the two agree bit for bit.
 *
 * Making the planes costs more than a product with them, so a group's
 * planes of a super-block are made once (8 KiB, in L1) and serve every
 * token tile of a block of AMX_KQ_TOK tokens. The tokens' activation tiles
 * are made once per chunk of AMX_KQ_SB super-blocks (256 KiB, in L2).
 */
#define AMX_KQ_SB  8   /* super-blocks whose activation tiles are made at once */
#define AMX_KQ_TOK 128 /* tokens that share a group's planes */

/* Tiles of 64-byte rows: activations in 0 and 1, weights in 2 and 3, sums in 4-7. */
static const alignas(64) struct amx_cfg amx_cfg64 = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {AMX_TT, AMX_TT, 16, 16, AMX_TT, AMX_TT, AMX_TT, AMX_TT},
};

/*
 * What the scaling takes from each token's Q8_K block, in a row for each
 * super-block so that a group's scaling reads a few lines, not one line of
 * every token: the block's scale, and the code sums the mins pair with:
 * Q4_K's and Q5_K's sub-block j sum (bsums added in pairs, at most 32 x
 * 127) in s[j], Q2_K's bsums as they are.
 */
typedef struct {
    int16_t s[AMX_KQ_SB][AMX_KQ_TOK][16];
    float d[AMX_KQ_SB][AMX_KQ_TOK];
} amx_kq_toks;

/*
 * One super-block's activation tiles: [token tile][step h][token][64
 * codes], each tile 1 KiB in a row, a super-block's in a row. As the tokens
 * lie (rows 292 bytes apart, at offsets 4 + 64h), every tile row spans two
 * cache lines.
 */
typedef uint8_t amx_kq_codes[AMX_KQ_TOK / AMX_TT][4][AMX_TT][64];

/*
 * The activation tiles of nt tokens and nsb super-blocks and what their
 * scaling takes (tk); the tiles' rows from nt up to np (a multiple of 32)
 * are zeros, tokens that pad the last pair of tiles.
 */
NTP_INLINE void amx_kq_acts(enum ntp_type f, const uint8_t *x, size_t xs, int64_t nt, int64_t np,
                            int64_t nsb, amx_kq_toks *tk, amx_kq_codes *ac)
{
    const __m256i one = _mm256_set1_epi16(1);
    for (int64_t t = 0; t < nt; t++)
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *xb = x + t * xs + (size_t)sb * PKK_XB;
            const __m256i b = _mm256_loadu_si256((const __m256i *)(xb + PKK_BSUMS));
            if (f == NTP_TYPE_Q4_K || f == NTP_TYPE_Q5_K) {
                const __m256i p = _mm256_madd_epi16(b, one); /* 8 int32 pair sums */
                _mm_store_si128(
                    (__m128i *)tk->s[sb][t],
                    _mm_packs_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
            } else if (f == NTP_TYPE_Q2_K) {
                _mm256_store_si256((__m256i *)tk->s[sb][t], b);
            }
            memcpy(&tk->d[sb][t], xb, sizeof(float));
            for (int h = 0; h < 4; h++)
                _mm512_store_si512((void *)ac[sb][t / AMX_TT][h][t % AMX_TT],
                                   _mm512_loadu_si512((const void *)(xb + PKK_QS + 64 * h)));
        }
    for (int64_t t = nt; t < np; t++)
        for (int64_t sb = 0; sb < nsb; sb++)
            for (int h = 0; h < 4; h++)
                _mm512_store_si512((void *)ac[sb][t / AMX_TT][h][t % AMX_TT],
                                   _mm512_setzero_si512());
}

/*
 * The sums of one super-block of tokens lo .. hi - 1 (within 8 of a tile)
 * of a pair (tiles c: the two halves, low and high planes or even and odd
 * steps, of the first 16 tokens, then of the next 16) into their rows of
 * acc, which hold the sums of the super-blocks before: d x sum (- dmin x
 * mins), times the Q8_K block's scale, the float operations of packed.c's
 * tiles in the same order. ts and td: the pair's tokens' code sums and
 * scales.
 */
NTP_INLINE void amx_kq_scale(enum ntp_type f, const struct pkk_sbs *k,
                             const int32_t c[4][AMX_TT][16], int lo, int hi,
                             const int16_t (*ts)[16], const float *td, float (*acc)[16])
{
    const bool q45 = f == NTP_TYPE_Q4_K || f == NTP_TYPE_Q5_K, q2 = f == NTP_TYPE_Q2_K;
    const int half = lo / AMX_TT;
    const int32_t(*ca)[16] = c[2 * half] - half * AMX_TT,
          (*cb)[16] = c[2 * half + 1] - half * AMX_TT;
    for (int t = lo; t < hi; t++) {
        const __m512i b = _mm512_load_si512((const void *)cb[t]);
        __m512i sum = _mm512_add_epi32(_mm512_load_si512((const void *)ca[t]),
                                       pkk_two(f) ? _mm512_slli_epi32(b, 7) : b);
        if (f == NTP_TYPE_Q3_K)
            sum = _mm512_sub_epi32(_mm512_setzero_si512(), sum);
        __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), k->d);
        if (q45 || q2) {
            __m512i im = _mm512_setzero_si512();
            for (int i = 0; i < (q2 ? 8 : 4); i++)
                im = _mm512_dpwssd_epi32(im, k->mp[i], pkk_x4((const uint8_t *)ts[t], 0, i));
            s = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(im), k->dmin, s);
        }
        _mm512_store_ps(acc[t], _mm512_fmadd_ps(s, _mm512_set1_ps(td[t]), _mm512_load_ps(acc[t])));
    }
}

/* A pair of tiles whose sums wait in c to be scaled (amx_kq_scale's operands). */
struct amx_kq_wait {
    const struct pkk_sbs *k;
    const int32_t (*c)[AMX_TT][16];
    int nv;
    const int16_t (*ts)[16];
    const float *td;
    float (*acc)[16];
};

/* Scale tokens 8j .. 8j + 7 of the waiting pair w (none when w->k is NULL). */
NTP_INLINE void amx_kq_scale8(enum ntp_type f, const struct amx_kq_wait *w, int j)
{
    if (w->k && 8 * j < w->nv)
        amx_kq_scale(f, w->k, w->c, 8 * j, 8 * j + 8 < w->nv ? 8 * j + 8 : w->nv, w->ts, w->td,
                     w->acc);
}

/*
 * 32 tokens (two activation tiles ac) times one super-block's planes pl
 * into the tiles' sums c; meanwhile the waiting pair w is scaled, 8 tokens
 * after each step's products are issued, so that the vector units work
 * while the tile unit does. Each weight tile serves both token tiles, and
 * the four sums tiles are four independent chains in the unit.
 */
NTP_INLINE void amx_kq_tile(enum ntp_type f, const pkk_planes pl,
                            const uint8_t (*ac)[4][AMX_TT][64], int32_t c[4][AMX_TT][16],
                            const struct amx_kq_wait *w)
{
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    for (int h = 0; h < 4; h++) {
        if (pkk_two(f)) { /* planes in 2 and 3: sums 4, 6 low and 5, 7 high */
            _tile_loadd(2, pl[2 * h], 64);
            _tile_loadd(3, pl[2 * h + 1], 64);
            _tile_loadd(0, ac[0][h], 64);
            _tile_loadd(1, ac[1][h], 64);
            _tile_dpbssd(4, 0, 2);
            _tile_dpbssd(5, 0, 3);
            _tile_dpbssd(6, 1, 2);
            _tile_dpbssd(7, 1, 3);
        } else if (h % 2 == 0) { /* even steps in 2 (sums 4, 6), odd in 3 (5, 7) */
            _tile_loadd(2, pl[h], 64);
            _tile_loadd(0, ac[0][h], 64);
            _tile_loadd(1, ac[1][h], 64);
            _tile_dpbssd(4, 0, 2);
            _tile_dpbssd(6, 1, 2);
        } else {
            _tile_loadd(3, pl[h], 64);
            _tile_loadd(0, ac[0][h], 64);
            _tile_loadd(1, ac[1][h], 64);
            _tile_dpbssd(5, 0, 3);
            _tile_dpbssd(7, 1, 3);
        }
        amx_kq_scale8(f, w, h);
    }
    _tile_stored(4, c[0], 64);
    _tile_stored(5, c[1], 64);
    _tile_stored(6, c[2], 64);
    _tile_stored(7, c[3], 64);
}

/*
 * The tokens of a call that run on the unit: every whole pair of tiles, and
 * the tokens after them in a pair padded with zeros where that is cheaper
 * than the AVX-512 tile. Per group and super-block, timed on a Xeon
 * (rdtsc): making the planes about 1600 cycles, a pair's products 700-1100,
 * its scaling 400, against about 110 per token on AVX-512 (Q4_K). So a
 * padded pair pays from 10 tokens after whole pairs (whose planes are made
 * already) and from 28 alone.
 */
NTP_INLINE int64_t amx_kq_tokens(int64_t n_tok)
{
    const int64_t pairs = n_tok / (2 * AMX_TT) * (2 * AMX_TT), r = n_tok - pairs;
    return r >= (pairs > 0 ? 10 : 28) ? n_tok : pairs;
}

/*
 * The tokens amx_kq_tokens gives (the rest on AVX-512), in blocks of
 * AMX_KQ_TOK tokens and chunks of AMX_KQ_SB super-blocks (their activations
 * stay in L2). Per block and chunk, the tokens' activation tiles, code
 * sums and scales are made once; then each group of the thread's slice,
 * one super-block at a time, makes its planes (8 KiB, in L1) and scaling
 * once and runs every pair of token tiles over them, summing into a block
 * of float accumulators in L1 that take y's sums at the start of a chunk
 * and give them back at its end. A pair's sums are scaled while the next
 * pair's products run (amx_kq_tile), in two buffers. The next
 * super-block's bytes are prefetched meanwhile: a group's planes wait on
 * them, and without it the wait for memory cost 5-10 % of a prefill (pp512
 * of a Q5_K model, whose weights come from DRAM, not the benchmark's
 * cache-warm matrix). 314 KiB of stack.
 */
NTP_INLINE ntp_status amx_kq_drive(enum ntp_type f, const struct ntp_matmul_args *a)
{
    if (a->k % NTP_QK_K != 0 || a->n_rows % NTP_PACK_ROWS != 0)
        return NTP_E_UNSUPPORTED;
    const int64_t full = amx_kq_tokens(a->n_tok);
    if (full == 0 || a->k == 0)
        return NTP_X86(matmul_packed)(a);
    const struct pkk_shape sh = pkk_shape(f, a);
    const size_t xs = a->x_stride;
    const uint8_t *w = a->w, *x = a->x;
    alignas(64) pkk_planes pl;
    alignas(64) amx_kq_codes ac[AMX_KQ_SB]; /* 256 KiB */
    alignas(64) int32_t c[2][4][AMX_TT][16];
    alignas(64) float acc[AMX_KQ_TOK][16];
    alignas(64) amx_kq_toks tk;
    struct pkk_sbs k[2]; /* the super-block's scaling, and the one before's */
    _tile_loadconfig(&amx_cfg64);
    for (int64_t t1 = 0; t1 < full; t1 += AMX_KQ_TOK) {
        const int64_t nt = full - t1 < AMX_KQ_TOK ? full - t1 : AMX_KQ_TOK;
        const int64_t np = (nt + 2 * AMX_TT - 1) / (2 * AMX_TT) * (2 * AMX_TT);
        for (int64_t s0 = 0; s0 < sh.nsb; s0 += AMX_KQ_SB) {
            const int64_t n = sh.nsb - s0 < AMX_KQ_SB ? sh.nsb - s0 : AMX_KQ_SB;
            const uint8_t *xc = x + t1 * xs + (size_t)s0 * PKK_XB;
            amx_kq_acts(f, xc, xs, nt, np, n, &tk, ac);
            for (int64_t g = sh.g0; g < sh.g1; g++) {
                const uint8_t *p = w + g * sh.gbytes + (size_t)s0 * sh.pb;
                const struct pkk_rows r = pkk_rows(a, &sh, t1, s0, n, g);
                pkk_acc_in(acc, nt, &r);
                struct amx_kq_wait wt = {0};
                int cur = 0;
                for (int64_t sb = 0; sb < n; sb++) {
                    const struct pkk_pf pf = pkk_pf(p, sb, n, &sh, g + 1 < sh.g1, 1, &r, nt);
                    pkk_make(f, false, p + (size_t)sb * sh.pb, pl, &k[sb % 2]);
                    for (int64_t t0 = 0; t0 < nt; t0 += 2 * AMX_TT) {
                        pkk_pf_tile(&pf, t0 / (2 * AMX_TT), np / (2 * AMX_TT));
                        amx_kq_tile(f, pl, ac[sb] + t0 / AMX_TT, c[cur], &wt);
                        wt =
                            (struct amx_kq_wait){&k[sb % 2],
                                                 (const int32_t(*)[AMX_TT][16])c[cur],
                                                 (int)(nt - t0 < 2 * AMX_TT ? nt - t0 : 2 * AMX_TT),
                                                 tk.s[sb] + t0,
                                                 tk.d[sb] + t0,
                                                 acc + t0};
                        cur ^= 1;
                    }
                }
                for (int j = 0; j < 4; j++)
                    amx_kq_scale8(f, &wt, j);
                pkk_acc_out((const float(*)[16])acc, nt, &r);
            }
        }
    }
    _tile_release();
    return amx_rest(a, full);
}

/* The table's entry for every packed k-quant: each type's instance of the driver. */
static ntp_status kquant_amx(const struct ntp_matmul_args *a)
{
    switch (a->wtype) {
    case NTP_TYPE_Q2_K:
        return amx_kq_drive(NTP_TYPE_Q2_K, a);
    case NTP_TYPE_Q3_K:
        return amx_kq_drive(NTP_TYPE_Q3_K, a);
    case NTP_TYPE_Q4_K:
        return amx_kq_drive(NTP_TYPE_Q4_K, a);
    case NTP_TYPE_Q5_K:
        return amx_kq_drive(NTP_TYPE_Q5_K, a);
    case NTP_TYPE_Q6_K:
        return amx_kq_drive(NTP_TYPE_Q6_K, a);
    default:
        return NTP_X86(matmul_packed)(a);
    }
}

/* The AVX-512 table with AMX products for every packed format. */
void ntp__kernels_amx_fill(struct ntp_kernels *k)
{
    NTP_X86(fill)(k);
    static const enum ntp_type legacy[] = {NTP_TYPE_Q4_0, NTP_TYPE_Q4_1, NTP_TYPE_Q5_0,
                                           NTP_TYPE_Q5_1, NTP_TYPE_Q8_0},
                               kquant[] = {NTP_TYPE_Q2_K, NTP_TYPE_Q3_K, NTP_TYPE_Q4_K,
                                           NTP_TYPE_Q5_K, NTP_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++)
        k->type[legacy[i]].matmul_packed = legacy_amx;
    for (size_t i = 0; i < sizeof kquant / sizeof kquant[0]; i++)
        k->type[kquant[i]].matmul_packed = kquant_amx;
}
