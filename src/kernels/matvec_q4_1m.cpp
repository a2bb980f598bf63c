#include <cstring>

#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/row_dots.hpp"

namespace rwkv {

namespace {

// sum_i (scale*q_i + min) * xs*xq_i = scale*xs * sum_i q_i*xq_i + min * (xs * sum_i xq_i):
// the integer dot product per block, plus the minimum times the block's precomputed sum.
float dot_q4_1m(const BlockQ4_1M* w, const Int8Activation& x) {
  const int8_t* xq = x.quants.data();
  [[maybe_unused]] const float* xs = x.scales.data();
  [[maybe_unused]] const float* xsum = x.sums.data();
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
  // Per block, one conversion gives the weights' [scale, min] and one multiply with x's
  // [scale, sum] gives both terms: lane 0 scales the integer dot product, lane 1 is the
  // minimum's term (x.scale_sum_pairs is padded so the 4-float load stays inside).
  const float* pairs = x.scale_sum_pairs.data();
  const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
  const auto block = [&](uint32_t b, __m256& acc, __m128& minimums) {
    uint32_t scale_and_min;
    std::memcpy(&scale_and_min, &w[b].scale, sizeof(scale_and_min));
    const __m128 terms = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(int(scale_and_min))), _mm_loadu_ps(pairs + 2 * b));
    minimums = _mm_add_ps(minimums, terms);
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].nibbles));
    // Low nibbles are values 0..15 of the block, high nibbles 16..31.
    const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), low_nibbles);
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlockValues));
    acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(terms), _mm256_cvtepi32_ps(dot_u8_i8(q, xv)), acc);
  };
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m128 minimums0 = _mm_setzero_ps(), minimums1 = _mm_setzero_ps();
  uint32_t b = 0;
  for (; b + 2 <= x.n_blocks; b += 2) {
    block(b, acc0, minimums0);
    block(b + 1, acc1, minimums1);
  }
  if (b < x.n_blocks) block(b, acc0, minimums0);
  const __m128 minimums = _mm_add_ps(minimums0, minimums1);
  return horizontal_sum(_mm256_add_ps(acc0, acc1)) + _mm_cvtss_f32(_mm_movehdup_ps(minimums));
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
