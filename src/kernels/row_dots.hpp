// Loops the per-type kernels share: a dot product applied to each row of a range, the
// dot product of 16-bit floats with float32, and block sums over two accumulators
// (one block a step in AVX2, two blocks a step in groups of 8 in AVX-512).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/matvec_rows.hpp"
#include "kernels/scratch.hpp"

namespace rwkv::RWKV_KERNEL_NS {

// How far ahead of the row being multiplied its successors are prefetched. The
// hardware prefetcher alone leaves a single core well short of the memory bandwidth
// on these streams (measured: q8_0 decode 17.1 -> 13.8 ms/token on one core).
// Overridable at compile time (-DRWKV_PREFETCH_BYTES_AHEAD=N) to measure other distances.
#ifndef RWKV_PREFETCH_BYTES_AHEAD
#define RWKV_PREFETCH_BYTES_AHEAD 2048
#endif
inline constexpr size_t kPrefetchBytesAhead = RWKV_PREFETCH_BYTES_AHEAD;
inline constexpr size_t kCacheLineBytes = 64;

// Rows [first_row, first_row + n_rows) of W (row_bytes each), every one inside the
// matrix: W's own rows where they all are, else a copy in scratch memory with the last
// row repeated in place of those past it (their outputs are never stored), so that a
// GEMM tile reads every panel at one stride with no per-row pointers.
inline const std::byte* rows_within_matrix(const MatrixRef& w, uint32_t first_row, uint32_t n_rows, size_t row_bytes) {
  const auto* data = static_cast<const std::byte*>(w.data);
  if (first_row + n_rows <= w.rows) return data + size_t(first_row) * row_bytes;
  auto* padded = static_cast<std::byte*>(thread_scratch(ScratchSlot::PaddedRows, n_rows * row_bytes));
  for (uint32_t i = 0; i < n_rows; ++i) {
    std::memcpy(padded + i * row_bytes, data + size_t(std::min(first_row + i, w.rows - 1)) * row_bytes, row_bytes);
  }
  return padded;
}

inline void prefetch_bytes(const void* p, size_t n) {
#if defined(__GNUC__)
  const char* bytes = static_cast<const char*>(p);
  for (size_t i = 0; i < n; i += kCacheLineBytes) __builtin_prefetch(bytes + i, 0, 3);
#else
  (void)p;
  (void)n;
#endif
}

// fn(r, row r) for r in [row_begin, row_end), where a row is `stride` Elements (weights
// or blocks) of w.data. Rows about kPrefetchBytesAhead ahead are prefetched.
template <typename Element, typename Fn>
void each_row_prefetched(const MatrixRef& w, size_t stride, uint32_t row_begin, uint32_t row_end, Fn fn) {
  const auto* data = static_cast<const Element*>(w.data);
  const size_t row_bytes = stride * sizeof(Element);
  const uint32_t rows_ahead = uint32_t((kPrefetchBytesAhead + row_bytes - 1) / row_bytes);
  for (uint32_t r = row_begin; r < std::min(row_end, row_begin + rows_ahead); ++r) {
    prefetch_bytes(data + size_t(r) * stride, row_bytes);
  }
  for (uint32_t r = row_begin; r < row_end; ++r) {
    if (r + rows_ahead < row_end) prefetch_bytes(data + size_t(r + rows_ahead) * stride, row_bytes);
    fn(r, data + size_t(r) * stride);
  }
}

// y[r] = dot(row r, x) for r in [row_begin, row_end).
template <typename Element, typename Input, typename Dot>
void dot_each_row(const MatrixRef& w, size_t stride, const Input& x, float* y, uint32_t row_begin, uint32_t row_end,
                  Dot dot) {
  each_row_prefetched<Element>(w, stride, row_begin, row_end, [&](uint32_t r, const Element* row) { y[r] = dot(row, x); });
}

// Y[t * w.rows + r] = dot(row r, x[t]) for every token t < n_tokens and r in [row_begin,
// row_end): each row is read from memory once and stays in L1 while it meets every
// token's activation; each output is the one-token dot product, so a token's outputs
// are those it gets alone, whatever else is in the batch.
template <typename Element, typename Input, typename Dot>
void dot_each_row_tokens(const MatrixRef& w, size_t stride, const Input* x, uint32_t n_tokens, float* Y,
                         uint32_t row_begin, uint32_t row_end, Dot dot) {
  each_row_prefetched<Element>(w, stride, row_begin, row_end, [&](uint32_t r, const Element* row) {
    for (uint32_t t = 0; t < n_tokens; ++t) Y[size_t(t) * w.rows + r] = dot(row, x[t]);
  });
}

#ifdef RWKV_HAVE_AVX512
// Sum of w[i] * x[i] for i < n, 16 values a step: load(i) gives w[i..i+16) as float32
// and load_tail(i, mask) the lanes of `mask` of them (zeros elsewhere) for the last
// n - i < 16 values, so that nothing past the row is read.
template <typename Load, typename LoadTail>
float dot_f32_by16(const float* x, uint32_t n, Load load, LoadTail load_tail) {
  uint32_t i = 0;
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(load(i), _mm512_loadu_ps(x + i), acc0);
    acc1 = _mm512_fmadd_ps(load(i + 16), _mm512_loadu_ps(x + i + 16), acc1);
  }
  if (i + 16 <= n) {
    acc0 = _mm512_fmadd_ps(load(i), _mm512_loadu_ps(x + i), acc0);
    i += 16;
  }
  if (i < n) {
    const auto tail = static_cast<__mmask16>((1u << (n - i)) - 1);
    acc1 = _mm512_fmadd_ps(load_tail(i, tail), _mm512_maskz_loadu_ps(tail, x + i), acc1);
  }
  return horizontal_sum(_mm512_add_ps(acc0, acc1));
}
#endif

// Sum of w[i] * x[i] for 16-bit floats w; Half::widen converts one value and, in SIMD
// builds, Half::widen8 eight and Half::widen16 sixteen.
template <typename Half>
float dot_half_f32(const uint16_t* w, const float* x, uint32_t n) {
  uint32_t i = 0;
  float sum = 0.0f;
#if defined(RWKV_HAVE_AVX512)
  sum = dot_f32_by16(
      x, n, [w](uint32_t at) { return Half::widen16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + at))); },
      [w](uint32_t at, __mmask16 mask) { return Half::widen16(_mm256_maskz_loadu_epi16(mask, w + at)); });
  i = n;
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
// The first 4 bytes of blocks w[0], ..., w[count - 1] (count <= 8) in 32-bit lanes,
// zeros past count: q8_0 blocks begin with their binary16 scale, so that one
// conversion widens all of a group's.
template <typename Block>
__m256i block_heads(const Block* w, uint32_t count) {
  const auto head = [w](uint32_t j) {
    int32_t bits;
    std::memcpy(&bits, &w[j], sizeof bits);
    return bits;
  };
  if (count == 8) return _mm256_setr_epi32(head(0), head(1), head(2), head(3), head(4), head(5), head(6), head(7));
  alignas(32) int32_t heads[8] = {};
  for (uint32_t j = 0; j < count; ++j) heads[j] = head(j);
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(heads));
}

// xs[0], ..., xs[count - 1] (count <= 8), zeros past count.
inline __m256 first_floats(const float* xs, uint32_t count) {
  return _mm256_maskz_loadu_ps(static_cast<__mmask8>((1u << count) - 1), xs);
}

// Sum over blocks b < n of scale(b) * dot(b), two blocks a 512-bit register and up to 8
// a group. group(b, count) gives, for blocks b + j with j < count <= 8, the product of
// their weight and activation scales in lane 2j (odd lanes are ignored); pair(b, second)
// gives the int32 dot-product lanes of block b in the low 256 bits and, when `second`,
// of block b + 1 in the high 256 bits (zeros otherwise).
// Why groups: converting and broadcasting each block's scale on its own cost more
// vector instructions than the dot product itself.
template <typename Group, typename Pair>
float sum_block_groups(uint32_t n, Group group, Pair pair) {
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  const auto step = [&](uint32_t b, uint32_t count) {
    const __m512 scales = group(b, count);
    for (uint32_t k = 0; 2 * k < count; ++k) {
      // Lanes 0-7 take the scale of block b + 2k, lanes 8-15 that of block b + 2k + 1.
      const __m512i pick = _mm512_set_epi32(4 * k + 2, 4 * k + 2, 4 * k + 2, 4 * k + 2, 4 * k + 2, 4 * k + 2, 4 * k + 2,
                                            4 * k + 2, 4 * k, 4 * k, 4 * k, 4 * k, 4 * k, 4 * k, 4 * k, 4 * k);
      const __m512 products = _mm512_cvtepi32_ps(pair(b + 2 * k, 2 * k + 1 < count));
      __m512& acc = k % 2 == 0 ? acc0 : acc1;
      acc = _mm512_fmadd_ps(_mm512_permutexvar_ps(pick, scales), products, acc);
    }
  };
  uint32_t b = 0;
  for (; b + 8 <= n; b += 8) step(b, 8);
  if (b < n) step(b, n - b);
  return horizontal_sum(_mm512_add_ps(acc0, acc1));
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

}  // namespace rwkv::RWKV_KERNEL_NS
