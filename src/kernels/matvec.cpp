#include "kernels/matvec.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "kernels/matvec_rows.hpp"
#include "kernels/thread_pool.hpp"

namespace rwkv {

namespace {

// Below this many weights a product runs on the calling thread: handing it to the
// pool costs about a microsecond, as long as reading ~32 KiB of float16 weights.
constexpr uint64_t kDefaultMinWeightsToSplit = 16384;
std::atomic<uint64_t> g_min_weights_to_split{kDefaultMinWeightsToSplit};
// Rows per task are a multiple of this, so that no two threads write the same cache line of y.
constexpr uint32_t kRowGranule = 16;
// Splits [0, rows) into contiguous ranges of whole granules and runs fn(begin, end) on
// each, over kernel_pool(). Each row is computed by exactly one task with the same
// code as without the split, so the result does not depend on the thread count.
template <typename Fn>
void split_rows(uint32_t rows, uint32_t cols, uint32_t n_tokens, Fn&& fn) {
  if (uint64_t(rows) * cols * n_tokens < g_min_weights_to_split.load(std::memory_order_relaxed)) {
    fn(0u, rows);
    return;
  }
  parallel_for(rows, kRowGranule, fn);
}

}  // namespace

uint64_t min_weights_to_split() { return g_min_weights_to_split.load(); }
void set_min_weights_to_split(uint64_t n_weights) { g_min_weights_to_split = n_weights; }

void matvec(const MatrixRef& w, const float* x, float* y) {
  if (dtype_is_blocked(w.dtype)) {
    thread_local Int8Activation caller_activation;
    // A named reference: inside the lambda, `caller_activation` itself would name the
    // worker thread's own (empty) thread_local instead of the caller's.
    Int8Activation& x_int8 = caller_activation;
    quantize_activation(x, w.cols, x_int8);
    const auto rows = w.dtype == DType::Q8_0 ? matvec_rows_q8_0 : matvec_rows_q4_1m;
    split_rows(w.rows, w.cols, 1, [&](uint32_t begin, uint32_t end) { rows(w, x_int8, y, begin, end); });
    return;
  }
  split_rows(w.rows, w.cols, 1, [&](uint32_t begin, uint32_t end) {
    switch (w.dtype) {
      case DType::F32: matvec_rows_f32(w, x, y, begin, end); return;
      case DType::F16: matvec_rows_f16(w, x, y, begin, end); return;
      case DType::BF16: matvec_rows_bf16(w, x, y, begin, end); return;
      case DType::Q8_0:
      case DType::Q4_1M: return;  // handled above
    }
  });
}

void matmat(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens) {
  if (n_tokens == 1) {
    matvec(w, X, Y);  // one token: the bandwidth-bound kernel, not a GEMM
    return;
  }
#ifdef RWKV_HAVE_AVX2
  thread_local std::vector<float> caller_packing;
  const float* packed = pack_tokens_for_matmat(X, n_tokens, w.cols, caller_packing);
  const auto rows = [&](uint32_t begin, uint32_t end) { matmat_rows(w, packed, Y, n_tokens, begin, end); };
  if (uint64_t(w.rows) * w.cols * n_tokens < g_min_weights_to_split.load(std::memory_order_relaxed)) {
    rows(0, w.rows);
  } else {
    parallel_for(w.rows, matmat_row_granule(), rows);
  }
#else
  split_rows(w.rows, w.cols, n_tokens, [&](uint32_t begin, uint32_t end) {
    if (w.dtype == DType::F32) {
      matmat_rows_f32(w, X, Y, n_tokens, begin, end);
    } else {
      matmat_rows_dequantized(w, X, Y, n_tokens, begin, end);
    }
  });
#endif
}

void copy_row(const MatrixRef& w, uint32_t index, float* out) { dequantize_rows(w, index, index + 1, out); }

namespace {

// out = (x - mean) / sqrt(var + eps) * weight + bias over n values (biased variance).
void normalize(const float* x, const float* weight, const float* bias, float* out, uint32_t n, float eps) {
  float mean = 0.0f;
  for (uint32_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<float>(n);
  float var = 0.0f;
  for (uint32_t i = 0; i < n; ++i) {
    const float d = x[i] - mean;
    var += d * d;
  }
  var /= static_cast<float>(n);
  const float inv = 1.0f / std::sqrt(var + eps);
  for (uint32_t i = 0; i < n; ++i) out[i] = (x[i] - mean) * inv * weight[i] + bias[i];
}

}  // namespace

void layer_norm(const float* x, const float* weight, const float* bias, float* out, uint32_t n, float eps) {
  normalize(x, weight, bias, out, n, eps);
}

void group_norm(float* x, const float* weight, const float* bias, uint32_t n_groups, uint32_t group_size, float eps) {
  for (uint32_t g = 0; g < n_groups; ++g) {
    const size_t at = size_t(g) * group_size;
    normalize(x + at, weight + at, bias + at, x + at, group_size, eps);
  }
}

}  // namespace rwkv
