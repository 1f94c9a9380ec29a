/*
 * blocks.h - the GGUF/ggml block formats, byte for byte as ggml lays them out
 * (ggml-common.h), so tensors from a GGUF file are used in place. Shared by
 * the reference kernels and by every ISA (AVX2, AVX-512, CUDA): the comments
 * below are the format definition those kernels rely on.
 *
 * Notation. A block covers QK (32) or QK_K (256) consecutive elements x[0..]
 * of one row. "q" is the unsigned code stored in the bits, "d" a scale, "m"
 * or "dmin" a scale of the minimum. Scales are IEEE binary16 (ntp_f16) unless
 * the field says otherwise; bytes hold two 4-bit codes as low nibble first.
 * Every struct is naturally aligned to 2 bytes (4 for Q8_K) and has no
 * padding: the _Static_asserts check the sizes against the type table
 * (src/core/type.c) and ggml.
 */
#ifndef NTP_KERNELS_BLOCKS_H
#define NTP_KERNELS_BLOCKS_H

#include "core/half.h"

#include <stdint.h>

#define NTP_QK   32  /* elements per block of the legacy formats (Q4_0 .. Q8_1) */
#define NTP_QK_K 256 /* elements per super-block of the k-quants (Q2_K .. Q8_K) */

/* ------------------------------------------------------- legacy, 32 per block */

/*
 * Q4_0: x[j] = (q[j] - 8) * d, q in 0..15.
 * Element j < 16 is the low nibble of qs[j]; element j + 16 the high nibble
 * of qs[j] (the two halves of the block are interleaved per byte, not
 * neighbours).
 */
typedef struct ntp_block_q4_0 {
    ntp_f16 d;              /* scale */
    uint8_t qs[NTP_QK / 2]; /* codes: qs[j] = q[j] | q[j + 16] << 4 */
} ntp_block_q4_0;

/* Q4_1: x[j] = q[j] * d + m, q in 0..15; nibbles ordered as Q4_0. */
typedef struct ntp_block_q4_1 {
    ntp_f16 d;              /* scale */
    ntp_f16 m;              /* minimum (offset added to every element) */
    uint8_t qs[NTP_QK / 2]; /* codes: qs[j] = q[j] | q[j + 16] << 4 */
} ntp_block_q4_1;

/*
 * Q5_0: x[j] = (q[j] - 16) * d, q in 0..31. The low 4 bits of q are packed
 * as in Q4_0; bit 4 of q[j] is bit j of the little-endian 32-bit word qh
 * (so qh[0] bit 0 is element 0, qh[3] bit 7 is element 31).
 */
typedef struct ntp_block_q5_0 {
    ntp_f16 d;              /* scale */
    uint8_t qh[4];          /* fifth bits: bit j of the LE uint32 = bit 4 of q[j] */
    uint8_t qs[NTP_QK / 2]; /* low 4 bits: qs[j] = (q[j] & 15) | (q[j + 16] & 15) << 4 */
} ntp_block_q5_0;

/* Q5_1: x[j] = q[j] * d + m, q in 0..31; bits packed as Q5_0. */
typedef struct ntp_block_q5_1 {
    ntp_f16 d;              /* scale */
    ntp_f16 m;              /* minimum (offset added to every element) */
    uint8_t qh[4];          /* fifth bits: bit j of the LE uint32 = bit 4 of q[j] */
    uint8_t qs[NTP_QK / 2]; /* low 4 bits: qs[j] = (q[j] & 15) | (q[j + 16] & 15) << 4 */
} ntp_block_q5_1;

/* Q8_0: x[j] = qs[j] * d, qs signed -127..127 (-128 is never produced). */
typedef struct ntp_block_q8_0 {
    ntp_f16 d;         /* scale */
    int8_t qs[NTP_QK]; /* codes, element j in qs[j] */
} ntp_block_q8_0;

/*
 * Q8_1: the activation partner of Q4_1/Q5_1. x[j] = qs[j] * d as Q8_0;
 * s = d * sum(qs) lets a dot product with an offset format add m * s once
 * per block instead of m per element.
 */
typedef struct ntp_block_q8_1 {
    ntp_f16 d;         /* scale */
    ntp_f16 s;         /* d * sum of the 32 qs, rounded to binary16 */
    int8_t qs[NTP_QK]; /* codes, element j in qs[j] */
} ntp_block_q8_1;

/* ------------------------------------------------ k-quants, 256 per block */

/*
 * Q2_K: 16 sub-blocks of 16 elements; sub-block s has 4-bit scale sc and
 * 4-bit min mn in scales[s] (sc low nibble, mn high nibble):
 *     x = d * sc * q - dmin * mn,   q in 0..3.
 * Codes: the block is two halves of 128 elements, each using 32 bytes of qs.
 * In half h, element 128h + 32k + l (k = 0..3, l = 0..31) is bits 2k..2k+1
 * of qs[32h + l]. So sub-block s covers elements 16s..16s+15.
 */
typedef struct ntp_block_q2_K {
    uint8_t scales[NTP_QK_K / 16]; /* per sub-block: scale (bits 0-3) | min (bits 4-7) */
    uint8_t qs[NTP_QK_K / 4];      /* 2-bit codes, packed as described above */
    ntp_f16 d;                     /* super-block scale of the 4-bit scales */
    ntp_f16 dmin;                  /* super-block scale of the 4-bit mins */
} ntp_block_q2_K;

/*
 * Q3_K: 16 sub-blocks of 16 elements, signed 6-bit scales, no min:
 *     x = d * (sc - 32) * (q - 4),   q in 0..7 (so q - 4 in -4..3).
 * Low two bits of q: packed as Q2_K's qs. High bit of q: element
 * 32k + l (k = 0..7, l = 0..31) is bit k of hmask[l]; a SET bit means q >= 4
 * (the dequantizer subtracts 4 when the bit is clear).
 * Scales: sc[s] is 6 bits, sc in 0..63 stored with offset 32.
 *     low 4 bits:  s < 8: scales[s] & 15;  s >= 8: scales[s - 8] >> 4
 *     high 2 bits: (scales[8 + s % 4] >> (2 * (s / 4))) & 3
 */
typedef struct ntp_block_q3_K {
    uint8_t hmask[NTP_QK_K / 8]; /* high (third) bits of the codes */
    uint8_t qs[NTP_QK_K / 4];    /* low two bits of the codes, packed as Q2_K */
    uint8_t scales[12];          /* sixteen 6-bit scales, packed as described above */
    ntp_f16 d;                   /* super-block scale */
} ntp_block_q3_K;

/*
 * Q4_K: 8 sub-blocks of 32 elements with 6-bit scale sc and 6-bit min mn:
 *     x = d * sc * q - dmin * mn,   q in 0..15.
 * Scales (s = sub-block 0..7):
 *     s < 4:  sc = scales[s] & 63,  mn = scales[s + 4] & 63
 *     s >= 4: sc = (scales[s + 4] & 15) | (scales[s - 4] >> 6) << 4
 *             mn = (scales[s + 4] >> 4) | (scales[s] >> 6) << 4
 * (bytes 0-3 carry sc 0-3 plus the top bits of sc 4-7, bytes 4-7 carry
 * mn 0-3 plus the top bits of mn 4-7, bytes 8-11 the low nibbles of
 * sc/mn 4-7.)
 * Codes: qs holds four 32-byte chunks; chunk c covers sub-blocks 2c (low
 * nibbles) and 2c+1 (high nibbles): element 64c + l is qs[32c + l] & 15,
 * element 64c + 32 + l is qs[32c + l] >> 4.
 */
typedef struct ntp_block_q4_K {
    ntp_f16 d;                /* super-block scale of the 6-bit scales */
    ntp_f16 dmin;             /* super-block scale of the 6-bit mins */
    uint8_t scales[12];       /* eight 6-bit scales and eight 6-bit mins */
    uint8_t qs[NTP_QK_K / 2]; /* 4-bit codes, packed as described above */
} ntp_block_q4_K;

/*
 * Q5_K: as Q4_K with 5-bit codes, q in 0..31. Low 4 bits in qs as Q4_K;
 * bit 4 of element 32s + l (sub-block s = 0..7, l = 0..31) is bit s of qh[l].
 */
typedef struct ntp_block_q5_K {
    ntp_f16 d;                /* super-block scale of the 6-bit scales */
    ntp_f16 dmin;             /* super-block scale of the 6-bit mins */
    uint8_t scales[12];       /* scales and mins, packed as Q4_K */
    uint8_t qh[NTP_QK_K / 8]; /* fifth bits of the codes */
    uint8_t qs[NTP_QK_K / 2]; /* low 4 bits of the codes, packed as Q4_K */
} ntp_block_q5_K;

/*
 * Q6_K: 16 sub-blocks of 16 elements with signed 8-bit scales:
 *     x = d * scales[s] * (q - 32),   q in 0..63.
 * Two halves of 128 elements; half h uses ql[64h .. 64h+63] and
 * qh[32h .. 32h+31]. In half h, for l = 0..31:
 *     element 128h +      l: low 4 = ql[64h + l] & 15,       high 2 = qh[32h + l] bits 0-1
 *     element 128h + 32 + l: low 4 = ql[64h + 32 + l] & 15,  high 2 = bits 2-3
 *     element 128h + 64 + l: low 4 = ql[64h + l] >> 4,       high 2 = bits 4-5
 *     element 128h + 96 + l: low 4 = ql[64h + 32 + l] >> 4,  high 2 = bits 6-7
 */
typedef struct ntp_block_q6_K {
    uint8_t ql[NTP_QK_K / 2];     /* low 4 bits of the codes */
    uint8_t qh[NTP_QK_K / 4];     /* high 2 bits of the codes */
    int8_t scales[NTP_QK_K / 16]; /* signed scale per 16-element sub-block */
    ntp_f16 d;                    /* super-block scale */
} ntp_block_q6_K;

/*
 * Q8_K: the activation partner of the k-quants. x[j] = d * qs[j]; the scale
 * is a full float. bsums[g] = sum of qs[16g .. 16g+15], precomputed so that
 * dot products with formats that have mins (Q2_K, Q4_K, Q5_K) or offsets
 * (Q3_K, Q6_K) apply them per sub-block instead of per element.
 */
typedef struct ntp_block_q8_K {
    float d;                      /* scale (binary32) */
    int8_t qs[NTP_QK_K];          /* codes -127..127, element j in qs[j] */
    int16_t bsums[NTP_QK_K / 16]; /* sums of each 16 consecutive qs */
} ntp_block_q8_K;

/* Bytes per block, written as src/core/type.c writes them (test_quants compares the two). */
_Static_assert(sizeof(ntp_block_q4_0) == 2 + NTP_QK / 2, "Q4_0 block is 18 bytes");
_Static_assert(sizeof(ntp_block_q4_1) == 4 + NTP_QK / 2, "Q4_1 block is 20 bytes");
_Static_assert(sizeof(ntp_block_q5_0) == 2 + 4 + NTP_QK / 2, "Q5_0 block is 22 bytes");
_Static_assert(sizeof(ntp_block_q5_1) == 4 + 4 + NTP_QK / 2, "Q5_1 block is 24 bytes");
_Static_assert(sizeof(ntp_block_q8_0) == 2 + NTP_QK, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(ntp_block_q8_1) == 4 + NTP_QK, "Q8_1 block is 36 bytes");
_Static_assert(sizeof(ntp_block_q2_K) == NTP_QK_K / 16 + NTP_QK_K / 4 + 4,
               "Q2_K block is 84 bytes");
_Static_assert(sizeof(ntp_block_q3_K) == NTP_QK_K / 8 + NTP_QK_K / 4 + 12 + 2,
               "Q3_K block is 110 bytes");
_Static_assert(sizeof(ntp_block_q4_K) == 4 + 12 + NTP_QK_K / 2, "Q4_K block is 144 bytes");
_Static_assert(sizeof(ntp_block_q5_K) == 4 + 12 + NTP_QK_K / 8 + NTP_QK_K / 2,
               "Q5_K block is 176 bytes");
_Static_assert(sizeof(ntp_block_q6_K) == NTP_QK_K / 2 + NTP_QK_K / 4 + NTP_QK_K / 16 + 2,
               "Q6_K block is 210 bytes");
_Static_assert(sizeof(ntp_block_q8_K) == 4 + NTP_QK_K + NTP_QK_K / 16 * 2,
               "Q8_K block is 292 bytes");

#endif /* NTP_KERNELS_BLOCKS_H */
