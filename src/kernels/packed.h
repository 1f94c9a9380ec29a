/*
 * packed.h - the row-interleaved ("packed") weight layouts (enum
 * ntp_pack_layout, kernels.h). A kernel library that has a faster product
 * for a layout asks for it through its table's pack entry; the CPU device
 * then rearranges a matrix in place once, at load, in the node-local buffer
 * it was uploaded to: the same bytes, no second copy. NTP_PACK_R16 is the
 * only layout so far; another (AMX tiles, ARM's) gets its own enum value,
 * block structs and cases in src/kernels/ref/pack.c.
 *
 * Why. In the file's layout one row's block is a short vector that each
 * kernel must reduce across lanes and scale on its own. Interleaving 16 rows
 * turns every step into a 16-lane vector op: a 512-bit vpdpbusd multiplies
 * 4 codes of each of 16 rows by the same 4 activation codes (one broadcast),
 * and a block's scales become one vector. Decode then needs ~1/6 of the
 * instructions per weight byte and prefill uses the integer units ~4x better
 * (bench/RESULTS.md, "Packed weights").
 *
 * NTP_PACK_R16. A matrix of n_rows rows (a multiple of NTP_PACK_ROWS) and k
 * elements per row is cut into groups of 16 rows; group g, block b is a
 * packed block at byte (g * nb + b) * 16 * S, with nb blocks per row and S
 * the size of the format's own block, so the matrix keeps its size. Within
 * a packed block, r is the row in the group (0..15), q_r[e] the code of its
 * element e as the format defines it (blocks.h), and every 64 bytes of codes
 * hold four consecutive codes of each of the 16 rows: byte 4r + j. The
 * packed blocks are the ntp_pack_* structs below:
 *
 *   Q4_0: qs[c][4r+j] = q_r[4c+j] | q_r[16+4c+j] << 4
 *   Q4_1: d[r], m[r]; qs as Q4_0
 *   Q5_0: qs[c][4r+j] = (q_r[4c+j] & 15) | (q_r[16+4c+j] & 15) << 4
 *         qh[4r+j] = bit c: bit 4 of q_r[4c+j], bit 4+c: bit 4 of q_r[16+4c+j] (c = 0..3)
 *   Q5_1: d[r], m[r]; qh and qs as Q5_0
 *   Q8_0: qs[c][4r+j] = q_r[4c+j] + 128 (unsigned)
 *   Q2_K: sc[s][r] = row r's scales[s]
 *         qs[g][v][4r+j] bits 2f, 2f+1 = q_r[16(4g+f)+4v+j] (f = 0..3)
 *   Q3_K: sc[i][r] = row r's scales[i]
 *         qs: the low two bits of the codes, as Q2_K's
 *         hm[h][v][4r+j] bit b = bit 2 of q_r[16(8h+b)+4v+j]
 *   Q4_K: sc[i][r] = row r's scales[i]
 *         qs[c][i][4r+j] = row r's qs[32c + 4i + j]: q_r[64c+4i+j] | q_r[64c+32+4i+j] << 4
 *   Q5_K: d, dmin, sc as Q4_K; qs as Q4_K with the low 4 bits of the codes
 *         qh[i][4r+j] = row r's qh[4i + j]: bit s is bit 4 of q_r[32s+4i+j]
 *   Q6_K: sc[s][r] = row r's scales[s]
 *         q[s][v][4r+j] = q_r[16s+4v+j] | (bits 2v, 2v+1 of q_r[16s+12+j]) << 6
 *
 * Q2_K's code vector (g, v) holds quad v of the four sub-blocks 4g..4g+3,
 * one per 2-bit field: an AND gives a sub-block's codes times 4^f, and its
 * scale carries the 4^-f (exact). Q3_K adds eight vectors of third bits,
 * one bit per sub-block in each byte, which a kernel moves next to the
 * 2-bit field as the 5-bit formats do.
 *
 * Q6_K's codes are the 6-bit values 0..63 (the file's ql | qh << 4, weight
 * code + 32). Sub-block s (16 elements, one scale) is three 64-byte vectors:
 * the codes of its first 12 elements of every row in bits 0-5, and the last
 * 4 split over the three vectors' bits 6-7, so that all four code vectors
 * of a sub-block come out with 9 bitwise operations.
 *
 * The 5-bit formats keep Q4_0's and Q4_K's nibbles and add 64-byte vectors
 * of fifth bits (one per block of Q5_0/Q5_1, eight per super-block of
 * Q5_K) whose byte 4r+j holds the fifth bits of the codes in byte 4r+j of
 * several code vectors: for code vector c of Q5_0/Q5_1 bits c (low nibbles)
 * and 4+c (high); for Q5_K's code vector (c, i) bits 2c and 2c+1 of qh[i],
 * the sub-blocks of its low and high nibbles. A kernel moves one bit to
 * bit 4 with a shift and an AND and merges it with the nibble in one bit
 * select.
 */
#ifndef NTP_KERNELS_PACKED_H
#define NTP_KERNELS_PACKED_H

#include "kernels/blocks.h"
#include "kernels/kernels.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NTP_PACK_ROWS 16 /* rows interleaved in one group of NTP_PACK_R16 */

/* The packed blocks of NTP_PACK_R16: 16 rows' blocks of one format, r = row in the group. */
typedef struct ntp_pack_q4_0 {
    ntp_f16 d[NTP_PACK_ROWS];   /* d[r] = row r's scale */
    uint8_t qs[NTP_QK / 8][64]; /* 4 codes of each row per 64 bytes, two per byte */
} ntp_pack_q4_0;

typedef struct ntp_pack_q4_1 {
    ntp_f16 d[NTP_PACK_ROWS], m[NTP_PACK_ROWS]; /* each row's scale and minimum */
    uint8_t qs[NTP_QK / 8][64];                 /* as Q4_0 */
} ntp_pack_q4_1;

typedef struct ntp_pack_q5_0 {
    ntp_f16 d[NTP_PACK_ROWS];   /* d[r] = row r's scale */
    uint8_t qh[64];             /* the fifth bits, one byte per 4 codes of each row's 32 */
    uint8_t qs[NTP_QK / 8][64]; /* the low 4 bits, as Q4_0 */
} ntp_pack_q5_0;

typedef struct ntp_pack_q5_1 {
    ntp_f16 d[NTP_PACK_ROWS], m[NTP_PACK_ROWS]; /* each row's scale and minimum */
    uint8_t qh[64];                             /* as Q5_0 */
    uint8_t qs[NTP_QK / 8][64];                 /* as Q5_0 */
} ntp_pack_q5_1;

typedef struct ntp_pack_q8_0 {
    ntp_f16 d[NTP_PACK_ROWS];   /* d[r] = row r's scale */
    uint8_t qs[NTP_QK / 4][64]; /* 4 codes of each row per 64 bytes, plus 128 */
} ntp_pack_q8_0;

typedef struct ntp_pack_q4_K {
    ntp_f16 d[NTP_PACK_ROWS], dmin[NTP_PACK_ROWS]; /* each row's super-block scales */
    uint8_t sc[12][NTP_PACK_ROWS];                 /* sc[i][r] = row r's scales[i] */
    uint8_t qs[4][8][64];                          /* chunk c, dword i of every row */
} ntp_pack_q4_K;

typedef struct ntp_pack_q2_K {
    ntp_f16 d[NTP_PACK_ROWS], dmin[NTP_PACK_ROWS]; /* each row's super-block scales */
    uint8_t sc[NTP_QK_K / 16][NTP_PACK_ROWS];      /* sc[s][r] = row r's scales[s] */
    uint8_t qs[4][4][64]; /* sub-blocks 4g..4g+3, quad v: one 2-bit field each */
} ntp_pack_q2_K;

typedef struct ntp_pack_q3_K {
    ntp_f16 d[NTP_PACK_ROWS];      /* each row's super-block scale */
    uint8_t sc[12][NTP_PACK_ROWS]; /* sc[i][r] = row r's scales[i] */
    uint8_t qs[4][4][64];          /* the low two bits of the codes, as Q2_K */
    uint8_t hm[2][4][64];          /* the third bits: sub-blocks 8h..8h+7, quad v */
} ntp_pack_q3_K;

/* Q5_K: Q4_K's group (same offsets) followed by the fifth bits. */
typedef struct ntp_pack_q5_K {
    ntp_f16 d[NTP_PACK_ROWS], dmin[NTP_PACK_ROWS]; /* each row's super-block scales */
    uint8_t sc[12][NTP_PACK_ROWS];                 /* sc[i][r] = row r's scales[i] */
    uint8_t qs[4][8][64];                          /* the low 4 bits, as Q4_K */
    uint8_t qh[8][64];                             /* qh[i]: dword i of every row's qh */
} ntp_pack_q5_K;

typedef struct ntp_pack_q6_K {
    ntp_f16 d[NTP_PACK_ROWS];                /* each row's super-block scale */
    int8_t sc[NTP_QK_K / 16][NTP_PACK_ROWS]; /* sc[s][r] = row r's scales[s] */
    uint8_t q[NTP_QK_K / 16][3][64];         /* sub-block s: three vectors of 6-bit codes */
} ntp_pack_q6_K;

/* A group keeps the size of its 16 rows. */
_Static_assert(sizeof(ntp_pack_q4_0) == NTP_PACK_ROWS * sizeof(ntp_block_q4_0), "Q4_0 group");
_Static_assert(sizeof(ntp_pack_q4_1) == NTP_PACK_ROWS * sizeof(ntp_block_q4_1), "Q4_1 group");
_Static_assert(sizeof(ntp_pack_q5_0) == NTP_PACK_ROWS * sizeof(ntp_block_q5_0), "Q5_0 group");
_Static_assert(sizeof(ntp_pack_q5_1) == NTP_PACK_ROWS * sizeof(ntp_block_q5_1), "Q5_1 group");
_Static_assert(sizeof(ntp_pack_q8_0) == NTP_PACK_ROWS * sizeof(ntp_block_q8_0), "Q8_0 group");
_Static_assert(sizeof(ntp_pack_q2_K) == NTP_PACK_ROWS * sizeof(ntp_block_q2_K), "Q2_K group");
_Static_assert(sizeof(ntp_pack_q3_K) == NTP_PACK_ROWS * sizeof(ntp_block_q3_K), "Q3_K group");
_Static_assert(sizeof(ntp_pack_q4_K) == NTP_PACK_ROWS * sizeof(ntp_block_q4_K), "Q4_K group");
_Static_assert(sizeof(ntp_pack_q5_K) == NTP_PACK_ROWS * sizeof(ntp_block_q5_K), "Q5_K group");
_Static_assert(sizeof(ntp_pack_q6_K) == NTP_PACK_ROWS * sizeof(ntp_block_q6_K), "Q6_K group");

/*
 * Pack rows [0, 16) of type t (row r at src + r * src_stride, k elements
 * each) into dst (16 rows' bytes, one group over the whole row) in layout l.
 * (l, t) must be packable (ntp__pack_supported) and k a multiple of t's block.
 */
void ntp__pack_group(enum ntp_pack_layout l, enum ntp_type t, void *dst, const void *src,
                     size_t src_stride, int64_t k);

/* The inverse: one group back to 16 rows in the file's layout. */
void ntp__unpack_group(enum ntp_pack_layout l, enum ntp_type t, void *dst, size_t dst_stride,
                       const void *src, int64_t k);

/* Whether t has layout l (NTP_PACK_R16: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K .. Q6_K). */
bool ntp__pack_supported(enum ntp_pack_layout l, enum ntp_type t);

#endif /* NTP_KERNELS_PACKED_H */
