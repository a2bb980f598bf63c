// Loops the per-type kernels share: a dot product applied to each row of a range, the
// dot product of 16-bit floats with float32, and block sums over two accumulators
// (one block a step in AVX2, a pair of blocks a step in AVX-512).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/matvec.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd.hpp"

namespace rwkv {

// How far ahead of the row being multiplied its successors are prefetched. The
// hardware prefetcher alone leaves a single core well short of the memory bandwidth
// on these streams (measured: q8_0 decode 17.1 -> 13.8 ms/token on one core).
inline constexpr size_t kPrefetchBytesAhead = 2048;
inline constexpr size_t kCacheLineBytes = 64;

inline void prefetch_bytes(const void* p, size_t n) {
#if defined(__GNUC__)
  const char* bytes = static_cast<const char*>(p);
  for (size_t i = 0; i < n; i += kCacheLineBytes) __builtin_prefetch(bytes + i, 0, 3);
#else
  (void)p;
  (void)n;
#endif
}

// y[r] = dot(row r, x) for r in [row_begin, row_end), where a row is `stride` Elements
// (weights or blocks) of w.data. Rows about kPrefetchBytesAhead ahead are prefetched.
template <typename Element, typename Input, typename Dot>
void dot_each_row(const MatrixRef& w, size_t stride, const Input& x, float* y, uint32_t row_begin, uint32_t row_end,
                  Dot dot) {
  const auto* data = static_cast<const Element*>(w.data);
  const size_t row_bytes = stride * sizeof(Element);
  const uint32_t rows_ahead = uint32_t((kPrefetchBytesAhead + row_bytes - 1) / row_bytes);
  for (uint32_t r = row_begin; r < std::min(row_end, row_begin + rows_ahead); ++r) {
    prefetch_bytes(data + size_t(r) * stride, row_bytes);
  }
  for (uint32_t r = row_begin; r < row_end; ++r) {
    if (r + rows_ahead < row_end) prefetch_bytes(data + size_t(r + rows_ahead) * stride, row_bytes);
    y[r] = dot(data + size_t(r) * stride, x);
  }
}

// Sum of w[i] * x[i] for 16-bit floats w; Half::widen converts one value and, in SIMD
// builds, Half::widen8 eight and Half::widen16 sixteen.
template <typename Half>
float dot_half_f32(const uint16_t* w, const float* x, uint32_t n) {
  uint32_t i = 0;
  float sum = 0.0f;
#if defined(RWKV_HAVE_AVX512)
  const auto load16 = [w](uint32_t at) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + at)); };
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(Half::widen16(load16(i)), _mm512_loadu_ps(x + i), acc0);
    acc1 = _mm512_fmadd_ps(Half::widen16(load16(i + 16)), _mm512_loadu_ps(x + i + 16), acc1);
  }
  if (i + 16 <= n) {
    acc0 = _mm512_fmadd_ps(Half::widen16(load16(i)), _mm512_loadu_ps(x + i), acc0);
    i += 16;
  }
  if (i < n) {
    // The last n - i < 16 values: masked loads read nothing past the row and give zeros.
    const auto tail = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 wv = Half::widen16(_mm256_maskz_loadu_epi16(tail, w + i));
    acc1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, x + i), acc1);
    i = n;
  }
  sum = horizontal_sum(_mm512_add_ps(acc0, acc1));
#elif defined(RWKV_HAVE_AVX2)
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(Half::widen8(w + i), _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(Half::widen8(w + i + 8), _mm256_loadu_ps(x + i + 8), acc1);
  }
  sum = horizontal_sum(_mm256_add_ps(acc0, acc1));
#endif
  for (; i < n; ++i) sum += Half::widen(w[i]) * x[i];
  return sum;
}

#ifdef RWKV_HAVE_AVX2
// Sum over blocks b < n of block(b, acc) -> acc, alternating two accumulators so that
// consecutive blocks' FMAs do not wait on each other.
template <typename Block>
float sum_blocks(uint32_t n, Block block) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  uint32_t b = 0;
  for (; b + 2 <= n; b += 2) {
    acc0 = block(b, acc0);
    acc1 = block(b + 1, acc1);
  }
  if (b < n) acc0 = block(b, acc0);
  return horizontal_sum(_mm256_add_ps(acc0, acc1));
}
#endif

#ifdef RWKV_HAVE_AVX512
// The same over pairs of blocks, one 512-bit register a pair: pair(b, second, acc) ->
// acc takes block b in its low 256 bits and, when `second`, block b + 1 in its high
// 256 bits (zeros otherwise, for the last block of an odd count).
template <typename Pair>
float sum_block_pairs(uint32_t n, Pair pair) {
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  uint32_t b = 0;
  for (; b + 4 <= n; b += 4) {
    acc0 = pair(b, true, acc0);
    acc1 = pair(b + 2, true, acc1);
  }
  if (b + 2 <= n) {
    acc0 = pair(b, true, acc0);
    b += 2;
  }
  if (b < n) acc1 = pair(b, false, acc1);
  return horizontal_sum(_mm512_add_ps(acc0, acc1));
}

// A float32 vector of `low` in its 8 low lanes and `high` in its 8 high lanes: the
// scales of the two blocks of a pair.
inline __m512 split_scales(float low, float high) {
  return _mm512_mask_blend_ps(static_cast<__mmask16>(0xff00), _mm512_set1_ps(low), _mm512_set1_ps(high));
}

// load(b) in the low 256 bits and, when `second`, load(b + 1) in the high 256 bits
// (zeros otherwise: block b + 1 may lie past the row, so it is not read).
template <typename Load>
__m512i join_halves(uint32_t b, bool second, Load load) {
  if (second) return _mm512_inserti64x4(_mm512_castsi256_si512(load(b)), load(b + 1), 1);
  return _mm512_zextsi256_si512(load(b));
}

// The int8 activation quants xq of block b and, when `second`, of block b + 1 (zeros otherwise).
inline __m512i activation_pair(const int8_t* xq, uint32_t b, bool second) {
  const int8_t* at = xq + size_t(b) * kQuantBlockValues;
  if (second) return _mm512_loadu_si512(at);
  return _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at)));
}
#endif

}  // namespace rwkv
