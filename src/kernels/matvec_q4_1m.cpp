#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/row_dots.hpp"

namespace rwkv {

namespace {

// sum_i (scale*q_i + min) * xs*xq_i = scale*xs * sum_i q_i*xq_i + min * (xs * sum_i xq_i):
// the integer dot product per block, plus the minimum times the block's precomputed sum.
float dot_q4_1m(const BlockQ4_1M* w, const Int8Activation& x) {
  const int8_t* xq = x.quants.data();
  const float* xs = x.scales.data();
  const float* xsum = x.sums.data();
  float min_terms = 0.0f;
#ifdef RWKV_HAVE_AVX2
  const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
  const float products = sum_blocks(x.n_blocks, [&](uint32_t b, __m256 acc) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].nibbles));
    // Low nibbles are values 0..15 of the block, high nibbles 16..31.
    const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), low_nibbles);
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlockValues));
    min_terms += _cvtsh_ss(w[b].min) * xsum[b];
    return _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].scale) * xs[b]), _mm256_cvtepi32_ps(dot_u8_i8(q, xv)), acc);
  });
  return products + min_terms;
#else
  float products = 0.0f;
  constexpr uint32_t kHalf = kQuantBlockValues / 2;
  for (uint32_t b = 0; b < x.n_blocks; ++b) {
    const int8_t* xb = xq + b * kQuantBlockValues;
    int32_t dot = 0;
    for (uint32_t j = 0; j < kHalf; ++j) {
      dot += int32_t(w[b].nibbles[j] & 0x0f) * xb[j] + int32_t(w[b].nibbles[j] >> 4) * xb[j + kHalf];
    }
    products += fp16_to_fp32(w[b].scale) * xs[b] * static_cast<float>(dot);
    min_terms += fp16_to_fp32(w[b].min) * xsum[b];
  }
  return products + min_terms;
#endif
}

}  // namespace

void matvec_rows_q4_1m(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin, uint32_t row_end) {
  dot_each_row<BlockQ4_1M>(w, x.n_blocks, x, y, row_begin, row_end, dot_q4_1m);
}

}  // namespace rwkv
