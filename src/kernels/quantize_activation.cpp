// rwkv::quantize_activation's arithmetic (quant_blocks.hpp) at one instruction-set level:
// every level gives the same quants and scales, bit for bit (KernelQuantActivation test).
#include <algorithm>
#include <cmath>

#include "kernels/matvec_rows.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

// A rounded quant as int8. Finite activations give values within ±127; a NaN (which a
// hostile model's activations can reach) must not be converted directly, which is
// undefined: it becomes -128, the value the vector path's conversion and saturating
// packs give it.
int8_t to_int8(float rounded) {
  if (!(rounded >= -128.0f)) return -128;
  return static_cast<int8_t>(std::min(rounded, 127.0f));
}

}  // namespace

void quantize_activation(const float* x, uint32_t n, uint32_t group_values, int8_t* quants, float* scales,
                         int16_t* block_sums) {
  const uint32_t n_groups = (n + group_values - 1) / group_values;
  for (uint32_t g = 0; g < n_groups; ++g) {
    const uint32_t begin = g * group_values;
    const uint32_t end = std::min(n, begin + group_values);
    float scale;
#ifdef RWKV_HAVE_AVX2
    if (end - begin == group_values) {
      // The scalar loop below, eight values a step: the same amax, the same rounding
      // (the default round-to-nearest-even of cvtps, as nearbyint), the same quants.
      __m256 amax8 = _mm256_setzero_ps();
      const __m256 sign_bit = _mm256_set1_ps(-0.0f);
      for (uint32_t i = begin; i < end; i += 8) amax8 = _mm256_max_ps(amax8, _mm256_andnot_ps(sign_bit, _mm256_loadu_ps(x + i)));
      __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax8), _mm256_extractf128_ps(amax8, 1));
      m = _mm_max_ps(m, _mm_movehl_ps(m, m));
      m = _mm_max_ss(m, _mm_movehdup_ps(m));
      scale = _mm_cvtss_f32(m) / 127.0f;
      const __m256 inverse = _mm256_set1_ps(scale > 0.0f ? 1.0f / scale : 0.0f);
      for (uint32_t c = begin; c < end; c += kQuantBlockValues) {
        __m256i q[4];
        for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + c + 8 * i), inverse));
        // Pack 32 int32 to 32 int8 in order: packs interleave 128-bit lanes, the permute undoes it.
        const __m256i q16 = _mm256_packs_epi32(q[0], q[1]);
        const __m256i q16b = _mm256_packs_epi32(q[2], q[3]);
        const __m256i q8 =
            _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16, q16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(quants + c), q8);
        const __m256i sum8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum8), _mm256_extracti128_si256(sum8, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        block_sums[c / kQuantBlockValues] = static_cast<int16_t>(_mm_cvtsi128_si32(s4));
      }
    } else
#endif
    {
      float amax = 0.0f;
      for (uint32_t i = begin; i < end; ++i) amax = std::max(amax, std::abs(x[i]));
      scale = amax / 127.0f;
      const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
      for (uint32_t c = begin; c < begin + group_values; c += kQuantBlockValues) {
        int32_t sum = 0;
        for (uint32_t i = c; i < c + kQuantBlockValues; ++i) {
          const auto q = i < end ? to_int8(std::nearbyint(x[i] * inverse)) : int8_t{0};
          quants[i] = q;
          sum += q;
        }
        block_sums[c / kQuantBlockValues] = static_cast<int16_t>(sum);
      }
    }
    scales[g] = scale;
  }
}

}  // namespace rwkv::RWKV_KERNEL_NS
