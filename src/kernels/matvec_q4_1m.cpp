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
#if defined(RWKV_HAVE_AVX512)
  // A block's 16 bytes fill two 128-bit lanes; shifting the first by 0 and the second
  // by 4 before the mask gives values 0..15, then 16..31, the order of x's quants.
  const auto nibbles_twice = [w](uint32_t b) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].nibbles)));
  };
  const __m512i nibble_shifts = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  // Lane 2j takes x's scale of block j, lane 2j + 1 its sum (index 16 + j of the second source).
  const __m512i interleave = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  __m512 min_products = _mm512_setzero_ps();
  const float products = sum_block_groups(
      x.n_blocks,
      [&](uint32_t b, uint32_t count) {
        // Lane 2j holds block j's scale, lane 2j + 1 its minimum.
        const __m512 scales_and_mins = _mm512_cvtph_ps(block_heads(w + b, count));
        const __m512 x_terms = _mm512_permutex2var_ps(_mm512_zextps256_ps512(first_floats(xs + b, count)), interleave,
                                                      _mm512_zextps256_ps512(first_floats(xsum + b, count)));
        const __m512 terms = _mm512_mul_ps(scales_and_mins, x_terms);
        min_products = _mm512_mask_add_ps(min_products, static_cast<__mmask16>(0xaaaa), min_products, terms);
        return terms;
      },
      [&](uint32_t b, bool second) {
        const __m512i packed = join_halves(b, second, nibbles_twice);
        const __m512i q = _mm512_and_si512(_mm512_srlv_epi64(packed, nibble_shifts), low_nibbles);
        return dot_u8_i8(q, activation_pair(xq, b, second));
      });
  return products + horizontal_sum(min_products);
#elif defined(RWKV_HAVE_AVX2)
  float min_terms = 0.0f;
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
  float min_terms = 0.0f;
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
