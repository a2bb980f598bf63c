// The kernels of one instruction-set level (kernels/isa.hpp), declared in that level's
// namespace rwkv::RWKV_KERNEL_NS. Only the kernel sources, compiled once per level,
// include this; everything else calls them through kernels().
//
// Kernel sources must not instantiate std:: templates out of line (std::vector,
// std::function, ...): the linker keeps one copy of each such function for the whole
// program, so a copy compiled for AVX-512 could run on a machine without it. Scratch
// memory comes from kernels/scratch.hpp; tests/check_kernel_symbols.sh checks the
// objects.
#pragma once

#ifndef RWKV_KERNEL_NS
#error "kernels/matvec_rows.hpp is for the per-level kernel sources (RWKV_KERNEL_NS)"
#endif

#include <cstddef>
#include <cstdint>

#include "kernels/isa.hpp"
#include "kernels/matvec.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd.hpp"

namespace rwkv::RWKV_KERNEL_NS {

// This level's KernelSet (kernel_set.cpp).
const KernelSet& kernel_set();

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
// The blocked GEMM of matmat.cpp: X packed once per product (pack_tokens, blocks of
// kTokenBlock tokens, into packed_tokens_floats(n_tokens, cols) floats), then any range
// of rows, best a multiple of kMatmatRowGranule.
// 16 tokens are two AVX2 vectors, 32 two AVX-512 ones (the micro-kernel's width).
#ifdef RWKV_HAVE_AVX512
inline constexpr uint32_t kTokenBlock = 32;
#else
inline constexpr uint32_t kTokenBlock = 16;
#endif
inline constexpr uint32_t kMatmatRowGranule = 48;
size_t packed_tokens_floats(uint32_t n_tokens, uint32_t cols);
// Packs columns [col_begin, col_end) of token block `block`; threads may pack disjoint
// (block, column range) pieces of one buffer at once.
void pack_tokens(const float* X, uint32_t n_tokens, uint32_t cols, uint32_t block, uint32_t col_begin,
                 uint32_t col_end, float* packed);
// With squared_relu, each output y becomes max(y, 0)².
void matmat_rows(const MatrixRef& w, const float* packed_tokens, float* Y, uint32_t n_tokens, uint32_t row_begin,
                 uint32_t row_end, bool squared_relu);
// Batched decoding on the FMA GEMM: tokens in groups of kNarrowTokens (one vector: 16 in
// AVX-512, 8 in AVX2), each group packed k-major by pack_tokens_narrow
// ([groups][cols][kNarrowTokens], zero past n_tokens), multiplied 12 rows at a time, each
// panel of rows widened once for all the groups.
inline constexpr uint32_t kNarrowTokens = kTokenBlock / 2;
inline constexpr uint32_t kNarrowRows = 12;
static_assert(kMatmatRowGranule % kNarrowRows == 0);
void pack_tokens_narrow(const float* X, uint32_t n_tokens, uint32_t cols, float* packed);
void matmat_rows_narrow(const MatrixRef& w, const float* packed_tokens, float* Y, uint32_t n_tokens,
                        uint32_t row_begin, uint32_t row_end, bool squared_relu);
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

// Converts rows [row_begin, row_end), columns [col_begin, col_end) of W to float32,
// row-major, col_end - col_begin values per row (the padding of block types is dropped).
// For block types col_begin is a multiple of the block size.
void dequantize_block(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, uint32_t col_begin, uint32_t col_end,
                      float* out);
// rwkv::quantize_activation's arithmetic, into buffers sized for n values.
void quantize_activation(const float* x, uint32_t n, uint32_t group_values, int8_t* quants, float* scales,
                         int16_t* block_sums);

// vector_math.hpp and wkv.hpp, at this level.
void exp_inplace(float* x, uint32_t n);
void sigmoid_inplace(float* x, uint32_t n);
void tanh_inplace(float* x, uint32_t n);
float dot(const float* a, const float* b, uint32_t n);
float dot3(const float* a, const float* b, const float* c, uint32_t n);
void token_shift_mix(const float* cur, const float* prev, const float* mix, float* out, uint32_t n);
void token_shift_blend(const float* cur, const float* prev, const float* mix, float* out, uint32_t n);
void add_inplace(float* x, const float* y, size_t n);
void add_product(float* x, const float* a, const float* b, size_t n);
void normalize(const float* x, const float* weight, const float* bias, float* out, uint32_t n, float eps);
void wkv4_step(const float* k, const float* v, const float* log_decay, const float* bonus, float* aa, float* bb,
               float* pp, float* wkv, uint32_t C);
void wkv5_head_step(const float* r, const float* k, const float* v, const float* w, const float* u, float* S,
                    float* y, uint32_t N);
void wkv7_head_step(const float* r, const float* w, const float* k, const float* v, const float* kk,
                    const float* a, float* S, float* y, uint32_t N, uint32_t rows);
void wkv7_head_steps(const float* r, const float* w, const float* k, const float* v, const float* kk,
                     const float* a, size_t stride, uint32_t n_tokens, float* S, float* y, uint32_t N, uint32_t rows);

// The machine probes of KernelSet (machine_probes.cpp).
uint64_t stream_read(const uint64_t* words, size_t n);
double fma_peak_loop(uint32_t iterations, float* sink);
double int8_peak_loop(uint32_t iterations, int32_t* sink);
extern const char* const kFmaUnit;
extern const char* const kInt8Unit;

// x[i] ← max(x[i], 0)² for i < n.
inline void square_relu(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] * x[i] : 0.0f;
}

}  // namespace rwkv::RWKV_KERNEL_NS
