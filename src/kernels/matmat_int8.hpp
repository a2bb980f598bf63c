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
// Only the AVX-512 VNNI and AMX levels have these functions; at other levels this header
// declares nothing and the caller keeps the float32 GEMM. At the amx level q8_0 takes the
// AMX form below (same contract, its own token layout); q4_s keeps the VNNI kernel.
#pragma once

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/dtype.hpp"
#include "kernels/matvec.hpp"
#include "kernels/quant_blocks.hpp"

namespace rwkv::RWKV_KERNEL_NS {

// Bytes that pack_int8_tokens writes for n_tokens tokens of `cols` values, for weights of
// `type` (Q8_0 or Q4_S: the activation groups are 32 and 256 values). The buffer needs no
// alignment.
size_t int8_tokens_bytes(DType type, uint32_t n_tokens, uint32_t cols);

// Rounds tokens [token_begin, token_end) of X ([n_tokens, cols], row-major) to int8 into
// `packed`: per token the quants, scales and block sums quantize_activation(x, cols,
// activation_group_values(type)) gives it, in the layout matmat_rows_int8 reads. Threads
// may pack disjoint ranges of one buffer at once; ranges that together cover [0, n_tokens)
// write every byte once, the zero padding after the last token included. (The VNNI form
// writes each token's own bytes and the padding with the range that ends at n_tokens; the
// AMX form whole 16-token groups, each with the range its first token is in.)
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

// Tokens of one tile of packed tokens for weights of `type`: a tile's tokens share cache
// lines, so threads packing at once should each take whole tiles.
uint32_t int8_token_tile(DType type);

// q8_0 and q4_s weights stored as WeightLayout::Int8Panels (quant_blocks.hpp), which
// matmat_rows_int8 multiplies without packing them: pack_int8_panels writes panels
// [panel_begin, panel_end) of the row-layout matrix w at their places in `out`
// (int8_panels_bytes(w.dtype, w.rows, w.cols) bytes for the whole matrix; threads may pack
// disjoint ranges). matvec_rows_int8_panels is the one-token product on them, rows
// [row_begin, row_end) with row_begin a multiple of kInt8PanelRows: for every row, the
// bits matmat_rows_int8 gives the same token in any batch.
void pack_int8_panels(const MatrixRef& w, uint32_t panel_begin, uint32_t panel_end, std::byte* out);
void matvec_rows_int8_panels(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin,
                             uint32_t row_end);

// One activation group of a token rounded to int8 as quantize_activation rounds it, for
// every token packer (the VNNI tiles and the AMX tiles): scale = max|x| / 127 over the
// group's `present` values (zero after them; x may be null when present is 0), quants
// nearbyint(x / scale) (cvtps rounds to nearest even, as nearbyint does in the default
// mode, and |x / scale| <= 127 keeps the saturating narrowing exact). Calls
// emit(block, steps, block_sum) for each block of 32 values of the group_values, where
// steps[s] holds quants 4s..4s+3 of the block; returns the scale.
template <typename Emit>
inline float round_activation_group(const float* x, uint32_t present, uint32_t group_values, Emit&& emit) {
  constexpr uint32_t kLanes = 16;
  const auto load = [&](uint32_t i) {
    if (i >= present) return _mm512_setzero_ps();
    const uint32_t n = present - i;
    return _mm512_maskz_loadu_ps(n >= kLanes ? __mmask16(0xffff) : __mmask16((1u << n) - 1u), x + i);
  };
  const __m512 magnitude_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  __m512 amax = _mm512_setzero_ps();
  for (uint32_t i = 0; i < present; i += kLanes) amax = _mm512_max_ps(amax, _mm512_and_ps(load(i), magnitude_mask));
  const float scale = _mm512_reduce_max_ps(amax) / 127.0f;
  const __m512 inverse = _mm512_set1_ps(scale > 0.0f ? 1.0f / scale : 0.0f);
  for (uint32_t c = 0; c < group_values; c += 32) {
    const __m512i low = _mm512_cvtps_epi32(_mm512_mul_ps(load(c), inverse));
    const __m512i high = _mm512_cvtps_epi32(_mm512_mul_ps(load(c + kLanes), inverse));
    uint32_t steps[8];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(steps), _mm512_cvtsepi32_epi8(low));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(steps + 4), _mm512_cvtsepi32_epi8(high));
    emit(c / 32, static_cast<const uint32_t*>(steps), _mm512_reduce_add_epi32(_mm512_add_epi32(low, high)));
  }
  return scale;
}

#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
// The q8_0 forms with AMX tile products (matmat_int8_amx.cpp), which the functions above
// call for DType::Q8_0 at the amx level: the same rounding of the tokens and, for every
// output, the same float arithmetic as the VNNI kernel, so Y is bit for bit the same.
// The weights are read in place (no packing); matmat_rows_amx_q8_0 loads its tile
// configuration on the calling thread and releases the tiles before returning.
// pack_amx_q8_0_tokens packs the 16-token groups that start in [token_begin, token_end),
// whole (reading X's rows past token_end up to n_tokens, and padding after n_tokens).
inline constexpr uint32_t kAmxQ8TokenTile = 16;  // tokens of a B tile
size_t amx_q8_0_tokens_bytes(uint32_t n_tokens, uint32_t cols);
void pack_amx_q8_0_tokens(const float* X, uint32_t n_tokens, uint32_t cols, uint32_t token_begin, uint32_t token_end,
                          std::byte* packed);
void matmat_rows_amx_q8_0(const MatrixRef& w, const std::byte* packed, uint32_t n_tokens, float* Y,
                          uint32_t row_begin, uint32_t row_end, bool squared_relu);
#endif

}  // namespace rwkv::RWKV_KERNEL_NS

#endif
