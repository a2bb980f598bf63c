#include "kernels/matvec_rows.hpp"
#include "kernels/row_dots.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

#ifdef RWKV_HAVE_AVX2
// The minimums' integer term of a super-block, sum_j mins[j] * block_sums[j], in 4 float lanes.
inline __m128 minimum_products(const BlockQ4_S& block, const int16_t* block_sums) {
  const __m128i mins = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(block.mins)));
  return _mm_cvtepi32_ps(_mm_madd_epi16(mins, _mm_loadu_si128(reinterpret_cast<const __m128i*>(block_sums))));
}
#endif

// For super-block s with activation scale xs and sub-block j's activation quants xq_j:
//   sum_j sum_i (scale_step*scales[j]*q_ji + min_step*mins[j]) * xs*xq_ji
//   = scale_step*xs * sum_j scales[j] * (sum_i q_ji*xq_ji) + min_step*xs * sum_j mins[j] * (sum_i xq_ji),
// so both sums over j stay in integers and convert to float once per super-block.
float dot_q4_s(const BlockQ4_S* w, const Int8Activation& x) {
  const int8_t* xq = x.quants.data();
  const float* xs = x.scales.data();
  const int16_t* block_sums = x.block_sums.data();
#if defined(RWKV_HAVE_AVX512)
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  __m512 acc = _mm512_setzero_ps();
  __m128 min_acc = _mm_setzero_ps();
  for (uint32_t s = 0; s < x.n_groups; ++s) {
    const BlockQ4_S& block = w[s];
    const int8_t* xb = xq + size_t(s) * kSuperBlockValues;
    // The 8 sub-block scales as int16 in every 128-bit lane; the shuffle for sub-blocks
    // (j, j + 1) repeats int16 j over the low 256 bits and j + 1 over the high 256 bits.
    const __m512i scales = _mm512_broadcast_i32x4(
        _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(block.scales))));
    const auto scale_pair = [&](uint32_t j) {
      const short first = short(0x0100 + 0x0202 * j), second = short(0x0100 + 0x0202 * (j + 1));
      return _mm512_shuffle_epi8(scales, _mm512_inserti64x4(_mm512_set1_epi16(first), _mm256_set1_epi16(second), 1));
    };
    __m512i sum_low = _mm512_setzero_si512(), sum_high = _mm512_setzero_si512();
    // Half h: low nibbles are sub-blocks 4h, 4h + 1 (activations 128h ..), high ones
    // 4h + 2, 4h + 3. Called with constants so that the shuffle controls are constants
    // (as a loop, GCC at -O2 kept the counter on the stack).
    const auto half = [&](uint32_t h) {
      const __m512i packed = _mm512_loadu_si512(block.nibbles + 64 * h);
      const __m512i q_low = _mm512_and_si512(packed, low_nibbles);
      const __m512i q_high = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles);
      const __m512i products_low = _mm512_maddubs_epi16(q_low, _mm512_loadu_si512(xb + 128 * h));
      const __m512i products_high = _mm512_maddubs_epi16(q_high, _mm512_loadu_si512(xb + 128 * h + 64));
#if defined(RWKV_HAVE_AVX512_VNNI)
      sum_low = _mm512_dpwssd_epi32(sum_low, products_low, scale_pair(4 * h));
      sum_high = _mm512_dpwssd_epi32(sum_high, products_high, scale_pair(4 * h + 2));
#else
      sum_low = _mm512_add_epi32(sum_low, _mm512_madd_epi16(products_low, scale_pair(4 * h)));
      sum_high = _mm512_add_epi32(sum_high, _mm512_madd_epi16(products_high, scale_pair(4 * h + 2)));
#endif
    };
    half(0);
    half(1);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(block.scale_step * xs[s]),
                          _mm512_cvtepi32_ps(_mm512_add_epi32(sum_low, sum_high)), acc);
    min_acc = _mm_fmadd_ps(_mm_set1_ps(block.min_step * xs[s]), minimum_products(block, block_sums + size_t(s) * kSubBlocks),
                           min_acc);
  }
  return horizontal_sum(_mm512_add_ps(acc, _mm512_zextps128_ps512(min_acc)));
#elif defined(RWKV_HAVE_AVX2)
  const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps();
  __m128 min_acc = _mm_setzero_ps();
  for (uint32_t s = 0; s < x.n_groups; ++s) {
    const BlockQ4_S& block = w[s];
    const int8_t* xb = xq + size_t(s) * kSuperBlockValues;
    // The 8 sub-block scales as int16 in both 128-bit lanes; the shuffle of sub-block j
    // repeats its bytes 2j, 2j + 1 over the lane.
    const __m256i scales =
        _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(block.scales))));
    const auto scale_of = [&](uint32_t j) { return _mm256_shuffle_epi8(scales, _mm256_set1_epi16(short(0x0100 + 0x0202 * j))); };
    __m256i sum_low = _mm256_setzero_si256(), sum_high = _mm256_setzero_si256();
    // Bytes 32c .. 32c + 31 hold sub-block j = 4(c / 2) + c % 2 in their low nibbles and
    // j + 2 in their high ones. Called with constants so that the shuffle controls are
    // constants (as a loop, GCC at -O2 kept the counter on the stack).
    const auto quarter = [&](uint32_t c, uint32_t j) {
      const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.nibbles + 32 * c));
      const __m256i q_low = _mm256_and_si256(packed, low_nibbles);
      const __m256i q_high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
      // Levels <= 15 and |quants| <= 127: the int16 pair sums stay below 2 * 15 * 127.
      const __m256i products_low =
          _mm256_maddubs_epi16(q_low, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 32 * j)));
      const __m256i products_high =
          _mm256_maddubs_epi16(q_high, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 32 * (j + 2))));
      sum_low = _mm256_add_epi32(sum_low, _mm256_madd_epi16(products_low, scale_of(j)));
      sum_high = _mm256_add_epi32(sum_high, _mm256_madd_epi16(products_high, scale_of(j + 2)));
    };
    quarter(0, 0);
    quarter(1, 1);
    quarter(2, 4);
    quarter(3, 5);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(block.scale_step * xs[s]),
                          _mm256_cvtepi32_ps(_mm256_add_epi32(sum_low, sum_high)), acc);
    min_acc = _mm_fmadd_ps(_mm_set1_ps(block.min_step * xs[s]), minimum_products(block, block_sums + size_t(s) * kSubBlocks),
                           min_acc);
  }
  return horizontal_sum(_mm256_add_ps(acc, _mm256_zextps128_ps256(min_acc)));
#else
  float sum = 0.0f;
  for (uint32_t s = 0; s < x.n_groups; ++s) {
    const BlockQ4_S& block = w[s];
    int32_t products = 0, min_products = 0;
    for (uint32_t j = 0; j < kSubBlocks; ++j) {
      const uint8_t* bytes = block.nibbles + q4_s_first_byte(j);
      const int8_t* xb = xq + size_t(s) * kSuperBlockValues + j * kQuantBlockValues;
      const int shift = q4_s_shift(j);
      int32_t dot = 0;
      for (uint32_t i = 0; i < kQuantBlockValues; ++i) dot += int32_t((bytes[i] >> shift) & 0x0f) * xb[i];
      products += int32_t(block.scales[j]) * dot;
      min_products += int32_t(block.mins[j]) * block_sums[size_t(s) * kSubBlocks + j];
    }
    sum += block.scale_step * xs[s] * static_cast<float>(products) + block.min_step * xs[s] * static_cast<float>(min_products);
  }
  return sum;
#endif
}

}  // namespace

void matvec_rows_q4_s(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin, uint32_t row_end) {
  dot_each_row<BlockQ4_S>(w, x.n_groups, x, y, row_begin, row_end, dot_q4_s);
}

void matmat_rows_q4_s(const MatrixRef& w, const Int8Activation* x, uint32_t n_tokens, float* Y, uint32_t row_begin,
                      uint32_t row_end) {
  dot_each_row_tokens<BlockQ4_S>(w, x[0].n_groups, x, n_tokens, Y, row_begin, row_end, dot_q4_s);
}

}  // namespace rwkv::RWKV_KERNEL_NS
