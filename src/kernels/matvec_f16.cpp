#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/simd.hpp"

namespace rwkv {

namespace {

float dot_f16_f32(const uint16_t* w, const float* x, uint32_t n) {
  uint32_t i = 0;
  float sum = 0.0f;
#ifdef RWKV_HAVE_AVX2
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
    acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), acc1);
  }
  sum = horizontal_sum(_mm256_add_ps(acc0, acc1));
#endif
  for (; i < n; ++i) sum += fp16_to_fp32(w[i]) * x[i];
  return sum;
}

}  // namespace

void matvec_rows_f16(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end) {
  const auto* data = static_cast<const uint16_t*>(w.data);
  for (uint32_t r = row_begin; r < row_end; ++r) y[r] = dot_f16_f32(data + size_t(r) * w.cols, x, w.cols);
}

}  // namespace rwkv
