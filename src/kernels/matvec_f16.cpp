#include <Eigen/Core>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define RWKV_HAVE_F16C_FMA 1
#endif

#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"

namespace rwkv {

namespace {

float dot_f16_f32(const uint16_t* w, const float* x, uint32_t n) {
  uint32_t i = 0;
  float sum = 0.0f;
#ifdef RWKV_HAVE_F16C_FMA
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
    acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), acc1);
  }
  __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  lo = _mm_hadd_ps(lo, lo);
  lo = _mm_hadd_ps(lo, lo);
  sum = _mm_cvtss_f32(lo);
#endif
  for (; i < n; ++i) sum += fp16_to_fp32(w[i]) * x[i];
  return sum;
}

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace

void matvec_rows_f16(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end) {
  const auto* data = static_cast<const uint16_t*>(w.data);
  for (uint32_t r = row_begin; r < row_end; ++r) y[r] = dot_f16_f32(data + size_t(r) * w.cols, x, w.cols);
}

void matmat_rows_f16(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens, uint32_t row_begin,
                     uint32_t row_end) {
  // Widen a block of rows to float32 once, then multiply it with every token (GEMM).
  constexpr uint32_t kBlockRows = 64;
  thread_local std::vector<float> block;
  block.resize(size_t(kBlockRows) * w.cols);
  Eigen::Map<const RowMajor> x(X, n_tokens, w.cols);
  for (uint32_t r0 = row_begin; r0 < row_end; r0 += kBlockRows) {
    const uint32_t r1 = std::min(row_end, r0 + kBlockRows);
    dequantize_rows(w, r0, r1, block.data());
    Eigen::Map<const RowMajor> m(block.data(), r1 - r0, w.cols);
    Eigen::Map<RowMajor, 0, Eigen::OuterStride<>> y(Y + r0, n_tokens, r1 - r0, Eigen::OuterStride<>(w.rows));
    y.noalias() = x * m.transpose();
  }
}

}  // namespace rwkv
