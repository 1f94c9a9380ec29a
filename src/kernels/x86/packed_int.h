/*
 * packed_int.h - what the products with packed legacy weights share:
 * packed.c's AVX-512 VNNI tiles and amx.c's AMX tiles read the same packed
 * groups (packed.h) with the same helpers and order of work, so that both
 * compute every block's integer sum exactly and apply its scales in the
 * same float operations: a prefill on AMX gives the bits a decode on
 * AVX-512 gives.
 */
#ifndef NTP_KERNELS_X86_PACKED_INT_H
#define NTP_KERNELS_X86_PACKED_INT_H

#include "kernels/packed.h"
#include "kernels/x86/legacy.h"
#include "kernels/x86/simd_x86.h"
#include "kernels/x86/x86.h"

#include <stddef.h>
#include <string.h>

/*
 * The AVX-512 library's product with packed weights of any packed type
 * (packed.c): what amx.c runs for the tokens that do not fill a tile.
 */
ntp_status NTP_X86(matmul_packed)(const struct ntp_matmul_args *a);

#define PK_KC 256 /* blocks per chunk of k (the tables of activation scales) */

NTP_INLINE size_t pk_qs_off(enum lg_fmt f)
{
    switch (f) {
    case LG_Q4_0:
        return offsetof(ntp_pack_q4_0, qs);
    case LG_Q4_1:
        return offsetof(ntp_pack_q4_1, qs);
    case LG_Q5_0:
        return offsetof(ntp_pack_q5_0, qs);
    case LG_Q5_1:
        return offsetof(ntp_pack_q5_1, qs);
    default:
        return offsetof(ntp_pack_q8_0, qs);
    }
}

NTP_INLINE size_t pk_qh_off(enum lg_fmt f)
{
    return f == LG_Q5_0   ? offsetof(ntp_pack_q5_0, qh)
           : f == LG_Q5_1 ? offsetof(ntp_pack_q5_1, qh)
                          : 0;
}

NTP_INLINE size_t pk_m_off(enum lg_fmt f)
{
    return f == LG_Q4_1   ? offsetof(ntp_pack_q4_1, m)
           : f == LG_Q5_1 ? offsetof(ntp_pack_q5_1, m)
                          : 0;
}

/* Bit select (a & c) | b, for a fifth bit b already alone at bit 4 and c the nibble mask. */
#define PK_OR_MASKED 0xec

/* The 16-bit shift of v by n bits, left for n > 0 and right for n < 0 (n a constant). */
NTP_INLINE __m512i pk_shift(__m512i v, int n)
{
    return n > 0   ? _mm512_slli_epi16(v, (unsigned)n)
           : n < 0 ? _mm512_srli_epi16(v, (unsigned)-n)
                   : v;
}

/*
 * A code vector v's nibble (the low one when hi is false) with bit `bit` of
 * each byte of qh as the fifth bit: 5-bit codes 0..31. Every bit that moves
 * stays in its byte, so the 16-bit shifts spill nothing.
 */
NTP_INLINE __m512i pk_code5(__m512i v, __m512i qh, int bit, bool hi)
{
    const __m512i m4 = _mm512_set1_epi8(15), b4 = _mm512_set1_epi8(16);
    const __m512i nib = hi ? _mm512_srli_epi16(v, 4) : v;
    return _mm512_ternarylogic_epi32(nib, _mm512_and_si512(pk_shift(qh, 4 - bit), b4), m4,
                                     PK_OR_MASKED);
}

/* ---- the k-quants against Q8_K (packed.c, and amx.c's) ---- */

/* 16 unsigned bytes (one per row) -> each row's lane holding the value twice as int16. */
NTP_INLINE __m512i pkk_dup(__m128i b)
{
    const __m512i v = _mm512_cvtepu8_epi32(b);
    return _mm512_or_si512(v, _mm512_slli_epi32(v, 16));
}

/* Q4_K: the 6-bit scale and min of sub-block j of the 16 rows, from the packed scale bytes. */
NTP_INLINE void pkk_scales_q4k(const ntp_pack_q4_K *p, __m128i sc[8], __m128i mn[8])
{
    __m128i b[12];
    for (int i = 0; i < 12; i++)
        b[i] = _mm_loadu_si128((const __m128i *)p->sc[i]);
    const __m128i m6 = _mm_set1_epi8(63), m4 = _mm_set1_epi8(15), top = _mm_set1_epi8(0x30);
    for (int j = 0; j < 4; j++) {
        sc[j] = _mm_and_si128(b[j], m6);
        mn[j] = _mm_and_si128(b[j + 4], m6);
        /* sub-block j + 4: low nibble from byte j + 8, top two bits from bytes j and j + 4 */
        sc[j + 4] =
            _mm_or_si128(_mm_and_si128(b[j + 8], m4), _mm_and_si128(_mm_srli_epi16(b[j], 2), top));
        mn[j + 4] = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(b[j + 8], 4), m4),
                                 _mm_and_si128(_mm_srli_epi16(b[j + 4], 2), top));
    }
}

/* Q2_K: the 4-bit scale and min of sub-block s of the 16 rows, from the packed scale bytes. */
NTP_INLINE void pkk_scales_q2k(const ntp_pack_q2_K *p, __m128i sc[16], __m128i mn[16])
{
    const __m128i m4 = _mm_set1_epi8(15);
    for (int s = 0; s < 16; s++) {
        const __m128i b = _mm_loadu_si128((const __m128i *)p->sc[s]);
        sc[s] = _mm_and_si128(b, m4);
        mn[s] = _mm_and_si128(_mm_srli_epi16(b, 4), m4);
    }
}

/* Q3_K: the 6-bit scales minus 32 of sub-block s of the 16 rows, signed bytes (blocks.h). */
NTP_INLINE void pkk_scales_q3k(const ntp_pack_q3_K *p, __m128i sc[16])
{
    __m128i b[12];
    for (int i = 0; i < 12; i++)
        b[i] = _mm_loadu_si128((const __m128i *)p->sc[i]);
    const __m128i m4 = _mm_set1_epi8(15), m2 = _mm_set1_epi8(3), k32 = _mm_set1_epi8(32);
    for (int q = 0; q < 4; q++) { /* the top two bits of sub-blocks 4q..4q+3 */
        const __m128i sh = _mm_cvtsi32_si128(2 * q);
        for (int i = 0; i < 4; i++) {
            const int s = 4 * q + i;
            const __m128i lo =
                s < 8 ? _mm_and_si128(b[s], m4) : _mm_and_si128(_mm_srli_epi16(b[s - 8], 4), m4);
            const __m128i hi = _mm_and_si128(_mm_srl_epi16(b[8 + i], sh), m2);
            sc[s] = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), k32);
        }
    }
}

/*
 * Q6_K: sub-block s's four code vectors (dwords 4s..4s+3, codes 0..63) from
 * its three packed vectors: ANDs for the first three and, for the fourth,
 * the three 2-bit fields of bits 6-7 moved to bits 0-1, 2-3 and 4-5 and
 * merged by bit selects.
 */
NTP_INLINE void pkk_q6k_codes(const ntp_pack_q6_K *pk, int s, __m512i c[4])
{
    const __m512i m6 = _mm512_set1_epi8(0x3f), m2 = _mm512_set1_epi8(0x03);
    const __m512i m4 = _mm512_set1_epi8(0x0f), top = _mm512_set1_epi8((char)0xc0);
    enum { SEL = 0xe4 }; /* ternlog: c ? a : b, bit by bit */
    const __m512i v0 = _mm512_loadu_si512((const void *)pk->q[s][0]);
    const __m512i v1 = _mm512_loadu_si512((const void *)pk->q[s][1]);
    const __m512i v2 = _mm512_loadu_si512((const void *)pk->q[s][2]);
    const __m512i f01 =
        _mm512_ternarylogic_epi32(_mm512_srli_epi16(v0, 6), _mm512_srli_epi16(v1, 4), m2, SEL);
    const __m512i f2 = _mm512_srli_epi16(_mm512_and_si512(v2, top), 2);
    c[0] = _mm512_and_si512(v0, m6);
    c[1] = _mm512_and_si512(v1, m6);
    c[2] = _mm512_and_si512(v2, m6);
    c[3] = _mm512_ternarylogic_epi32(f01, f2, m4, SEL);
}

/*
 * Q4_K, or Q5_K (q5; a Q4_K group read through Q5_K's struct, whose first
 * fields are Q4_K's): code vector (c, i)'s codes of sub-block 2c (lo, 0..15
 * or 0..31) and of sub-block 2c + 1 (hi).
 */
NTP_INLINE void pkk_q45k_codes(bool q5, const ntp_pack_q5_K *pk, int c, int i, __m512i *lo,
                               __m512i *hi)
{
    const __m512i m4 = _mm512_set1_epi8(15);
    const __m512i v = _mm512_loadu_si512((const void *)pk->qs[c][i]);
    if (q5) {
        const __m512i qh = _mm512_loadu_si512((const void *)pk->qh[i]);
        *lo = pk_code5(v, qh, 2 * c, false);
        *hi = pk_code5(v, qh, 2 * c + 1, true);
    } else {
        *lo = _mm512_and_si512(v, m4);
        *hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    }
}

/*
 * Q3_K: sub-block s's four code vectors (quads v of dwords 4s..4s+3), codes
 * 0..7: the 2-bit field f = s % 4 of qs[s / 4][v] with bit s % 8 of
 * hm[s / 8][v] above it. Every bit that moves stays in its byte.
 */
NTP_INLINE void pkk_q3k_codes(const ntp_pack_q3_K *pk, int s, __m512i c[4])
{
    const __m512i m2 = _mm512_set1_epi8(3), b2 = _mm512_set1_epi8(4);
    for (int v = 0; v < 4; v++) {
        const __m512i q = _mm512_loadu_si512((const void *)pk->qs[s / 4][v]);
        const __m512i hm = _mm512_loadu_si512((const void *)pk->hm[s / 8][v]);
        c[v] = _mm512_ternarylogic_epi32(s % 4 ? _mm512_srli_epi16(q, (unsigned)(2 * (s % 4))) : q,
                                         _mm512_and_si512(pk_shift(hm, 2 - s % 8), b2), m2,
                                         PK_OR_MASKED);
    }
}

/* Dword e of the Q8_K block's codes (or, from offset 260, of its bsums) broadcast. */
NTP_INLINE __m512i pkk_x4(const uint8_t *xb, size_t off, int e)
{
    int32_t v;
    memcpy(&v, xb + off + 4 * e, sizeof v);
    return _mm512_set1_epi32(v);
}

/* The Q8_K block's scale broadcast. */
NTP_INLINE __m512 pkk_dx(const uint8_t *xb)
{
    float d;
    memcpy(&d, xb, sizeof d);
    return _mm512_set1_ps(d);
}

#define PKK_QS    offsetof(ntp_block_q8_K, qs)
#define PKK_BSUMS offsetof(ntp_block_q8_K, bsums)
#define PKK_XB    sizeof(ntp_block_q8_K)

/* Scale or min pairs (2i, 2i + 1) of each row as int16 (signed bytes in sc), against bsums dword i.
 */
NTP_INLINE void pkk_pairs(const __m128i sc[16], __m512i sp[8])
{
    for (int i = 0; i < 8; i++)
        sp[i] = _mm512_cvtepi8_epi16(_mm256_set_m128i(_mm_unpackhi_epi8(sc[2 * i], sc[2 * i + 1]),
                                                      _mm_unpacklo_epi8(sc[2 * i], sc[2 * i + 1])));
}

/* sum over pairs i of sp[i] x the token's bsums dword i: the super-block's offset or min term */
NTP_INLINE __m512i pkk_bsum_dot(const __m512i sp[8], const uint8_t *xb)
{
    __m512i im = _mm512_setzero_si512();
    for (int i = 0; i < 8; i++)
        im = _mm512_dpwssd_epi32(im, sp[i], pkk_x4(xb, PKK_BSUMS, i));
    return im;
}

/* ---- a super-block's planes: codes times scales (amx.c's tiles, packed.c's prefill) ---- */

/*
 * One super-block's planes, amx.c's weight tiles [tile][tile row][64
 * bytes]: step h's low and high planes in tiles 2h and 2h + 1 (two-plane
 * formats), or its one plane in tile h (Q2_K, Q3_K). Step h takes
 * activation dwords 16h .. 16h + 15; tile row i is the code vector of dword
 * 16h + i (packed.h). packed.c's prefill reads the one-plane formats' planes
 * with vpdpbusd, and keeps its own code planes in the same space.
 */
typedef uint8_t pkk_planes[8][16][64];

NTP_INLINE bool pkk_two(enum ntp_type f)
{
    return f == NTP_TYPE_Q4_K || f == NTP_TYPE_Q5_K || f == NTP_TYPE_Q6_K;
}

/*
 * The 16 rows' scales (signed bytes) as the int16 operands of pkk_row:
 * s16[0] against the codes unpacked low, s16[1] high.
 */
NTP_INLINE void pkk_sc16(__m128i sc, __m512i s16[2])
{
    const __m512i s = _mm512_mullo_epi32(_mm512_cvtepu8_epi32(sc), _mm512_set1_epi32(0x01010101));
    s16[0] = _mm512_srai_epi16(_mm512_unpacklo_epi8(s, s), 8);
    s16[1] = _mm512_srai_epi16(_mm512_unpackhi_epi8(s, s), 8);
}

/*
 * Code vector q (unsigned bytes, 4 of each of 16 rows) less off, times its
 * rows' scales in int16 (unpacked with zero and packed back, so the bytes
 * keep q's order): one plane at lo, or the low 7 bits at lo and the signed
 * rest at hi. With u8, one plane's bytes get 128 added (vpdpbusd's unsigned operand).
 */
NTP_INLINE void pkk_row(bool two, bool u8, __m512i q, int off, const __m512i s16[2], uint8_t *lo,
                        uint8_t *hi)
{
    const __m512i zero = _mm512_setzero_si512(), o = _mm512_set1_epi16((short)off);
    const __m512i a =
        _mm512_mullo_epi16(_mm512_sub_epi16(_mm512_unpacklo_epi8(q, zero), o), s16[0]);
    const __m512i b =
        _mm512_mullo_epi16(_mm512_sub_epi16(_mm512_unpackhi_epi8(q, zero), o), s16[1]);
    if (!two) {
        const __m512i pl = _mm512_packs_epi16(a, b);
        _mm512_store_si512((void *)lo,
                           u8 ? _mm512_xor_si512(pl, _mm512_set1_epi8((char)0x80)) : pl);
        return;
    }
    const __m512i m7 = _mm512_set1_epi16(127);
    _mm512_store_si512((void *)lo,
                       _mm512_packus_epi16(_mm512_and_si512(a, m7), _mm512_and_si512(b, m7)));
    _mm512_store_si512((void *)hi,
                       _mm512_packs_epi16(_mm512_srai_epi16(a, 7), _mm512_srai_epi16(b, 7)));
}

/*
 * What scales a group's super-block for every token, made with its planes
 * from the same scale bytes: d and dmin as floats, and the mins (Q4_K,
 * Q5_K, Q2_K) as int16 pairs against dword i of the tokens' code sums
 * (amx_kq_toks's s).
 */
struct pkk_sbs {
    __m512 d, dmin;
    __m512i mp[8];
};

/*
 * Q4_K and Q5_K (q5): tile row i < 8 of step h is the low nibbles of code
 * vector (h, i), row 8 + i its high ones.
 */
NTP_INLINE void pkk_q4k_make(bool q5, const uint8_t *p, pkk_planes pl, struct pkk_sbs *k)
{
    const ntp_pack_q5_K *pk = (const ntp_pack_q5_K *)p; /* Q4_K's fields where Q5_K's are */
    __m128i sc[8], mn[8];
    pkk_scales_q4k((const ntp_pack_q4_K *)p, sc, mn);
    for (int i = 0; i < 4; i++)
        k->mp[i] =
            _mm512_cvtepu8_epi16(_mm256_set_m128i(_mm_unpackhi_epi8(mn[2 * i], mn[2 * i + 1]),
                                                  _mm_unpacklo_epi8(mn[2 * i], mn[2 * i + 1])));
    k->dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)pk->dmin));
    for (int h = 0; h < 4; h++) {
        __m512i s0[2], s1[2];
        pkk_sc16(sc[2 * h], s0);
        pkk_sc16(sc[2 * h + 1], s1);
        for (int i = 0; i < 8; i++) {
            __m512i lo, hi;
            pkk_q45k_codes(q5, pk, h, i, &lo, &hi);
            pkk_row(true, false, lo, 0, s0, pl[2 * h][i], pl[2 * h + 1][i]);
            pkk_row(true, false, hi, 0, s1, pl[2 * h][8 + i], pl[2 * h + 1][8 + i]);
        }
    }
}

/* Q6_K: sub-block s is rows 4(s % 4) .. 4(s % 4) + 3 of step s / 4. */
NTP_INLINE void pkk_q6k_make(const uint8_t *p, pkk_planes pl)
{
    const ntp_pack_q6_K *pk = (const ntp_pack_q6_K *)p;
    for (int s = 0; s < 16; s++) {
        __m512i c[4], s16[2];
        pkk_q6k_codes(pk, s, c);
        pkk_sc16(_mm_loadu_si128((const __m128i *)pk->sc[s]), s16);
        const int h = s / 4;
        for (int v = 0; v < 4; v++)
            pkk_row(true, false, c[v], 32, s16, pl[2 * h][4 * (s % 4) + v],
                    pl[2 * h + 1][4 * (s % 4) + v]);
    }
}

/*
 * Q2_K and Q3_K (q3): code vector (h, v)'s field f is quad v of sub-block
 * 4h + f, row 4f + v of step h; Q3_K's third bit of it is bit s % 8 of
 * hm[s / 8][v]. Q3_K's scales are negated so that every product fits a
 * signed byte; with u8, Q3_K's products get 128 added, an unsigned byte
 * (Q2_K's are 0..45 already).
 */
NTP_INLINE void pkk_q23k_make(bool q3, bool u8, const uint8_t *p, pkk_planes pl, struct pkk_sbs *k)
{
    const ntp_pack_q2_K *p2 = (const ntp_pack_q2_K *)p;
    const ntp_pack_q3_K *p3 = (const ntp_pack_q3_K *)p;
    const __m512i m2 = _mm512_set1_epi8(3);
    __m128i sc[16];
    if (q3) {
        pkk_scales_q3k(p3, sc);
        for (int s = 0; s < 16; s++)
            sc[s] = _mm_sub_epi8(_mm_setzero_si128(), sc[s]);
    } else {
        __m128i mn[16];
        pkk_scales_q2k(p2, sc, mn);
        pkk_pairs(mn, k->mp);
        k->dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p2->dmin));
    }
    for (int h = 0; h < 4; h++)
        for (int f = 0; f < 4; f++) {
            const int s = 4 * h + f;
            __m512i s16[2];
            pkk_sc16(sc[s], s16);
            __m512i c[4];
            if (q3)
                pkk_q3k_codes(p3, s, c);
            else
                for (int v = 0; v < 4; v++)
                    c[v] = _mm512_and_si512(
                        _mm512_srli_epi16(_mm512_loadu_si512((const void *)p2->qs[h][v]),
                                          (unsigned)(2 * f)),
                        m2);
            for (int v = 0; v < 4; v++)
                pkk_row(false, u8 && q3, c[v], q3 ? 4 : 0, s16, pl[h][4 * f + v], NULL);
        }
}

/* The planes of format f's super-block at p, and its scaling; u8: one plane as unsigned bytes. */
NTP_INLINE void pkk_make(enum ntp_type f, bool u8, const uint8_t *p, pkk_planes pl,
                         struct pkk_sbs *k)
{
    k->d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); /* d leads */
    if (f == NTP_TYPE_Q6_K)
        pkk_q6k_make(p, pl);
    else if (f == NTP_TYPE_Q2_K || f == NTP_TYPE_Q3_K)
        pkk_q23k_make(f == NTP_TYPE_Q3_K, u8, p, pl, k);
    else
        pkk_q4k_make(f == NTP_TYPE_Q5_K, p, pl, k);
}

/* ---- what the two plane drivers (amx_kq_drive, pkp_drive) share ---- */

/* A k-quant product's shape: bytes per packed super-block (pb) and group, this thread's groups. */
struct pkk_shape {
    int64_t nsb;
    size_t pb, gbytes;
    int64_t g0, g1;
};

static inline struct pkk_shape pkk_shape(enum ntp_type f, const struct ntp_matmul_args *a)
{
    struct pkk_shape s = {a->k / NTP_QK_K, NTP_PACK_ROWS * ntp_type_get_traits(f)->type_size, 0, 0,
                          0};
    s.gbytes = (size_t)s.nsb * s.pb;
    ntp__slice(a->n_rows / NTP_PACK_ROWS, a->ith, a->nth, &s.g0, &s.g1);
    return s;
}

/*
 * A group's output rows for a block of tokens from t1 and the chunk of n
 * super-blocks from s0: y's, and, where the chunk ends a gated FFN's up
 * product (a->glu), g's, into which the sums go gated instead.
 */
struct pkk_rows {
    float *y, *g; /* g: NULL unless glu */
    ntp_glu_fn glu;
    int64_t ld;
    bool first; /* the row's first chunk: y not read */
};

static inline struct pkk_rows pkk_rows(const struct ntp_matmul_args *a, const struct pkk_shape *s,
                                       int64_t t1, int64_t s0, int64_t n, int64_t grp)
{
    const size_t o = (size_t)(t1 * a->ldy + grp * NTP_PACK_ROWS);
    const bool gate = a->glu && s0 + n == s->nsb;
    return (struct pkk_rows){a->y + o, gate ? a->g + o : NULL, gate ? a->glu : NULL, a->ldy,
                             s0 == 0};
}

/*
 * A group's float sums of nt tokens into acc, zeros at a row's first chunk:
 * the chain of the tiles' sums goes on.
 */
NTP_INLINE void pkk_acc_in(float (*acc)[16], int64_t nt, const struct pkk_rows *r)
{
    for (int64_t t = 0; t < nt; t++)
        _mm512_store_ps(acc[t], r->first ? _mm512_setzero_ps() : _mm512_loadu_ps(r->y + t * r->ld));
}

/* ... and out of it at the chunk's end: into y, or gated into g, g = glu(g, the sums). */
NTP_INLINE void pkk_acc_out(const float (*acc)[16], int64_t nt, const struct pkk_rows *r)
{
    for (int64_t t = 0; t < nt; t++)
        if (r->glu)
            r->glu(r->g + t * r->ld, r->g + t * r->ld, acc[t], 16);
        else
            _mm512_storeu_ps(r->y + t * r->ld, _mm512_load_ps(acc[t]));
}

/*
 * The gate (a->glu) of a call whose sums another driver left in y:
 * g = glu(g, y) on this thread's groups.
 */
static inline void pkk_glu_after(const struct ntp_matmul_args *a)
{
    const struct pkk_shape s = pkk_shape(a->wtype, a);
    const size_t o = (size_t)s.g0 * NTP_PACK_ROWS;
    for (int64_t t = 0; a->glu && t < a->n_tok; t++)
        a->glu(a->g + t * a->ldy + o, a->g + t * a->ldy + o, a->y + t * a->ldy + o,
               (s.g1 - s.g0) * NTP_PACK_ROWS);
}

/*
 * What a group's tiles prefetch while they run: the weight bytes that
 * follow theirs and the next group's output rows. Each of m tiles issues
 * its share of the lines (pkk_pf_tile), so that the misses overlap the
 * products instead of filling the line buffers in one burst. The output
 * rows are fetched for writing: left cold, a tile's 64-byte stores of its
 * float sums each waited for its line and held up every store behind them
 * (pp512 faster so: with AMX, a TinyLlama Q4_K_M file by 9 %, 4-block
 * Q4_0, Q5_1 and Q8_0 files by 9-19 %; on AVX-512 the k-quant file by 9 %,
 * the legacy tiles, which write y themselves, not at all).
 */
struct pkk_pf {
    const char *w, *o[2];
    int64_t wl, ol; /* lines of w, rows of each o */
    size_t ldo;     /* bytes between rows */
};

/* bytes at w (NULL: none), and rows rows of o0 and o1 (NULL: none), ld floats apart */
static inline struct pkk_pf pkk_pf_of(const void *w, size_t bytes, const float *o0, const float *o1,
                                      int64_t rows, int64_t ld)
{
    return (struct pkk_pf){(const char *)w,
                           {(const char *)o0, (const char *)o1},
                           w ? (int64_t)((bytes + 63) / 64) : 0,
                           rows,
                           (size_t)ld * sizeof(float)};
}

/*
 * A k-quant driver's, over super-block sb of its group's chunk p of n: the
 * next super-block's bytes, or the chunk's first of the group `ahead`
 * groups on (more: there is one), and share sb of that group's rows (r:
 * this group's), y's where pkk_acc_in reads them or pkk_acc_out writes
 * them, g's where acc_out gates into g.
 */
static inline struct pkk_pf pkk_pf(const uint8_t *p, int64_t sb, int64_t n,
                                   const struct pkk_shape *s, bool more, int64_t ahead,
                                   const struct pkk_rows *r, int64_t nt)
{
    const uint8_t *w = sb + 1 < n ? p + (size_t)(sb + 1) * s->pb
                       : more     ? p + (size_t)ahead * s->gbytes
                                  : NULL;
    const int64_t r0 = nt * sb / n, o = r0 * r->ld + ahead * NTP_PACK_ROWS;
    return pkk_pf_of(w, s->pb, more && (!r->first || !r->glu) ? r->y + o : NULL,
                     more && r->glu ? r->g + o : NULL, nt * (sb + 1) / n - r0, r->ld);
}

/* Tile i of m's share of what pkk_pf names. */
NTP_INLINE void pkk_pf_tile(const struct pkk_pf *f, int64_t i, int64_t m)
{
    for (int64_t l = f->wl * i / m; l < f->wl * (i + 1) / m; l++)
        _mm_prefetch(f->w + 64 * l, _MM_HINT_T0);
    for (int j = 0; j < 2; j++)
        for (int64_t r = f->ol * i / m; f->o[j] && r < f->ol * (i + 1) / m; r++)
            _mm_prefetch(f->o[j] + (size_t)r * f->ldo, _MM_HINT_ET0);
}

/*
 * Groups per run: packed.c's k-quant driver and amx.c's driver pass every
 * token tile over a run of groups before the next, so that a prefill reads
 * the weights from memory once and from L2 for the other tiles, not once
 * per tile of tokens. PKK_RUN bytes, which x86 L2s (1-2 MiB) hold with room
 * to spare. (packed.c's legacy driver keeps its order: it would tabulate
 * each tile's activations once per run, and measured no gain; AMX, whose
 * tiles go through a group faster than memory delivers it, needs the runs.)
 */
#define PKK_RUN ((size_t)384 << 10)

static inline int64_t pkk_run(size_t gbytes)
{
    return gbytes == 0 || gbytes >= PKK_RUN ? 1 : (int64_t)(PKK_RUN / gbytes);
}

#endif /* NTP_KERNELS_X86_PACKED_INT_H */
