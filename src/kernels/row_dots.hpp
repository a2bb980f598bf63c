// Loops the per-type kernels share: a dot product applied to each row of a range, the
// dot product of 16-bit floats with float32, and block sums over two accumulators.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/matvec.hpp"
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

// Sum of w[i] * x[i] for 16-bit floats w; Half::widen converts one value and, in AVX2
// builds, Half::widen8 eight.
template <typename Half>
float dot_half_f32(const uint16_t* w, const float* x, uint32_t n) {
  uint32_t i = 0;
  float sum = 0.0f;
#ifdef RWKV_HAVE_AVX2
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

}  // namespace rwkv
