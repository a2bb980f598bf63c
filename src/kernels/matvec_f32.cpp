#include "kernels/matvec_rows.hpp"
#include "kernels/row_dots.hpp"

namespace rwkv::RWKV_KERNEL_NS {

// The float32 dot product of matvec's rows, also the `dot` kernel of vector_math.hpp.
float dot(const float* w, const float* x, uint32_t n) {
  uint32_t i = 0;
  float sum = 0.0f;
#if defined(RWKV_HAVE_AVX512)
  sum = dot_f32_by16(
      x, n, [w](uint32_t at) { return _mm512_loadu_ps(w + at); },
      [w](uint32_t at, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, w + at); });
  i = n;
#elif defined(RWKV_HAVE_AVX2)
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), acc1);
  }
  sum = horizontal_sum(_mm256_add_ps(acc0, acc1));
#endif
  for (; i < n; ++i) sum += w[i] * x[i];
  return sum;
}

void matvec_rows_f32(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end) {
  dot_each_row<float>(w, w.cols, x, y, row_begin, row_end,
                      [&](const float* row, const float* v) { return dot(row, v, w.cols); });
}

void matmat_rows_f32_tokens(const MatrixRef& w, const float* const* x, uint32_t n_tokens, float* Y,
                         uint32_t row_begin, uint32_t row_end) {
  dot_each_row_tokens<float>(w, w.cols, x, n_tokens, Y, row_begin, row_end,
                            [&](const float* row, const float* v) { return dot(row, v, w.cols); });
}

}  // namespace rwkv::RWKV_KERNEL_NS
