#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/simd.hpp"

namespace rwkv {

namespace {

#ifdef RWKV_HAVE_AVX2
// int8 × int8 has no direct instruction: move the weight's sign onto x so that the
// unsigned × signed multiply-add can do it (|w| <= 127 keeps it from saturating).
inline __m256 block_dot(const BlockQ8_0& w, const int8_t* x) {
  const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.quants));
  const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  return _mm256_cvtepi32_ps(dot_u8_i8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq)));
}
#endif

float dot_q8_0(const BlockQ8_0* w, const Int8Activation& x) {
  const int8_t* xq = x.quants.data();
  const float* xs = x.scales.data();
  const uint32_t n = x.n_blocks;
#ifdef RWKV_HAVE_AVX2
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  uint32_t b = 0;
  for (; b + 2 <= n; b += 2) {
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].scale) * xs[b]), block_dot(w[b], xq + b * kQuantBlockValues),
                           acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b + 1].scale) * xs[b + 1]),
                           block_dot(w[b + 1], xq + (b + 1) * kQuantBlockValues), acc1);
  }
  if (b < n) {
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].scale) * xs[b]), block_dot(w[b], xq + b * kQuantBlockValues),
                           acc0);
  }
  return horizontal_sum(_mm256_add_ps(acc0, acc1));
#else
  float sum = 0.0f;
  for (uint32_t b = 0; b < n; ++b) {
    int32_t dot = 0;
    for (uint32_t i = 0; i < kQuantBlockValues; ++i) dot += int32_t(w[b].quants[i]) * xq[b * kQuantBlockValues + i];
    sum += fp16_to_fp32(w[b].scale) * xs[b] * static_cast<float>(dot);
  }
  return sum;
#endif
}

}  // namespace

void matvec_rows_q8_0(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin, uint32_t row_end) {
  const auto* blocks = static_cast<const BlockQ8_0*>(w.data);
  for (uint32_t r = row_begin; r < row_end; ++r) y[r] = dot_q8_0(blocks + size_t(r) * x.n_blocks, x);
}

}  // namespace rwkv
