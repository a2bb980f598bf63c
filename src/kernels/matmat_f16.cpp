// The float16 panel kernels of matmat_f16.hpp.
#include "kernels/matmat_f16.hpp"

#ifdef RWKV_HAVE_AVX512

#include <algorithm>
#include <cstring>

#include "kernels/gcc12_avx512_warnings.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/quant_blocks.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

constexpr uint32_t kPanelRows = kF16PanelRows;
static_assert(kPanelRows == 2 * 16, "a panel column is two vectors of 16 floats");
// Tokens a tile multiplies: 2 × 12 accumulators, the two widened weight vectors and a
// broadcast token value fit the 32 vector registers.
constexpr uint32_t kTileTokens = 12;
// Columns per pass over a task's panels: a panel's 256 KiB of them stay in L2 while every
// group of tokens goes over them. Longer passes, not ones that fit L1, measured faster
// (AMD EPYC Zen 5, 2 threads, medians of alternating runs, 512 / 1024 / 4096 columns):
// 0.1B f16 batch 16 18.8 / 17.4 / 17.0 ms a step, prefill of 512 1,454 / 1,489 / 1,492
// tokens/s, 1.5B batch 16 162 / 161 / 159 ms.
constexpr uint32_t kDepth = 4096;
// Columns ahead of the one being multiplied whose weights are prefetched (2 KiB): the
// hardware's prefetch alone left the first token group waiting on memory (43% of a 0.1B
// f16 batch-16 step on the load of the weights).
constexpr uint32_t kPrefetchColumns = 32;
// How a tile prefetches weights. With two or more token groups the last one, which finds
// its weights in cache, brings the next panel's columns into L2 (a line per column), so
// that the first group of the next panel does not wait on memory: 0.1B f16 batch 16 on 2
// threads (AMD EPYC Zen 5), 19.0-19.7 against 20.7-21.1 ms a step (two binaries, four
// alternating rounds), 1.5B 158-161 against 171-178 (alternating runs). The mode is a
// template argument: tested at run time in the loop, it cost the gain.
enum class Prefetch { none, ahead, next_into_l2 };
// The columns a tile's task multiplies after this tile's (none: columns null).
struct NextColumns {
  const uint16_t* columns = nullptr;
  uint32_t depth = 0;
};
// Up to kSideTokens tokens, bound by the memory the weights come from, read kSidePanels
// panels side by side over all columns, each stream prefetched kPrefetchColumns ahead.
// 1.5B f16 decode on 2 threads against the rows in the same process (rwkv-repack-ab),
// ms/token: AMD EPYC Zen 5, 2 panels with prefetch 56.2/58.6 vs rows 68.5/74.6, 4
// panels without 85.6/71.1 vs 85.8/72.9, 1 with 68.2/76.5 vs 71.3/85.5; Intel Xeon model
// 207, 2 with prefetch 126.5/126.6 vs 138.4/141.7, 1 with 110.7/116.9 vs 125.6/135.2, 4
// without 163.0/168.6 vs 140.5/143.5 (slower than the rows), 4 with 145.5/180.1 vs
// 127.3/155.6. At 2 to 6 tokens, side by side against one panel at a time (0.1B f16
// batch steps on the AMD machine): 5.1 vs 8.3 ms at 2 tokens, 7.9 vs 9.0 at 4.
constexpr uint32_t kSidePanels = 2;
constexpr uint32_t kSideTokens = 6;

// Which of a panel's rows exist: all, or the first `rows` of the last panel.
struct RowMasks {
  __mmask16 low = 0xFFFF;
  __mmask16 high = 0xFFFF;
};

RowMasks row_masks(uint32_t rows) {
  RowMasks m;
  if (rows >= kPanelRows) return m;
  m.low = rows >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rows) - 1);
  m.high = rows > 16 ? __mmask16((1u << (rows - 16)) - 1) : __mmask16(0);
  return m;
}

__m512 widen(const uint16_t* halves) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(halves)));
}

// Y[t][0..32) (+)= the panel's columns [0, depth) · X[t][0..depth) for t < kTokens: token t
// at X + t * x_stride, its outputs at Y + t * y_stride. With `resume`, each sum goes on
// from the value in Y (the pass before over earlier columns), so that the chain of
// multiply-adds is the same as in one pass. Prefetch::ahead prefetches the weights
// kPrefetchColumns ahead, past the end from `next`; next_into_l2 prefetches `next` into L2.
template <uint32_t kTokens, Prefetch prefetch>
void tile(const uint16_t* panel, uint32_t depth, const float* X, size_t x_stride, float* Y, size_t y_stride,
          RowMasks masks, bool resume, NextColumns next) {
  __m512 acc[2][kTokens];
  const float* x[kTokens];
#pragma GCC unroll 12
  for (uint32_t t = 0; t < kTokens; ++t) {
    x[t] = X + t * x_stride;
    acc[0][t] = resume ? _mm512_maskz_loadu_ps(masks.low, Y + t * y_stride) : _mm512_setzero_ps();
    acc[1][t] = resume ? _mm512_maskz_loadu_ps(masks.high, Y + t * y_stride + 16) : _mm512_setzero_ps();
  }
  for (uint32_t k = 0; k < depth; ++k, panel += kPanelRows) {
    if constexpr (prefetch == Prefetch::ahead) {
      const uint32_t ahead = k + kPrefetchColumns;
      if (ahead < depth) {
        _mm_prefetch(reinterpret_cast<const char*>(panel + kPrefetchColumns * kPanelRows), _MM_HINT_T0);
      } else if (ahead - depth < next.depth) {
        _mm_prefetch(reinterpret_cast<const char*>(next.columns + size_t(ahead - depth) * kPanelRows), _MM_HINT_T0);
      }
    } else if constexpr (prefetch == Prefetch::next_into_l2) {
      if (k < next.depth) {
        _mm_prefetch(reinterpret_cast<const char*>(next.columns + size_t(k) * kPanelRows), _MM_HINT_T1);
      }
    }
    const __m512 w0 = widen(panel);
    const __m512 w1 = widen(panel + 16);
#pragma GCC unroll 12
    for (uint32_t t = 0; t < kTokens; ++t) {
      const __m512 xk = _mm512_set1_ps(x[t][k]);
      acc[0][t] = _mm512_fmadd_ps(w0, xk, acc[0][t]);
      acc[1][t] = _mm512_fmadd_ps(w1, xk, acc[1][t]);
    }
  }
#pragma GCC unroll 12
  for (uint32_t t = 0; t < kTokens; ++t) {
    _mm512_mask_storeu_ps(Y + t * y_stride, masks.low, acc[0][t]);
    _mm512_mask_storeu_ps(Y + t * y_stride + 16, masks.high, acc[1][t]);
  }
}

using Tile = void (*)(const uint16_t* panel, uint32_t depth, const float* X, size_t x_stride, float* Y,
                      size_t y_stride, RowMasks masks, bool resume, NextColumns next);

template <Prefetch prefetch>
Tile tile_for(uint32_t n_tokens) {
  static_assert(kTileTokens == 12);
  switch (n_tokens) {
    case 1: return tile<1, prefetch>;
    case 2: return tile<2, prefetch>;
    case 3: return tile<3, prefetch>;
    case 4: return tile<4, prefetch>;
    case 5: return tile<5, prefetch>;
    case 6: return tile<6, prefetch>;
    case 7: return tile<7, prefetch>;
    case 8: return tile<8, prefetch>;
    case 9: return tile<9, prefetch>;
    case 10: return tile<10, prefetch>;
    case 11: return tile<11, prefetch>;
    default: return tile<12, prefetch>;
  }
}

Tile tile_for(uint32_t n_tokens, Prefetch prefetch) {
  switch (prefetch) {
    case Prefetch::ahead: return tile_for<Prefetch::ahead>(n_tokens);
    case Prefetch::next_into_l2: return tile_for<Prefetch::next_into_l2>(n_tokens);
    default: return tile_for<Prefetch::none>(n_tokens);
  }
}

// Y[t][0 .. kSidePanels * 32) = kSidePanels whole panels · X[t] over all cols columns for
// t < kTokens (a few), with the tile's arithmetic: a few tokens are bound by the memory
// the weights come from, and streams side by side read it faster.
template <uint32_t kTokens>
void side_by_side(const uint16_t* panels, uint32_t cols, const float* X, float* Y, size_t y_stride) {
  const size_t stride = size_t(cols) * kPanelRows;
  __m512 acc[kSidePanels][2][kTokens];
#pragma GCC unroll 4
  for (uint32_t p = 0; p < kSidePanels; ++p) {
#pragma GCC unroll 6
    for (uint32_t t = 0; t < kTokens; ++t) acc[p][0][t] = acc[p][1][t] = _mm512_setzero_ps();
  }
  for (uint32_t k = 0; k < cols; ++k, panels += kPanelRows) {
#pragma GCC unroll 2
    for (uint32_t p = 0; p < kSidePanels; ++p) {
      _mm_prefetch(reinterpret_cast<const char*>(panels + p * stride + kPrefetchColumns * kPanelRows), _MM_HINT_T0);
    }
    __m512 x[kTokens];
#pragma GCC unroll 6
    for (uint32_t t = 0; t < kTokens; ++t) x[t] = _mm512_set1_ps(X[t * size_t(cols) + k]);
#pragma GCC unroll 4
    for (uint32_t p = 0; p < kSidePanels; ++p) {
      const __m512 w0 = widen(panels + p * stride);
      const __m512 w1 = widen(panels + p * stride + 16);
#pragma GCC unroll 6
      for (uint32_t t = 0; t < kTokens; ++t) {
        acc[p][0][t] = _mm512_fmadd_ps(w0, x[t], acc[p][0][t]);
        acc[p][1][t] = _mm512_fmadd_ps(w1, x[t], acc[p][1][t]);
      }
    }
  }
#pragma GCC unroll 4
  for (uint32_t p = 0; p < kSidePanels; ++p) {
#pragma GCC unroll 6
    for (uint32_t t = 0; t < kTokens; ++t) {
      _mm512_storeu_ps(Y + t * y_stride + p * kPanelRows, acc[p][0][t]);
      _mm512_storeu_ps(Y + t * y_stride + p * kPanelRows + 16, acc[p][1][t]);
    }
  }
}

using SideBySide = void (*)(const uint16_t* panels, uint32_t cols, const float* X, float* Y, size_t y_stride);

SideBySide side_by_side_for(uint32_t n_tokens) {
  static_assert(kSideTokens == 6);
  switch (n_tokens) {
    case 1: return side_by_side<1>;
    case 2: return side_by_side<2>;
    case 3: return side_by_side<3>;
    case 4: return side_by_side<4>;
    case 5: return side_by_side<5>;
    default: return side_by_side<6>;
  }
}

void squared_relu_rows(float* Y, size_t y_stride, uint32_t n_tokens, uint32_t begin, uint32_t end) {
  const __m512 zero = _mm512_setzero_ps();
  for (uint32_t t = 0; t < n_tokens; ++t) {
    float* y = Y + t * y_stride;
    uint32_t r = begin;
    for (; r + 16 <= end; r += 16) {
      const __m512 v = _mm512_max_ps(_mm512_loadu_ps(y + r), zero);
      _mm512_storeu_ps(y + r, _mm512_mul_ps(v, v));
    }
    for (; r < end; ++r) y[r] = y[r] > 0.0f ? y[r] * y[r] : 0.0f;
  }
}

// A 16 × 16 matrix of 32-bit values, one row a register, transposed in place.
void transpose_16x16(__m512i (&r)[16]) {
  __m512i t[16];
  for (uint32_t i = 0; i < 8; ++i) {  // per 128-bit lane: elements 0, 1 and 2, 3 of rows 2i, 2i + 1 interleaved
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (uint32_t i = 0; i < 4; ++i) {  // lane L of r[4i + j]: column 4L + j, rows 4i .. 4i + 3
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  __m512i columns[16];
  for (uint32_t j = 0; j < 4; ++j) {  // column 4L + j: lane L of r[j], r[4 + j], r[8 + j], r[12 + j]
    const __m512i ab_low = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x44);
    const __m512i ab_high = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xEE);
    const __m512i cd_low = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x44);
    const __m512i cd_high = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xEE);
    columns[j] = _mm512_shuffle_i32x4(ab_low, cd_low, 0x88);
    columns[4 + j] = _mm512_shuffle_i32x4(ab_low, cd_low, 0xDD);
    columns[8 + j] = _mm512_shuffle_i32x4(ab_high, cd_high, 0x88);
    columns[12 + j] = _mm512_shuffle_i32x4(ab_high, cd_high, 0xDD);
  }
  for (uint32_t j = 0; j < 16; ++j) r[j] = columns[j];
}

}  // namespace

void pack_f16_panels(const MatrixRef& w, uint32_t panel_begin, uint32_t panel_end, std::byte* out) {
  const uint32_t K = w.cols;
  const auto* rows = static_cast<const uint16_t*>(w.data);
  for (uint32_t p = panel_begin; p < panel_end; ++p) {
    uint16_t* panel = reinterpret_cast<uint16_t*>(out) + size_t(p) * K * kPanelRows;
    const uint32_t first = p * kPanelRows;
    const uint32_t present = std::min(kPanelRows, w.rows - first);
    const auto row = [&](uint32_t i) { return rows + size_t(first + i) * K; };
    uint32_t c = 0;
    // 16 columns at a time: 32-bit lanes holding rows 2j and 2j + 1 of a column, then a
    // 16 × 16 transpose, which leaves each column's 32 halves in row order (loading the
    // 1.5B shape's f16 file takes 0.34 s; with a scalar loop, 2.3 s).
    for (; c + 16 <= K; c += 16) {
      __m512i pairs[16];
      for (uint32_t j = 0; j < 16; ++j) {
        const auto load = [&](uint32_t i) {
          return i < present ? _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row(i) + c)))
                             : _mm512_setzero_si512();
        };
        pairs[j] = _mm512_or_si512(load(2 * j), _mm512_slli_epi32(load(2 * j + 1), 16));
      }
      transpose_16x16(pairs);
      for (uint32_t j = 0; j < 16; ++j) _mm512_storeu_si512(panel + size_t(c + j) * kPanelRows, pairs[j]);
    }
    for (; c < K; ++c) {
      uint16_t* column = panel + size_t(c) * kPanelRows;
      for (uint32_t i = 0; i < kPanelRows; ++i) column[i] = i < present ? row(i)[c] : 0;
    }
  }
}

void matmat_rows_f16_panels(const MatrixRef& w, const float* X, uint32_t n_tokens, float* Y, uint32_t begin,
                            uint32_t end, bool squared_relu) {
  const uint32_t K = w.cols;
  const auto* panels = static_cast<const uint16_t*>(w.data);
  const uint32_t first_panel = begin / kPanelRows;
  const uint32_t end_panel = (end + kPanelRows - 1) / kPanelRows;
  if (n_tokens <= kSideTokens) {
    const SideBySide whole = side_by_side_for(n_tokens);
    uint32_t p = first_panel;
    for (; p + kSidePanels <= end_panel && (p + kSidePanels) * kPanelRows <= end; p += kSidePanels) {
      whole(panels + size_t(p) * K * kPanelRows, K, X, Y + size_t(p) * kPanelRows, w.rows);
    }
    for (; p < end_panel; ++p) {
      const uint32_t r0 = p * kPanelRows;
      tile_for(n_tokens, Prefetch::none)(panels + size_t(p) * K * kPanelRows, K, X, K, Y + r0, w.rows,
                                         row_masks(end - r0), false, {});
    }
  } else {
    // Tokens in groups of about equal size (16 as 8 + 8, not 12 + 4): a small tile has
    // too few multiply-adds for each widening of the weights.
    const uint32_t groups = (n_tokens + kTileTokens - 1) / kTileTokens;
    for (uint32_t k0 = 0; k0 < K; k0 += kDepth) {
      const uint32_t depth = std::min(kDepth, K - k0);
      for (uint32_t p = first_panel; p < end_panel; ++p) {
        const uint32_t r0 = p * kPanelRows;
        const uint16_t* panel = panels + (size_t(p) * K + k0) * kPanelRows;
        const RowMasks masks = row_masks(end - r0);
        // The columns after these: the next panel's, or the next pass's first panel.
        const uint32_t next_panel = p + 1 < end_panel ? p + 1 : first_panel;
        const uint32_t next_k0 = p + 1 < end_panel ? k0 : k0 + kDepth;
        NextColumns next;
        if (next_k0 < K) {
          next = {panels + (size_t(next_panel) * K + next_k0) * kPanelRows, std::min(kDepth, K - next_k0)};
        }
        for (uint32_t g = 0; g < groups; ++g) {
          const uint32_t t0 = uint32_t(uint64_t(n_tokens) * g / groups);
          const uint32_t n = uint32_t(uint64_t(n_tokens) * (g + 1) / groups) - t0;
          // The first group's pass brings the weights in (from L2 after the first panel);
          // the others find them in cache, and the last brings in the next panel's.
          const Prefetch prefetch =
              g == 0 ? Prefetch::ahead : (g + 1 == groups ? Prefetch::next_into_l2 : Prefetch::none);
          tile_for(n, prefetch)(panel, depth, X + size_t(t0) * K + k0, K, Y + size_t(t0) * w.rows + r0, w.rows, masks,
                                k0 > 0, next);
        }
      }
    }
  }
  if (squared_relu) squared_relu_rows(Y, w.rows, n_tokens, begin, end);
}

}  // namespace rwkv::RWKV_KERNEL_NS

#endif
