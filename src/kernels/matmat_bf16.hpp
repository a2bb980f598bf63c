// Sequence-mode and batched products Y = X Wᵀ for bfloat16 weights on AVX512_BF16
// (vdpbf16ps: 32 bf16 multiply-adds into 16 float32 sums per instruction, twice the
// float32 FMA's rate), instead of widening the weights to float32 for the FMA GEMM.
// The activations are rounded to bfloat16 (round to nearest even) once per product, as
// llama.cpp and PyTorch's bf16 matmuls round them; the weights are used as stored, the
// products are exact and the sums are float32. So Y[t, r] is the float32 dot product of
// row r with bf16(x[t]): a token alone (one-token decoding, matvec_rows_bf16) keeps its
// float32 activations, and a batch or a prompt differs from it by that rounding.
//
// Use (the caller splits rows over its threads):
//   uint16_t* packed = ... bf16_tokens_values(T, w.cols) values ...;
//   pack_bf16_tokens(X, T, w.cols, 0, T, packed);                 // or ranges per thread
//   matmat_rows_bf16(w, packed, T, Y, row_begin, row_end, false);  // per thread
//
// The functions exist at the AVX-512 VNNI and AMX levels; they may run only where the
// processor has AVX512_BF16; KernelSet sets its pointers only on AMD processors, where
// vdpbf16ps outruns the FMA (kernel_set.cpp).
#pragma once

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)

#define RWKV_HAVE_BF16_DOT 1

#include <cstddef>
#include <cstdint>

#include "kernels/matvec.hpp"

namespace rwkv::RWKV_KERNEL_NS {

// uint16_t values that pack_bf16_tokens writes for n_tokens tokens of `cols` values.
size_t bf16_tokens_values(uint32_t n_tokens, uint32_t cols);

// Rounds tokens [token_begin, token_end) of X ([n_tokens, cols], row-major) to bfloat16
// into `packed`, in groups of 16 tokens: [group][column pair][16 tokens][2]. Threads may
// pack disjoint ranges of one buffer at once; the range that ends at n_tokens also
// zeroes the padding of the last group.
void pack_bf16_tokens(const float* X, uint32_t n_tokens, uint32_t cols, uint32_t token_begin, uint32_t token_end,
                      uint16_t* packed);

// Y[t * w.rows + r] = W[r, :] · bf16(x[t]) for every token t < n_tokens and r in
// [row_begin, row_end), from tokens packed by pack_bf16_tokens; with squared_relu each
// output y becomes max(y, 0)². w.dtype is BF16. Any range of rows is correct, best a
// multiple of bf16_row_granule(). Single-threaded.
void matmat_rows_bf16(const MatrixRef& w, const uint16_t* packed, uint32_t n_tokens, float* Y, uint32_t row_begin,
                      uint32_t row_end, bool squared_relu);

// Rows that one tile covers.
uint32_t bf16_row_granule();

// `iterations` rounds of independent vdpbf16ps on registers (16 lanes × 2 bf16 products
// each, the tile's instruction), returning the FLOPs done (2 per product).
double bf16_peak_loop(uint32_t iterations, float* sink);

#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
#define RWKV_HAVE_AMX_BF16 1
// The same product on AMX tiles (tdpbf16ps, matmat_bf16_amx.cpp), from the same packed
// tokens, at the amx level: sums in another order, so not vdpbf16ps's bits. Needs the
// tile data permission (the amx level is chosen only where it was granted).
void matmat_rows_bf16_amx(const MatrixRef& w, const uint16_t* packed, uint32_t n_tokens, float* Y,
                          uint32_t row_begin, uint32_t row_end, bool squared_relu);
uint32_t bf16_amx_row_granule();
// iterations / 8 rounds of four independent tile products, returning the FLOPs done.
double amx_bf16_peak_loop(uint32_t iterations, float* sink);
#endif

}  // namespace rwkv::RWKV_KERNEL_NS

#endif
