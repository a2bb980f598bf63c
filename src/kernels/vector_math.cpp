#include <cmath>

#include "kernels/matvec_rows.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

#ifdef RWKV_HAVE_AVX2
// exp(x) = 2^n · e^r with n = round(x / ln 2) and |r| <= ln 2 / 2; e^r by Cephes'
// expf polynomial, ln 2 split in two so that r is exact.
__m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

__m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}
#endif

}  // namespace

void exp_inplace(float* x, uint32_t n) {
  uint32_t i = 0;
#ifdef RWKV_HAVE_AVX2
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8(_mm256_loadu_ps(x + i)));
#endif
  for (; i < n; ++i) x[i] = std::exp(x[i]);
}

void sigmoid_inplace(float* x, uint32_t n) {
  uint32_t i = 0;
#ifdef RWKV_HAVE_AVX2
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, sigmoid8(_mm256_loadu_ps(x + i)));
#endif
  for (; i < n; ++i) x[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void tanh_inplace(float* x, uint32_t n) {
  uint32_t i = 0;
#ifdef RWKV_HAVE_AVX2
  // tanh(x) = 1 − 2 / (1 + e^{2x}): saturates cleanly at both ends.
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 two = _mm256_set1_ps(2.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_mul_ps(two, _mm256_loadu_ps(x + i)));
    _mm256_storeu_ps(x + i, _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(one, e))));
  }
#endif
  for (; i < n; ++i) x[i] = std::tanh(x[i]);
}

}  // namespace rwkv::RWKV_KERNEL_NS
