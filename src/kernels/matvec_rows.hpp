// Per-type kernels over a range of a matrix's rows. The public matvec/matmat split
// the rows over the thread pool and call these; one source file per weight type.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/matvec.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd.hpp"

namespace rwkv {

// y[r] = W[r, :] · x for r in [row_begin, row_end).
void matvec_rows_f32(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end);
void matvec_rows_f16(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end);
void matvec_rows_bf16(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end);
// The block types take x already rounded to int8 blocks (once per matvec, shared by
// every row and thread) and multiply in integers.
void matvec_rows_q8_0(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin, uint32_t row_end);
void matvec_rows_q4_s(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin, uint32_t row_end);

// The block types for a few tokens at once: Y[t, r] = W[r, :] · x[t] with each token's
// activation rounded to int8 blocks as for one token and the same dot product, so that
// a token gets the bits it gets alone; each row is read once for all the tokens.
void matmat_rows_q8_0(const MatrixRef& w, const Int8Activation* x, uint32_t n_tokens, float* Y, uint32_t row_begin,
                      uint32_t row_end);
void matmat_rows_q4_s(const MatrixRef& w, const Int8Activation* x, uint32_t n_tokens, float* Y, uint32_t row_begin,
                      uint32_t row_end);

// The same for the float types: x[t] points at token t's n_cols values.
void matmat_rows_f32_tokens(const MatrixRef& w, const float* const* x, uint32_t n_tokens, float* Y,
                            uint32_t row_begin, uint32_t row_end);
void matmat_rows_f16_tokens(const MatrixRef& w, const float* const* x, uint32_t n_tokens, float* Y,
                            uint32_t row_begin, uint32_t row_end);
void matmat_rows_bf16_tokens(const MatrixRef& w, const float* const* x, uint32_t n_tokens, float* Y,
                             uint32_t row_begin, uint32_t row_end);

// Y[t, r] = W[r, :] · X[t, :] for every token t < n_tokens and r in [row_begin, row_end);
// X is [n_tokens, cols] and Y [n_tokens, rows], both row-major.
#ifdef RWKV_HAVE_AVX2
// The blocked GEMM of matmat.cpp: X packed once per product by pack_tokens_for_matmat
// (into `buffer`, returned), then any range of rows, best a multiple of matmat_row_granule().
const float* pack_tokens_for_matmat(const float* X, uint32_t n_tokens, uint32_t cols, std::vector<float>& buffer);
// With squared_relu, each output y becomes max(y, 0)².
void matmat_rows(const MatrixRef& w, const float* packed_tokens, float* Y, uint32_t n_tokens, uint32_t row_begin,
                 uint32_t row_end, bool squared_relu);
uint32_t matmat_row_granule();
// Up to kMaxSmallBatch tokens (batched decoding): each row widened once and multiplied
// with every token directly, no padding or packing (matmat_small.cpp).
// Up to 16 it was as fast as the GEMM or faster (measured 2 to 2.6 times at 2 tokens,
// 1.0 to 1.05 at 16); at 32 the GEMM was faster for q8_0 (100 vs 132 ms a step, 0.1B).
inline constexpr uint32_t kMaxSmallBatch = 16;
void matmat_rows_small(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens, uint32_t row_begin,
                       uint32_t row_end, bool squared_relu);
#else
// Without AVX2: Eigen's GEMM, on float32 weights directly or on blocks of rows widened to float32.
void matmat_rows_f32(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens, uint32_t row_begin,
                     uint32_t row_end);
// Any other type: widens blocks of rows to float32 and multiplies them as float32.
void matmat_rows_dequantized(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens, uint32_t row_begin,
                             uint32_t row_end);
#endif

// Converts rows [row_begin, row_end) of W to float32, row-major, into out (cols values
// per row: the padding of block types is dropped).
void dequantize_rows(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, float* out);

// x[i] ← max(x[i], 0)² for i < n.
inline void square_relu(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] * x[i] : 0.0f;
}
// The same for columns [col_begin, col_end) of those rows (out: row-major, col_end -
// col_begin values per row). For block types col_begin is a multiple of the block size.
void dequantize_block(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, uint32_t col_begin, uint32_t col_end,
                      float* out);

}  // namespace rwkv
