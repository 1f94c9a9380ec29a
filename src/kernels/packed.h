/*
 * packed.h - the row-interleaved ("packed") weight layout. A kernel library
 * that has a faster product for it asks for it through its table's pack
 * entry (kernels.h); the CPU device then rearranges a matrix in place once,
 * at load, in the node-local buffer it was uploaded to: the same bytes, no
 * second copy.
 *
 * Why. In the file's layout one row's block is a short vector that each
 * kernel must reduce across lanes and scale on its own. Interleaving 16 rows
 * turns every step into a 16-lane vector op: a 512-bit vpdpbusd multiplies
 * 4 codes of each of 16 rows by the same 4 activation codes (one broadcast),
 * and a block's scales become one vector. Decode then needs ~1/6 of the
 * instructions per weight byte and prefill uses the integer units ~4x better
 * (bench/RESULTS.md, "Packed weights").
 *
 * Layout. A matrix of n_rows rows (a multiple of NTP_PACK_ROWS) and k
 * elements per row is cut into groups of 16 rows; group g, block b is a
 * packed block at byte (g * nb + b) * 16 * S, with nb blocks per row and S
 * the size of the format's own block, so the matrix keeps its size. Within
 * a packed block, r is the row in the group (0..15), q_r[e] the code of its
 * element e as the format defines it (blocks.h), and every 64 bytes of codes
 * hold four consecutive codes of each of the 16 rows: byte 4r + j.
 *
 *   Q4_0 (288 bytes)   ntp_f16 d[16]            d[r] = row r's scale
 *                      uint8_t qs[4][64]        qs[c][4r+j] = q_r[4c+j] | q_r[16+4c+j] << 4
 *   Q8_0 (544 bytes)   ntp_f16 d[16]
 *                      uint8_t qs[8][64]        qs[c][4r+j] = q_r[4c+j] + 128 (unsigned)
 *   Q4_K (2304 bytes)  ntp_f16 d[16], dmin[16]
 *                      uint8_t sc[12][16]       sc[i][r] = row r's scales[i]
 *                      uint8_t qs[4][8][64]     qs[c][i][4r+j] = row r's qs[32c + 4i + j]:
 *                                               q_r[64c+4i+j] | q_r[64c+32+4i+j] << 4
 *   Q6_K (3360 bytes)  ntp_f16 d[16]
 *                      int8_t sc[16][16]        sc[s][r] = row r's scales[s]
 *                      uint8_t q[16][3][64]     q[s][v][4r+j] = q_r[16s+4v+j]
 *                                               | (bits 2v, 2v+1 of q_r[16s+12+j]) << 6
 *
 * Q6_K's codes are the 6-bit values 0..63 (the file's ql | qh << 4, weight
 * code + 32). Sub-block s (16 elements, one scale) is three 64-byte vectors:
 * the codes of its first 12 elements of every row in bits 0-5, and the last
 * 4 split over the three vectors' bits 6-7, so that all four code vectors
 * of a sub-block come out with 9 bitwise operations.
 */
#ifndef NTP_KERNELS_PACKED_H
#define NTP_KERNELS_PACKED_H

#include "ntp.h"

#include <stddef.h>
#include <stdint.h>

#define NTP_PACK_ROWS 16 /* rows interleaved in one group */

/*
 * Pack rows [0, 16) of type t (row r at src + r * src_stride, k elements
 * each) into dst (16 rows' bytes, one group over the whole row). t must be
 * a packable type (ntp__pack_supported) and k a multiple of its block.
 */
void ntp__pack_group(enum ntp_type t, void *dst, const void *src, size_t src_stride, int64_t k);

/* The inverse: one group back to 16 rows in the file's layout. */
void ntp__unpack_group(enum ntp_type t, void *dst, size_t dst_stride, const void *src, int64_t k);

/* Whether t has a packed layout (Q4_0, Q8_0, Q4_K, Q6_K). */
bool ntp__pack_supported(enum ntp_type t);

#endif /* NTP_KERNELS_PACKED_H */
