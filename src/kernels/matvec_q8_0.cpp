#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/row_dots.hpp"

namespace rwkv {

namespace {

float dot_q8_0(const BlockQ8_0* w, const Int8Activation& x) {
  const int8_t* xq = x.quants.data();
  const float* xs = x.scales.data();
#if defined(RWKV_HAVE_AVX512)
  const auto weight_quants = [w](uint32_t b) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].quants));
  };
  return sum_block_pairs(x.n_blocks, [&](uint32_t b, bool second, __m512 acc) {
    const __m512i wq = join_halves(b, second, weight_quants);
    const __m512i xv = activation_pair(xq, b, second);
    // The sign trick of the AVX2 path below; AVX-512 has no vpsignb, so x is negated
    // where w < 0 (where w == 0, |w| == 0 zeroes the product anyway).
    const __m512i signed_x = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(wq), _mm512_setzero_si512(), xv);
    const __m512i dot = dot_u8_i8(_mm512_abs_epi8(wq), signed_x);
    const float low = _cvtsh_ss(w[b].scale) * xs[b];
    const float high = second ? _cvtsh_ss(w[b + 1].scale) * xs[b + 1] : 0.0f;
    return _mm512_fmadd_ps(split_scales(low, high), _mm512_cvtepi32_ps(dot), acc);
  });
#elif defined(RWKV_HAVE_AVX2)
  return sum_blocks(x.n_blocks, [&](uint32_t b, __m256 acc) {
    const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].quants));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlockValues));
    // int8 × int8 has no multiply-add: move the weight's sign onto x so that the
    // unsigned × signed one can do it (|w| <= 127 keeps it from saturating).
    const __m256i dot = dot_u8_i8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xv, wq));
    return _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].scale) * xs[b]), _mm256_cvtepi32_ps(dot), acc);
  });
#else
  float sum = 0.0f;
  for (uint32_t b = 0; b < x.n_blocks; ++b) {
    int32_t dot = 0;
    for (uint32_t i = 0; i < kQuantBlockValues; ++i) dot += int32_t(w[b].quants[i]) * xq[b * kQuantBlockValues + i];
    sum += fp16_to_fp32(w[b].scale) * xs[b] * static_cast<float>(dot);
  }
  return sum;
#endif
}

}  // namespace

void matvec_rows_q8_0(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin, uint32_t row_end) {
  dot_each_row<BlockQ8_0>(w, x.n_blocks, x, y, row_begin, row_end, dot_q8_0);
}

}  // namespace rwkv
