/*
 * quant.h - reference (scalar C) quantization and dequantization of rows in
 * every block format numatp computes with. These functions define truth: the
 * ISA kernels are tested against them, and their dequantizers reproduce
 * ggml's dequantize_row_* bit for bit (same operations in the same order).
 *
 * A row is n consecutive elements; n must be a multiple of the type's block
 * size (ntp_type_get_traits(t)->block_size). Quantized output is
 * ntp_type_row_size(t, n) bytes. Pure functions: no allocation, no threads,
 * no global state; the same input always gives the same bytes.
 */
#ifndef NTP_KERNELS_QUANT_H
#define NTP_KERNELS_QUANT_H

#include "ntp.h"

#include <stdint.h>

/*
 * Per-format row functions without argument checks, for hot paths (e.g. a
 * matmul quantizing its activations) that validated the sizes once. n is a
 * multiple of the block size, x and y do not overlap.
 */
typedef void (*ntp_quantize_row_fn)(const float *x, void *y, int64_t n);
typedef void (*ntp_dequantize_row_fn)(const void *x, float *y, int64_t n);

typedef struct ntp_quant_fns {
    ntp_quantize_row_fn quantize;     /* float row -> blocks; NULL if unsupported */
    ntp_dequantize_row_fn dequantize; /* blocks -> float row; NULL if unsupported */
} ntp_quant_fns;

/* The reference functions of type t, or NULL when t has none. */
const ntp_quant_fns *ntp__quant_fns(enum ntp_type t);

/*
 * Quantize n floats x[0, n) into y (ntp_type_row_size(t, n) bytes).
 * NTP_E_INVALID_ARG when n is negative or not a multiple of the block size,
 * NTP_E_UNSUPPORTED when t has no reference quantizer. n = 0 writes nothing.
 */
ntp_status ntp__quantize_row(enum ntp_type t, const float *x, void *y, int64_t n);

/* Dequantize the blocks at x (n elements) into y[0, n); errors as above. */
ntp_status ntp__dequantize_row(enum ntp_type t, const void *x, float *y, int64_t n);

/*
 * Quantize nrows rows of n_per_row floats each (row r at x + r * n_per_row)
 * into consecutive quantized rows of ntp_type_row_size(t, n_per_row) bytes.
 * Each row is quantized on its own, so a row's bytes do not depend on its
 * neighbours. Errors as ntp__quantize_row; nrows < 0 is NTP_E_INVALID_ARG.
 */
ntp_status ntp__quantize_rows(enum ntp_type t, const float *x, void *y, int64_t nrows,
                              int64_t n_per_row);

#endif /* NTP_KERNELS_QUANT_H */
