// Sequence-mode products Y = X Wᵀ for the block types (q8_0, q4_s) in int8: each token's
// activation is rounded to int8 exactly as quantize_activation rounds it for one token,
// and the weights meet it in AVX-512 VNNI dot products (vpdpbusd, 64 int8 multiply-adds
// per instruction) instead of being widened to float32 for the FMA GEMM. The int32 sums
// are exact, so Y[t, r] is matvec_rows_q8_0 / matvec_rows_q4_s for token t alone up to
// the order of the float additions of the per-block terms.
//
// Use (the caller splits rows over its threads):
//   std::byte* packed = ... int8_tokens_bytes(w.dtype, T, w.cols) bytes ...;
//   pack_int8_tokens(w.dtype, X, T, w.cols, 0, T, packed);        // or ranges per thread
//   matmat_rows_int8(w, packed, T, Y, row_begin, row_end, false);  // per thread
//
// Only the AVX-512 VNNI level has these functions; at other levels this header declares
// nothing and the caller keeps the float32 GEMM.
#pragma once

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)

#include <cstddef>
#include <cstdint>

#include "kernels/dtype.hpp"
#include "kernels/matvec.hpp"

namespace rwkv::RWKV_KERNEL_NS {

// Bytes that pack_int8_tokens writes for n_tokens tokens of `cols` values, for weights of
// `type` (Q8_0 or Q4_S: the activation groups are 32 and 256 values). The buffer needs no
// alignment.
size_t int8_tokens_bytes(DType type, uint32_t n_tokens, uint32_t cols);

// Rounds tokens [token_begin, token_end) of X ([n_tokens, cols], row-major) to int8 into
// `packed`: per token the quants, scales and block sums quantize_activation(x, cols,
// activation_group_values(type)) gives it, in the layout matmat_rows_int8 reads. Each
// token writes only its own bytes, so threads may pack disjoint ranges of one buffer at
// once; the range that ends at n_tokens also writes the zero padding after the last token.
void pack_int8_tokens(DType type, const float* X, uint32_t n_tokens, uint32_t cols, uint32_t token_begin,
                      uint32_t token_end, std::byte* packed);

// Y[t * w.rows + r] = W[r, :] · x[t] for every token t < n_tokens and r in
// [row_begin, row_end), from tokens packed by pack_int8_tokens for w.dtype and w.cols;
// with squared_relu each output y becomes max(y, 0)². w.dtype is Q8_0 or Q4_S. Ranges
// are best multiples of int8_row_granule() (any range is correct). Single-threaded;
// scratch memory comes from the calling thread's ScratchSlot::Panel.
void matmat_rows_int8(const MatrixRef& w, const std::byte* packed, uint32_t n_tokens, float* Y, uint32_t row_begin,
                      uint32_t row_end, bool squared_relu);

// Rows that one packed weight panel covers.
uint32_t int8_row_granule();

}  // namespace rwkv::RWKV_KERNEL_NS

#endif
