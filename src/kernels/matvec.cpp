#include "kernels/matvec.hpp"

#include <Eigen/Core>
#include <cmath>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define RWKV_HAVE_F16C_FMA 1
#endif

#include "kernels/half.hpp"

namespace rwkv {

namespace {

using RowMajorMap = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

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

}  // namespace

void matvec(const MatrixRef& w, const float* x, float* y) {
  switch (w.dtype) {
    case DType::F32: {
      RowMajorMap m(static_cast<const float*>(w.data), w.rows, w.cols);
      Eigen::Map<Eigen::VectorXf>(y, w.rows).noalias() = m * Eigen::Map<const Eigen::VectorXf>(x, w.cols);
      return;
    }
    case DType::F16: {
      const auto* data = static_cast<const uint16_t*>(w.data);
      for (uint32_t r = 0; r < w.rows; ++r) y[r] = dot_f16_f32(data + size_t(r) * w.cols, x, w.cols);
      return;
    }
  }
}

void copy_row(const MatrixRef& w, uint32_t index, float* out) {
  switch (w.dtype) {
    case DType::F32: {
      const float* row = static_cast<const float*>(w.data) + size_t(index) * w.cols;
      for (uint32_t c = 0; c < w.cols; ++c) out[c] = row[c];
      return;
    }
    case DType::F16: {
      const uint16_t* row = static_cast<const uint16_t*>(w.data) + size_t(index) * w.cols;
      for (uint32_t c = 0; c < w.cols; ++c) out[c] = fp16_to_fp32(row[c]);
      return;
    }
  }
}

void layer_norm(const float* x, const float* weight, const float* bias, float* out, uint32_t n, float eps) {
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

void group_norm(float* x, const float* weight, const float* bias, uint32_t n_groups, uint32_t group_size, float eps) {
  for (uint32_t g = 0; g < n_groups; ++g) {
    float* v = x + size_t(g) * group_size;
    const float* wg = weight + size_t(g) * group_size;
    const float* bg = bias + size_t(g) * group_size;
    float mean = 0.0f;
    for (uint32_t i = 0; i < group_size; ++i) mean += v[i];
    mean /= static_cast<float>(group_size);
    float var = 0.0f;
    for (uint32_t i = 0; i < group_size; ++i) {
      const float d = v[i] - mean;
      var += d * d;
    }
    var /= static_cast<float>(group_size);
    const float inv = 1.0f / std::sqrt(var + eps);
    for (uint32_t i = 0; i < group_size; ++i) v[i] = (v[i] - mean) * inv * wg[i] + bg[i];
  }
}

}  // namespace rwkv
