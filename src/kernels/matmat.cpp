// Sequence-mode products Y = X Wᵀ (X: T tokens × K, W: N rows × K, any weight type) as
// a blocked GEMM with its own micro-kernel. Eigen's GEMM reached about 45% of this
// machine's FMA peak on these shapes (T = 128, K = 768..3072); the tile below keeps
// 12 accumulators in registers (6 rows × 16 tokens in AVX2, 6 × 32 in AVX-512) and needs
// 8 loads per 12 FMAs.
//
// Layout: tokens are packed once per product in blocks of kTokenBlock, k-major, so
// that one k step of a block is two vector loads; weights are widened to float32 a
// panel of kPanelRows rows × kDepth columns at a time (the only conversion, once per
// weight and product), and each panel multiplies every token block while it is in L1.
// A task owns a range of rows and accumulates them transposed ([row][token]), then
// writes them into Y's columns.
//
// Levels without AVX2 use Eigen's GEMM instead (matmat_eigen.cpp), which has
// vector code for other instruction sets.
#include <algorithm>
#include <cstddef>
#include <cstring>

#include "kernels/row_dots.hpp"
#include "kernels/scratch.hpp"
#include "kernels/transpose.hpp"

#ifdef RWKV_HAVE_AVX2

namespace rwkv::RWKV_KERNEL_NS {

namespace {

constexpr uint32_t kPanelRows = 6;
static_assert(kMatmatRowGranule % kPanelRows == 0);
// Columns per pass: a pass's packed tokens (T × kDepth floats, 128 KiB at T = 128) stay
// in L2 while every panel of the task goes over them. A multiple of the quant block.
constexpr uint32_t kDepth = 256;

// Panels ahead of the one being multiplied whose weights are prefetched.
constexpr uint32_t kPrefetchPanels = 2;

uint32_t round_up(uint32_t n, uint32_t m) { return (n + m - 1) / m * m; }

// out[r][l] (+)= sum_k panel[r * depth + k] * tokens[k * kTokenBlock + l], r < kPanelRows,
// l < kTokenBlock (two vectors); row r of out starts at out + r * out_stride.
void micro_tile(const float* panel, uint32_t depth, const float* tokens, float* out, size_t out_stride,
                bool accumulate) {
  using V = FloatVec;
  static_assert(kTokenBlock == 2 * V::kWidth);
  // Named accumulators: as an array, GCC 12 spills them to the stack every iteration.
  V::T c00 = V::zero(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  V::T c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  const float* w0 = panel;
  const float* w1 = w0 + depth;
  const float* w2 = w1 + depth;
  const float* w3 = w2 + depth;
  const float* w4 = w3 + depth;
  const float* w5 = w4 + depth;
  for (uint32_t k = 0; k < depth; ++k, tokens += kTokenBlock) {
    const V::T x0 = V::load(tokens);
    const V::T x1 = V::load(tokens + V::kWidth);
    V::T w = V::broadcast(w0[k]);
    c00 = V::fma(w, x0, c00);
    c01 = V::fma(w, x1, c01);
    w = V::broadcast(w1[k]);
    c10 = V::fma(w, x0, c10);
    c11 = V::fma(w, x1, c11);
    w = V::broadcast(w2[k]);
    c20 = V::fma(w, x0, c20);
    c21 = V::fma(w, x1, c21);
    w = V::broadcast(w3[k]);
    c30 = V::fma(w, x0, c30);
    c31 = V::fma(w, x1, c31);
    w = V::broadcast(w4[k]);
    c40 = V::fma(w, x0, c40);
    c41 = V::fma(w, x1, c41);
    w = V::broadcast(w5[k]);
    c50 = V::fma(w, x0, c50);
    c51 = V::fma(w, x1, c51);
  }
  const V::T tile[kPanelRows][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (uint32_t r = 0; r < kPanelRows; ++r) {
    float* o = out + r * out_stride;
    V::T lo = tile[r][0], hi = tile[r][1];
    if (accumulate) {
      lo = V::add(lo, V::load(o));
      hi = V::add(hi, V::load(o + V::kWidth));
    }
    V::store(o, lo);
    V::store(o + V::kWidth, hi);
  }
}

// The narrow tile for batched decoding (a few tokens, one vector of them): out[r][l] (+)=
// sum_k panel[r * depth + k] * tokens[k * kNarrowTokens + l] for r < kNarrowRows. Twelve
// accumulators; each k step loads the token vector once and multiplies it by 12
// broadcast weights, so a batch of 16 (AVX-512) or 8 (AVX2) is not padded to the wide
// tile's 32 or 16 tokens.
void narrow_tile(const float* panel, uint32_t depth, const float* tokens, float* out, size_t out_stride,
                 const std::byte* prefetch,
                 size_t prefetch_lines) {
  using V = FloatVec;
  static_assert(kNarrowTokens == V::kWidth && kNarrowRows == 12);
  V::T c0 = V::zero(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  V::T c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  const float* w = panel;
  // The next panel's weights, a cache line every `stride` k steps: spread over the
  // multiplications, the loads from memory overlap them instead of stalling the widening.
  const uint32_t stride = prefetch_lines == 0 ? depth + 1 : std::max<uint32_t>(1, depth / prefetch_lines);
  size_t line = 0;
  uint32_t until_prefetch = 0;
  for (uint32_t k = 0; k < depth; ++k, tokens += kNarrowTokens, ++w) {
    if (until_prefetch-- == 0) {
      until_prefetch = stride - 1;
      if (line < prefetch_lines) __builtin_prefetch(prefetch + kCacheLineBytes * line++, 0, 3);
    }
    const V::T x = V::load(tokens);
    c0 = V::fma(V::broadcast(w[0 * depth]), x, c0);
    c1 = V::fma(V::broadcast(w[1 * depth]), x, c1);
    c2 = V::fma(V::broadcast(w[2 * depth]), x, c2);
    c3 = V::fma(V::broadcast(w[3 * depth]), x, c3);
    c4 = V::fma(V::broadcast(w[4 * depth]), x, c4);
    c5 = V::fma(V::broadcast(w[5 * depth]), x, c5);
    c6 = V::fma(V::broadcast(w[6 * depth]), x, c6);
    c7 = V::fma(V::broadcast(w[7 * depth]), x, c7);
    c8 = V::fma(V::broadcast(w[8 * depth]), x, c8);
    c9 = V::fma(V::broadcast(w[9 * depth]), x, c9);
    c10 = V::fma(V::broadcast(w[10 * depth]), x, c10);
    c11 = V::fma(V::broadcast(w[11 * depth]), x, c11);
  }
  const V::T tile[kNarrowRows] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  for (uint32_t r = 0; r < kNarrowRows; ++r) V::store(out + r * out_stride, tile[r]);
  for (; line < prefetch_lines; ++line) __builtin_prefetch(prefetch + kCacheLineBytes * line, 0, 3);
}

}  // namespace

// packed[(b * K + k) * kTokenBlock + l] = X[b * kTokenBlock + l, k], zero for tokens past T,
// for token block b and k in [col_begin, col_end).
void pack_tokens(const float* X, uint32_t T, uint32_t K, uint32_t b, uint32_t col_begin, uint32_t col_end,
                 float* packed) {
  float* dst = packed + size_t(b) * K * kTokenBlock;
  const uint32_t first = b * kTokenBlock;
  const uint32_t present = std::min(kTokenBlock, T - first);
  transpose_floats(X + size_t(first) * K + col_begin, K, dst + size_t(col_begin) * kTokenBlock, kTokenBlock, present,
                   col_end - col_begin);
  for (uint32_t k = col_begin; k < col_end && present < kTokenBlock; ++k) {
    std::fill(dst + size_t(k) * kTokenBlock + present, dst + size_t(k + 1) * kTokenBlock, 0.0f);
  }
}

size_t packed_tokens_floats(uint32_t n_tokens, uint32_t cols) { return size_t(round_up(n_tokens, kTokenBlock)) * cols; }

void matmat_rows(const MatrixRef& w, const float* packed_tokens, float* Y, uint32_t n_tokens, uint32_t row_begin,
                 uint32_t row_end, bool squared_relu) {
  const uint32_t K = w.cols;
  const uint32_t padded_tokens = round_up(n_tokens, kTokenBlock);
  const uint32_t n_rows = row_end - row_begin;
  // Each thread's own buffers: [n_rows rounded up to panels][padded_tokens] and [kPanelRows][kDepth].
  float* transposed = static_cast<float*>(
      thread_scratch(ScratchSlot::Transposed, size_t(round_up(n_rows, kPanelRows)) * padded_tokens * sizeof(float)));
  float* panel = static_cast<float*>(thread_scratch(ScratchSlot::Panel, size_t(kPanelRows) * kDepth * sizeof(float)));
  const size_t row_bytes = dtype_row_bytes(w.dtype, K);
  const size_t block_bytes = dtype_block_bytes(w.dtype);
  const uint32_t block_values = dtype_block_values(w.dtype);
  for (uint32_t k0 = 0; k0 < K; k0 += kDepth) {
    const uint32_t depth = std::min(kDepth, K - k0);
    const size_t first_byte = size_t(k0) / block_values * block_bytes;
    const size_t panel_bytes = (size_t(depth) + block_values - 1) / block_values * block_bytes;
    const auto prefetch_rows = [&](uint32_t begin, uint32_t end) {
      for (uint32_t r = begin; r < std::min(row_end, end); ++r) {
        prefetch_bytes(static_cast<const std::byte*>(w.data) + r * row_bytes + first_byte, panel_bytes);
      }
    };
    prefetch_rows(row_begin, row_begin + kPrefetchPanels * kPanelRows);
    for (uint32_t p0 = row_begin; p0 < row_end; p0 += kPanelRows) {
      const uint32_t panel_rows = std::min(kPanelRows, row_end - p0);
      // Later panels' weights come from memory while this one is multiplied: without
      // this the widening below waits on every cache miss.
      prefetch_rows(p0 + kPrefetchPanels * kPanelRows, p0 + (kPrefetchPanels + 1) * kPanelRows);
      dequantize_block(w, p0, p0 + panel_rows, k0, k0 + depth, panel);
      std::fill(panel + size_t(panel_rows) * depth, panel + size_t(kPanelRows) * depth, 0.0f);
      float* out = transposed + size_t(p0 - row_begin) * padded_tokens;
      for (uint32_t b = 0; b < padded_tokens; b += kTokenBlock) {
        micro_tile(panel, depth, packed_tokens + (size_t(b) * K + size_t(k0) * kTokenBlock), out + b,
                   padded_tokens, k0 > 0);
      }
    }
  }
  if (squared_relu) square_relu(transposed, size_t(n_rows) * padded_tokens);
  transpose_floats(transposed, padded_tokens, Y + row_begin, w.rows, n_rows, n_tokens);
}


void pack_tokens_narrow(const float* X, uint32_t T, uint32_t K, float* packed) {
  for (uint32_t first = 0; first < T; first += kNarrowTokens) {
    const uint32_t present = std::min(kNarrowTokens, T - first);
    float* group = packed + size_t(first) * K;
    transpose_floats(X + size_t(first) * K, K, group, kNarrowTokens, present, K);
    for (uint32_t k = 0; k < K && present < kNarrowTokens; ++k) {
      std::fill(group + size_t(k) * kNarrowTokens + present, group + size_t(k + 1) * kNarrowTokens, 0.0f);
    }
  }
}

void matmat_rows_narrow(const MatrixRef& w, const float* packed_tokens, float* Y, uint32_t n_tokens,
                        uint32_t row_begin, uint32_t row_end, bool squared_relu) {
  const uint32_t K = w.cols;
  const uint32_t n_rows = row_end - row_begin;
  const uint32_t padded_tokens = round_up(n_tokens, kNarrowTokens);
  // [n_rows rounded up to panels][padded_tokens] sums, and kNarrowRows whole rows widened
  // (L2: 144 KiB at K = 3072). Whole rows, not kDepth columns as matmat_rows: a panel is
  // then one contiguous run of W, and the next one streams in while this one multiplies
  // each group of tokens.
  float* transposed = static_cast<float*>(thread_scratch(
      ScratchSlot::Transposed, size_t(round_up(n_rows, kNarrowRows)) * padded_tokens * sizeof(float)));
  float* panel = static_cast<float*>(thread_scratch(ScratchSlot::Panel, size_t(kNarrowRows) * K * sizeof(float)));
  const size_t row_bytes = dtype_row_bytes(w.dtype, K);
  const auto* data = static_cast<const std::byte*>(w.data);
  prefetch_bytes(data + size_t(row_begin) * row_bytes, size_t(std::min(kNarrowRows, n_rows)) * row_bytes);
  const uint32_t n_groups = padded_tokens / kNarrowTokens;
  for (uint32_t p0 = row_begin; p0 < row_end; p0 += kNarrowRows) {
    const uint32_t panel_rows = std::min(kNarrowRows, row_end - p0);
    dequantize_block(w, p0, p0 + panel_rows, 0, K, panel);
    std::fill(panel + size_t(panel_rows) * K, panel + size_t(kNarrowRows) * K, 0.0f);
    const uint32_t next = p0 + kNarrowRows;
    const size_t next_bytes = next < row_end ? size_t(std::min(kNarrowRows, row_end - next)) * row_bytes : 0;
    const size_t next_lines = (next_bytes + kCacheLineBytes - 1) / kCacheLineBytes;
    for (uint32_t g = 0; g < n_groups; ++g) {
      // The next panel's lines are spread over the groups' multiplications.
      const size_t first_line = next_lines * g / n_groups, end_line = next_lines * (g + 1) / n_groups;
      narrow_tile(panel, K, packed_tokens + size_t(g) * kNarrowTokens * K,
                  transposed + size_t(p0 - row_begin) * padded_tokens + g * kNarrowTokens, padded_tokens,
                  data + size_t(next) * row_bytes + first_line * kCacheLineBytes, end_line - first_line);
    }
  }
  if (squared_relu) square_relu(transposed, size_t(n_rows) * padded_tokens);
  transpose_floats(transposed, padded_tokens, Y + row_begin, w.rows, n_rows, n_tokens);
}

}  // namespace rwkv::RWKV_KERNEL_NS

#endif  // RWKV_HAVE_AVX2
