/*
 * pack.c - the packed weight layout (kernels/packed.h): rows of the file's
 * blocks to 16-row groups and back. Scalar, run once per matrix at load
 * (and by the tests); the layout itself is defined in packed.h.
 */
#include "kernels/packed.h"

#include "kernels/blocks.h"

#include <string.h>

bool ntp__pack_supported(enum ntp_type t)
{
    return t == NTP_TYPE_Q4_0 || t == NTP_TYPE_Q8_0;
}

/* Bytes of one packed block (16 rows of one 32-element block) of t. */
static size_t packed_block_bytes(enum ntp_type t)
{
    return NTP_PACK_ROWS *
           (t == NTP_TYPE_Q4_0 ? sizeof(ntp_block_q4_0) : sizeof(ntp_block_q8_0));
}

/* Row r's block b of type t in the file's layout, at rows + r * stride. */
static uint8_t *row_block(enum ntp_type t, const void *rows, size_t stride, int r, int64_t b)
{
    const size_t bb = t == NTP_TYPE_Q4_0 ? sizeof(ntp_block_q4_0) : sizeof(ntp_block_q8_0);
    return (uint8_t *)rows + (size_t)r * stride + (size_t)b * bb;
}

void ntp__pack_group(enum ntp_type t, void *dst, const void *src, size_t src_stride, int64_t k)
{
    const size_t pb = packed_block_bytes(t);
    for (int64_t b = 0; b < k / NTP_QK; b++) {
        uint8_t *p = (uint8_t *)dst + (size_t)b * pb;
        ntp_f16 *d = (ntp_f16 *)p;
        uint8_t *qs = p + NTP_PACK_ROWS * sizeof(ntp_f16);
        for (int r = 0; r < NTP_PACK_ROWS; r++) {
            const uint8_t *blk = row_block(t, src, src_stride, r, b);
            memcpy(&d[r], blk, sizeof(ntp_f16));
            if (t == NTP_TYPE_Q4_0) {
                const uint8_t *q = ((const ntp_block_q4_0 *)blk)->qs;
                /* q[e] is the low nibble of q[e] (e < 16), q[16 + e] its high nibble. */
                for (int c = 0; c < 4; c++)
                    for (int j = 0; j < 4; j++)
                        qs[64 * c + 4 * r + j] = q[4 * c + j];
            } else {
                const int8_t *q = ((const ntp_block_q8_0 *)blk)->qs;
                for (int c = 0; c < 8; c++)
                    for (int j = 0; j < 4; j++)
                        qs[64 * c + 4 * r + j] = (uint8_t)(q[4 * c + j] + 128);
            }
        }
    }
}

void ntp__unpack_group(enum ntp_type t, void *dst, size_t dst_stride, const void *src, int64_t k)
{
    const size_t pb = packed_block_bytes(t);
    for (int64_t b = 0; b < k / NTP_QK; b++) {
        const uint8_t *p = (const uint8_t *)src + (size_t)b * pb;
        const uint8_t *qs = p + NTP_PACK_ROWS * sizeof(ntp_f16);
        for (int r = 0; r < NTP_PACK_ROWS; r++) {
            uint8_t *blk = row_block(t, dst, dst_stride, r, b);
            memcpy(blk, p + r * sizeof(ntp_f16), sizeof(ntp_f16));
            if (t == NTP_TYPE_Q4_0) {
                uint8_t *q = ((ntp_block_q4_0 *)blk)->qs;
                for (int c = 0; c < 4; c++)
                    for (int j = 0; j < 4; j++)
                        q[4 * c + j] = qs[64 * c + 4 * r + j];
            } else {
                int8_t *q = ((ntp_block_q8_0 *)blk)->qs;
                for (int c = 0; c < 8; c++)
                    for (int j = 0; j < 4; j++)
                        q[4 * c + j] = (int8_t)(qs[64 * c + 4 * r + j] - 128);
            }
        }
    }
}
