// Products for a few tokens at once (batched decoding: one token of each of B sequences):
// Y = X Wᵀ with X of B ≤ kMaxSmallBatch rows. The blocked GEMM of matmat.cpp pads the
// tokens to blocks of 16 and packs and transposes them, which costs as much for 2 tokens
// as for 16; here each row of W is widened to float32 once (into
// L1 or L2) and multiplied with every token where it lies, with no padding: the work grows with
// B from the bandwidth-bound one-token cost.
//
// Each output Y[t, r] is one dot product summed in the same order whatever the batch's
// other tokens and whichever thread computes it, so a sequence's results do not depend
// on what it is batched with, nor on the thread count.
#include <algorithm>
#include <cstddef>
#include <cstring>

#include "kernels/row_dots.hpp"
#include "kernels/scratch.hpp"

#ifdef RWKV_HAVE_AVX2

namespace rwkv::RWKV_KERNEL_NS {

namespace {

// Rows widened together, and how far ahead rows are prefetched.
constexpr uint32_t kRows = 4;
constexpr uint32_t kRowsAhead = 2 * kRows;

using Vec = FloatVec;
#ifdef RWKV_HAVE_AVX512
// Tokens per tile: kRows × kTokens accumulators, kRows weight vectors and one token
// vector in the 32 registers.
constexpr uint32_t kTokens = 4;
#else
// 12 accumulators, 4 weight vectors: the 16 registers of AVX2.
constexpr uint32_t kTokens = 3;
#endif

// out[r * out_stride + t] += Σ_k panel[r * depth + k] · x[t * x_stride + k] for r < kRows
// and t < NT: the whole vectors of `depth`, then its tail one value at a time.
template <uint32_t NT>
void tile(const float* panel, uint32_t depth, const float* x, size_t x_stride, float* out, size_t out_stride) {
  typename Vec::T acc[kRows][NT];
  for (uint32_t r = 0; r < kRows; ++r) {
    for (uint32_t t = 0; t < NT; ++t) acc[r][t] = Vec::zero();
  }
  const uint32_t whole = depth / Vec::kWidth * Vec::kWidth;
  for (uint32_t k = 0; k < whole; k += Vec::kWidth) {
    typename Vec::T wv[kRows];
#pragma GCC unroll 4
    for (uint32_t r = 0; r < kRows; ++r) wv[r] = Vec::load(panel + r * depth + k);
#pragma GCC unroll 4
    for (uint32_t t = 0; t < NT; ++t) {
      const typename Vec::T xv = Vec::load(x + t * x_stride + k);
#pragma GCC unroll 4
      for (uint32_t r = 0; r < kRows; ++r) acc[r][t] = Vec::fma(wv[r], xv, acc[r][t]);
    }
  }
  for (uint32_t r = 0; r < kRows; ++r) {
    for (uint32_t t = 0; t < NT; ++t) {
      float s = Vec::sum(acc[r][t]);
      for (uint32_t k = whole; k < depth; ++k) s += panel[r * depth + k] * x[t * x_stride + k];
      out[r * out_stride + t] += s;
    }
  }
}

}  // namespace

void matmat_rows_small(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens, uint32_t row_begin,
                       uint32_t row_end, bool squared_relu) {
  const uint32_t K = w.cols;
  // kRows whole rows widened (L1 or L2: 4 × 7168 floats at most for the released shapes),
  // then every token tile over them with its sums in registers until the row's end.
  float* panel = static_cast<float*>(thread_scratch(ScratchSlot::Panel, size_t(kRows) * K * sizeof(float)));
  float sums[kRows * kMaxSmallBatch];
  // The rows after the ones being multiplied are prefetched: without it the widening
  // below waits on every cache miss, and took as long as the multiplications at 16
  // tokens (0.1B f16, 2 threads).
  const size_t row_bytes = dtype_row_bytes(w.dtype, K);
  const auto* bytes = static_cast<const std::byte*>(w.data);
  const auto prefetch_rows = [&](uint32_t begin, uint32_t end) {
    for (uint32_t r = begin; r < std::min(end, row_end); ++r) prefetch_bytes(bytes + size_t(r) * row_bytes, row_bytes);
  };
  prefetch_rows(row_begin, row_begin + kRowsAhead);
  for (uint32_t r0 = row_begin; r0 < row_end; r0 += kRows) {
    const uint32_t rows = std::min(kRows, row_end - r0);
    prefetch_rows(r0 + kRowsAhead, r0 + kRowsAhead + kRows);
    dequantize_block(w, r0, r0 + rows, 0, K, panel);
    std::fill(panel + size_t(rows) * K, panel + size_t(kRows) * K, 0.0f);
    std::fill_n(sums, kRows * n_tokens, 0.0f);
    uint32_t t = 0;
    for (; t + kTokens <= n_tokens; t += kTokens) tile<kTokens>(panel, K, X + size_t(t) * K, K, sums + t, n_tokens);
    const float* x = X + size_t(t) * K;
    switch (n_tokens - t) {
      case 1: tile<1>(panel, K, x, K, sums + t, n_tokens); break;
      case 2: tile<2>(panel, K, x, K, sums + t, n_tokens); break;
#ifdef RWKV_HAVE_AVX512
      case 3: tile<3>(panel, K, x, K, sums + t, n_tokens); break;
#endif
      default: break;
    }
    for (uint32_t r = 0; r < rows; ++r) {
      for (uint32_t t2 = 0; t2 < n_tokens; ++t2) {
        const float y = sums[r * n_tokens + t2];
        Y[size_t(t2) * w.rows + r0 + r] = squared_relu ? (y > 0.0f ? y * y : 0.0f) : y;
      }
    }
  }
}

}  // namespace rwkv::RWKV_KERNEL_NS

#endif  // RWKV_HAVE_AVX2
