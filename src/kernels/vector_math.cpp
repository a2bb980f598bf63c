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

namespace {

// The sum over i < n of term(i) (a vector of lanes i..i + W) and, past the last whole
// vector, of scalar_term(i): two vectors of partial sums, so that adds of one do not wait
// on the other's.
template <typename Term, typename ScalarTerm>
float vector_sum(uint32_t n, Term term, ScalarTerm scalar_term) {
  uint32_t i = 0;
  float sum = 0.0f;
#ifdef RWKV_HAVE_AVX2
  using V = FloatVec;
  V::T acc0 = V::zero(), acc1 = V::zero();
  for (; i + 2 * V::kWidth <= n; i += 2 * V::kWidth) {
    acc0 = V::add(acc0, term(i));
    acc1 = V::add(acc1, term(i + V::kWidth));
  }
  if (i + V::kWidth <= n) {
    acc0 = V::add(acc0, term(i));
    i += V::kWidth;
  }
  sum = V::sum(V::add(acc0, acc1));
#else
  (void)term;
#endif
  for (; i < n; ++i) sum += scalar_term(i);
  return sum;
}

}  // namespace

float dot3(const float* a, const float* b, const float* c, uint32_t n) {
#ifdef RWKV_HAVE_AVX2
  const auto term = [&](uint32_t i) {
    return FloatVec::mul(FloatVec::mul(FloatVec::load(a + i), FloatVec::load(b + i)), FloatVec::load(c + i));
  };
#else
  const auto term = [](uint32_t) { return 0.0f; };
#endif
  return vector_sum(n, term, [&](uint32_t i) { return a[i] * b[i] * c[i]; });
}

void token_shift_mix(const float* cur, const float* prev, const float* mix, float* out, uint32_t n) {
  uint32_t i = 0;
#ifdef RWKV_HAVE_AVX2
  using V = FloatVec;
  for (; i + V::kWidth <= n; i += V::kWidth) {
    const V::T c = V::load(cur + i);
    V::store(out + i, V::fma(V::sub(V::load(prev + i), c), V::load(mix + i), c));
  }
  for (; i < n; ++i) out[i] = std::fma(prev[i] - cur[i], mix[i], cur[i]);  // as the lanes round
#endif
  for (; i < n; ++i) out[i] = cur[i] + (prev[i] - cur[i]) * mix[i];
}

void token_shift_blend(const float* cur, const float* prev, const float* mix, float* out, uint32_t n) {
  uint32_t i = 0;
#ifdef RWKV_HAVE_AVX2
  using V = FloatVec;
  const V::T one = V::broadcast(1.0f);
  for (; i + V::kWidth <= n; i += V::kWidth) {
    const V::T m = V::load(mix + i);
    const V::T rest = V::mul(V::load(prev + i), V::sub(one, m));
    V::store(out + i, V::fma(V::load(cur + i), m, rest));
  }
  for (; i < n; ++i) out[i] = std::fma(cur[i], mix[i], prev[i] * (1.0f - mix[i]));
#endif
  for (; i < n; ++i) out[i] = cur[i] * mix[i] + prev[i] * (1.0f - mix[i]);
}

void add_inplace(float* x, const float* y, size_t n) {
  size_t i = 0;
#ifdef RWKV_HAVE_AVX2
  using V = FloatVec;
  for (; i + V::kWidth <= n; i += V::kWidth) V::store(x + i, V::add(V::load(x + i), V::load(y + i)));
#endif
  for (; i < n; ++i) x[i] += y[i];
}

void add_product(float* x, const float* a, const float* b, size_t n) {
  size_t i = 0;
#ifdef RWKV_HAVE_AVX2
  using V = FloatVec;
  for (; i + V::kWidth <= n; i += V::kWidth) V::store(x + i, V::fma(V::load(a + i), V::load(b + i), V::load(x + i)));
  for (; i < n; ++i) x[i] = std::fma(a[i], b[i], x[i]);
#endif
  for (; i < n; ++i) x[i] += a[i] * b[i];
}

// out = (x - mean) / sqrt(var + eps) * weight + bias over n values (biased variance).
void normalize(const float* x, const float* weight, const float* bias, float* out, uint32_t n, float eps) {
  const auto value = [&](uint32_t i) { return x[i]; };
#ifdef RWKV_HAVE_AVX2
  using V = FloatVec;
  const float mean = vector_sum(n, [&](uint32_t i) { return V::load(x + i); }, value) / static_cast<float>(n);
  const auto squared = [&](uint32_t i) {
    const V::T d = V::add(V::load(x + i), V::broadcast(-mean));
    return V::mul(d, d);
  };
#else
  const float mean = vector_sum(n, [](uint32_t) { return 0.0f; }, value) / static_cast<float>(n);
  const auto squared = [](uint32_t) { return 0.0f; };
#endif
  const float var = vector_sum(n, squared, [&](uint32_t i) { return (x[i] - mean) * (x[i] - mean); }) /
                    static_cast<float>(n);
  const float inv = 1.0f / std::sqrt(var + eps);
  uint32_t i = 0;
#ifdef RWKV_HAVE_AVX2
  const V::T inv_v = V::broadcast(inv);
  for (; i + V::kWidth <= n; i += V::kWidth) {
    const V::T scaled = V::mul(V::mul(V::add(V::load(x + i), V::broadcast(-mean)), inv_v), V::load(weight + i));
    V::store(out + i, V::add(scaled, V::load(bias + i)));
  }
#endif
  for (; i < n; ++i) out[i] = (x[i] - mean) * inv * weight[i] + bias[i];
}

}  // namespace rwkv::RWKV_KERNEL_NS
