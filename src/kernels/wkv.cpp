#include "kernels/wkv.hpp"

#include <cstddef>

#include "kernels/simd.hpp"

namespace rwkv {

void wkv7_head_step(const float* r, const float* w, const float* k, const float* v, const float* kk,
                    const float* a, float* S, float* y, uint32_t N) {
#ifdef RWKV_HAVE_AVX2
  if (N % 8 == 0) {
    for (uint32_t i = 0; i < N; ++i) {
      float* row = S + size_t(i) * N;
      __m256 removed = _mm256_setzero_ps();
      for (uint32_t j = 0; j < N; j += 8) removed = _mm256_fmadd_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(kk + j), removed);
      const __m256 sa = _mm256_set1_ps(-horizontal_sum(removed));
      const __m256 vi = _mm256_set1_ps(v[i]);
      __m256 yi = _mm256_setzero_ps();
      for (uint32_t j = 0; j < N; j += 8) {
        const __m256 added = _mm256_fmadd_ps(
            _mm256_mul_ps(sa, _mm256_loadu_ps(kk + j)), _mm256_loadu_ps(a + j), _mm256_mul_ps(vi, _mm256_loadu_ps(k + j)));
        const __m256 s = _mm256_fmadd_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(w + j), added);
        _mm256_storeu_ps(row + j, s);
        yi = _mm256_fmadd_ps(s, _mm256_loadu_ps(r + j), yi);
      }
      y[i] = horizontal_sum(yi);
    }
    return;
  }
#endif
  for (uint32_t i = 0; i < N; ++i) {
    float* row = S + size_t(i) * N;
    float sa = 0.0f;
    for (uint32_t j = 0; j < N; ++j) sa -= row[j] * kk[j];
    float yi = 0.0f;
    const float vi = v[i];
    for (uint32_t j = 0; j < N; ++j) {
      row[j] = row[j] * w[j] + sa * kk[j] * a[j] + vi * k[j];
      yi += row[j] * r[j];
    }
    y[i] = yi;
  }
}

}  // namespace rwkv
