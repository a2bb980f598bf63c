#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/row_dots.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

float dot_q8_0(const BlockQ8_0* w, const Int8Activation& x) {
  const int8_t* xq = x.quants.data();
  const float* xs = x.scales.data();
#if defined(RWKV_HAVE_AVX512)
  const auto weight_quants = [w](uint32_t b) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].quants));
  };
  // Lane 2j and 2j + 1 take x's scale of block j.
  const __m512i spread = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  return sum_block_groups(
      x.n_groups,
      [&](uint32_t b, uint32_t count) {
        // Lane 2j holds block j's scale; odd lanes the first two quants read as binary16, unused.
        const __m512 scales = _mm512_cvtph_ps(block_heads(w + b, count));
        const __m512 x_scales = _mm512_permutexvar_ps(spread, _mm512_zextps256_ps512(first_floats(xs + b, count)));
        return _mm512_mul_ps(scales, x_scales);
      },
      [&](uint32_t b, bool second) {
        const __m512i wq = join_halves(b, second, weight_quants);
        const __m512i xv = activation_pair(xq, b, second);
        // The sign trick of the AVX2 path below; AVX-512 has no vpsignb, so x is negated
        // where w < 0 (where w == 0, |w| == 0 zeroes the product anyway).
        const __m512i signed_x = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(wq), _mm512_setzero_si512(), xv);
        return dot_u8_i8(_mm512_abs_epi8(wq), signed_x);
      });
#elif defined(RWKV_HAVE_AVX2)
  return sum_blocks(x.n_groups, [&](uint32_t b, __m256 acc) {
    const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].quants));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlockValues));
    // int8 × int8 has no multiply-add: move the weight's sign onto x so that the
    // unsigned × signed one can do it (|w| <= 127 keeps it from saturating).
    const __m256i dot = dot_u8_i8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xv, wq));
    return _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].scale) * xs[b]), _mm256_cvtepi32_ps(dot), acc);
  });
#else
  float sum = 0.0f;
  for (uint32_t b = 0; b < x.n_groups; ++b) {
    int32_t dot = 0;
    for (uint32_t i = 0; i < kQuantBlockValues; ++i) dot += int32_t(w[b].quants[i]) * xq[b * kQuantBlockValues + i];
    sum += fp16_to_fp32(w[b].scale) * xs[b] * static_cast<float>(dot);
  }
  return sum;
#endif
}

}  // namespace

void matvec_rows_q8_0(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin, uint32_t row_end) {
  dot_each_row<BlockQ8_0>(w, x.n_groups, x, y, row_begin, row_end, dot_q8_0);
}

void matmat_rows_q8_0(const MatrixRef& w, const Int8Activation* x, uint32_t n_tokens, float* Y, uint32_t row_begin,
                      uint32_t row_end) {
  dot_each_row_tokens<BlockQ8_0>(w, x[0].n_groups, x, n_tokens, Y, row_begin, row_end, dot_q8_0);
}

}  // namespace rwkv::RWKV_KERNEL_NS
