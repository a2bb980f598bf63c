// The bfloat16 products of matmat_bf16.hpp.
//
// Layout. The tokens are in the lanes: a register holds one column pair of 16 tokens
// (packed once per product), and a row's pair of weights is one 4-byte broadcast
// straight from the stored row, so the weights are neither widened nor rearranged. A
// tile is 12 rows × 16 tokens: 12 accumulators, per column pair one token load and 12
// broadcast vdpbf16ps. Single-thread, 16 tokens, against widening to float32 for the
// FMA tile (this machine, AMD EPYC Zen 5): 768×768 51 against 151 µs, 8184×2048 2.2
// against 4.7 ms.
#include "kernels/matmat_bf16.hpp"

#ifdef RWKV_HAVE_BF16_DOT

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/gcc12_avx512_warnings.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/row_dots.hpp"
#include "kernels/scratch.hpp"
#include "kernels/transpose.hpp"

// The AVX-512 VNNI level is compiled for processors without AVX512_BF16 too: only these
// functions may use it, and KernelSet calls them only where the processor has it.
#define RWKV_BF16_TARGET __attribute__((target("avx512bf16")))

namespace rwkv::RWKV_KERNEL_NS {

namespace {

constexpr uint32_t kTokens = 16;
constexpr uint32_t kRows = 12;
constexpr uint32_t kPairValues = 2 * kTokens;  // uint16 values of one column pair of a group

uint32_t column_pairs(uint32_t cols) { return (cols + 1) / 2; }

// out[r * out_stride + l] = sum over the column pairs of row r · token l, for the kRows rows at
// first + r × stride (in values), every one inside the matrix. The last column of an odd
// row is paired with a zero (the tokens' pair has a zero there too). While it runs, the
// next panel's `prefetch_lines` cache lines are fetched, spread over the pairs.
RWKV_BF16_TARGET void tile(const uint16_t* first, size_t stride, uint32_t cols, const uint16_t* tokens,
                           float* out, size_t out_stride, const std::byte* prefetch, size_t prefetch_lines) {
  __m512 acc[kRows];
#pragma GCC unroll 12
  for (uint32_t r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
  const uint32_t full_pairs = cols / 2;
  const uint32_t every = prefetch_lines == 0 ? full_pairs + 1 : std::max<uint32_t>(1, full_pairs / prefetch_lines);
  size_t line = 0;
  uint32_t until_prefetch = 0;
  for (uint32_t p = 0; p < full_pairs; ++p) {
    if (until_prefetch-- == 0) {
      until_prefetch = every - 1;
      if (line < prefetch_lines) __builtin_prefetch(prefetch + kCacheLineBytes * line++, 0, 3);
    }
    const __m512bh x = (__m512bh)_mm512_loadu_si512(tokens + size_t(p) * kPairValues);
#pragma GCC unroll 12
    for (uint32_t r = 0; r < kRows; ++r) {
      uint32_t pair;
      std::memcpy(&pair, first + r * stride + 2 * p, sizeof(pair));
      acc[r] = _mm512_dpbf16_ps(acc[r], x, (__m512bh)_mm512_set1_epi32(int32_t(pair)));
    }
  }
  if (cols % 2 != 0) {
    const __m512bh x = (__m512bh)_mm512_loadu_si512(tokens + size_t(full_pairs) * kPairValues);
#pragma GCC unroll 12
    for (uint32_t r = 0; r < kRows; ++r) {
      const uint32_t last = first[r * stride + cols - 1];
      acc[r] = _mm512_dpbf16_ps(acc[r], x, (__m512bh)_mm512_set1_epi32(int32_t(last)));
    }
  }
  for (; line < prefetch_lines; ++line) __builtin_prefetch(prefetch + kCacheLineBytes * line, 0, 3);
#pragma GCC unroll 12
  for (uint32_t r = 0; r < kRows; ++r) _mm512_storeu_ps(out + r * out_stride, acc[r]);
}

// Token `lane` of a group: x's values rounded to bfloat16 (vcvtne2ps2bf16: nearest even),
// pair p at group[p * kPairValues + 2 * lane]; x null: a padding token, all zero.
RWKV_BF16_TARGET void pack_token(const float* x, uint32_t cols, uint16_t* group, uint32_t lane) {
  const uint32_t pairs = column_pairs(cols);
  alignas(64) uint32_t converted[kTokens];
  for (uint32_t c = 0; c < cols; c += 2 * kTokens) {
    __m512i bits = _mm512_setzero_si512();
    if (x != nullptr) {
      const uint32_t n = std::min(2 * kTokens, cols - c);
      const __mmask16 low = n >= kTokens ? __mmask16(0xffff) : __mmask16((1u << n) - 1u);
      const __mmask16 high = n <= kTokens ? __mmask16(0) : n >= 2 * kTokens ? __mmask16(0xffff)
                                                                             : __mmask16((1u << (n - kTokens)) - 1u);
      const __m512 a = _mm512_maskz_loadu_ps(low, x + c);
      const __m512 b = _mm512_maskz_loadu_ps(high, x + c + kTokens);
      bits = (__m512i)_mm512_cvtne2ps_pbh(b, a);  // a's 16 values, then b's: 16 pairs in order
    }
    _mm512_store_si512(converted, bits);
    const uint32_t first_pair = c / 2;
    const uint32_t n_pairs = std::min(kTokens, pairs - first_pair);
    for (uint32_t i = 0; i < n_pairs; ++i) {
      std::memcpy(group + size_t(first_pair + i) * kPairValues + 2 * lane, &converted[i], sizeof(uint32_t));
    }
  }
}

// A panel's kRows rows, row i at first + i × w.cols values, every one inside the matrix
// (rows_within_matrix).
const uint16_t* panel_rows(const MatrixRef& w, uint32_t first_row) {
  return reinterpret_cast<const uint16_t*>(rows_within_matrix(w, first_row, kRows, size_t(w.cols) * sizeof(uint16_t)));
}

}  // namespace

size_t bf16_tokens_values(uint32_t n_tokens, uint32_t cols) {
  const size_t groups = (size_t(n_tokens) + kTokens - 1) / kTokens;
  return groups * column_pairs(cols) * kPairValues;
}

void pack_bf16_tokens(const float* X, uint32_t n_tokens, uint32_t cols, uint32_t token_begin, uint32_t token_end,
                      uint16_t* packed) {
  const size_t group_values = size_t(column_pairs(cols)) * kPairValues;
  for (uint32_t t = token_begin; t < token_end; ++t) {
    pack_token(X + size_t(t) * cols, cols, packed + (t / kTokens) * group_values, t % kTokens);
  }
  if (token_end == n_tokens) {
    const uint32_t padded = (n_tokens + kTokens - 1) / kTokens * kTokens;
    for (uint32_t t = n_tokens; t < padded; ++t) {
      pack_token(nullptr, cols, packed + (t / kTokens) * group_values, t % kTokens);
    }
  }
}

void matmat_rows_bf16(const MatrixRef& w, const uint16_t* packed, uint32_t n_tokens, float* Y, uint32_t row_begin,
                      uint32_t row_end, bool squared_relu) {
  const uint32_t groups = (n_tokens + kTokens - 1) / kTokens;
  const uint32_t padded_tokens = groups * kTokens;
  const uint32_t n_rows = row_end - row_begin;
  const size_t group_values = size_t(column_pairs(w.cols)) * kPairValues;
  const size_t row_bytes = size_t(w.cols) * sizeof(uint16_t);
  const auto* data = static_cast<const std::byte*>(w.data);
  // The sums as [row][token], written into Y's columns at the end (whole 8×8 blocks).
  const uint32_t panel_count = (n_rows + kRows - 1) / kRows;
  auto* transposed = static_cast<float*>(
      thread_scratch(ScratchSlot::Transposed, size_t(panel_count) * kRows * padded_tokens * sizeof(float)));
  for (uint32_t p0 = row_begin; p0 < row_end; p0 += kRows) {
    const uint16_t* rows = panel_rows(w, p0);
    // The next panel (contiguous in W) streams in during this panel's first group.
    const uint32_t next = p0 + kRows;
    const size_t next_bytes = next < row_end ? size_t(std::min(kRows, row_end - next)) * row_bytes : 0;
    for (uint32_t g = 0; g < groups; ++g) {
      const size_t lines = g == 0 ? (next_bytes + kCacheLineBytes - 1) / kCacheLineBytes : 0;
      tile(rows, w.cols, w.cols, packed + g * group_values,
           transposed + size_t(p0 - row_begin) * padded_tokens + g * kTokens, padded_tokens,
           data + size_t(next) * row_bytes, lines);
    }
  }
  if (squared_relu) square_relu(transposed, size_t(n_rows) * padded_tokens);
  transpose_floats(transposed, padded_tokens, Y + row_begin, w.rows, n_rows, n_tokens);
}

uint32_t bf16_row_granule() { return kRows; }

RWKV_BF16_TARGET double bf16_peak_loop(uint32_t iterations, float* sink) {
  constexpr int kChains = 12;  // as the tile's accumulators
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(float(c));
  const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80);  // pairs of 1.0
  const __m512bh b = (__m512bh)_mm512_set1_epi32(0x3c003c00);  // pairs of 2^-7
  for (uint32_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
  }
  __m512 total = acc[0];
  for (int c = 1; c < kChains; ++c) total = _mm512_add_ps(total, acc[c]);
  *sink = _mm512_reduce_add_ps(total);
  return 2.0 * 32 * kChains * double(iterations);
}

}  // namespace rwkv::RWKV_KERNEL_NS

#endif
