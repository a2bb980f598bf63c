// Per-type kernels over a range of a matrix's rows. The public matvec/matmat split
// the rows over the thread pool and call these; one source file per weight type.
#pragma once

#include <cstdint>

#include "kernels/matvec.hpp"
#include "kernels/quant_blocks.hpp"

namespace rwkv {

// y[r] = W[r, :] · x for r in [row_begin, row_end).
void matvec_rows_f32(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end);
void matvec_rows_f16(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end);
void matvec_rows_bf16(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end);
// The block types take x already rounded to int8 blocks (once per matvec, shared by
// every row and thread) and multiply in integers.
void matvec_rows_q8_0(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin, uint32_t row_end);
void matvec_rows_q4_1m(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin, uint32_t row_end);

// Y[t, r] = W[r, :] · X[t, :] for every token t < n_tokens and r in [row_begin, row_end);
// X is [n_tokens, cols] and Y [n_tokens, rows], both row-major.
void matmat_rows_f32(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens, uint32_t row_begin,
                     uint32_t row_end);
// Any other type: widens blocks of rows to float32 and multiplies them as float32.
void matmat_rows_dequantized(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens, uint32_t row_begin,
                             uint32_t row_end);

// Converts rows [row_begin, row_end) of W to float32, row-major, into out (cols values
// per row: the padding of block types is dropped).
void dequantize_rows(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, float* out);

}  // namespace rwkv
