#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/simd.hpp"

namespace rwkv {

namespace {

#ifdef RWKV_HAVE_AVX2
// bfloat16 is the top half of a float32: widening is a zero-extend and a shift.
inline __m256 load_bf16x8(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
#endif

float dot_bf16_f32(const uint16_t* w, const float* x, uint32_t n) {
  uint32_t i = 0;
  float sum = 0.0f;
#ifdef RWKV_HAVE_AVX2
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(load_bf16x8(w + i), _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(load_bf16x8(w + i + 8), _mm256_loadu_ps(x + i + 8), acc1);
  }
  sum = horizontal_sum(_mm256_add_ps(acc0, acc1));
#endif
  for (; i < n; ++i) sum += bf16_to_fp32(w[i]) * x[i];
  return sum;
}

}  // namespace

void matvec_rows_bf16(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end) {
  const auto* data = static_cast<const uint16_t*>(w.data);
  for (uint32_t r = row_begin; r < row_end; ++r) y[r] = dot_bf16_f32(data + size_t(r) * w.cols, x, w.cols);
}

}  // namespace rwkv
