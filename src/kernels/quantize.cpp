#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/half.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd.hpp"
#include "kernels/thread_pool.hpp"
#include "rwkv/error.hpp"

namespace rwkv {

namespace {

// Rounds a block scale to binary16; the quants are then chosen for the rounded value,
// so that the stored block is as close as the stored scale allows.
float stored_half(float value, uint16_t& bits) {
  bits = fp32_to_fp16(value);
  const float rounded = fp16_to_fp32(bits);
  if (!std::isfinite(rounded)) {
    throw Error(fmt::format("a block scale of {} does not fit binary16 (weights above 8e6 in magnitude)", value));
  }
  return rounded;
}

void quantize_block_q8_0(const float* x, uint32_t n, BlockQ8_0& block) {
  float amax = 0.0f;
  for (uint32_t i = 0; i < n; ++i) amax = std::max(amax, std::abs(x[i]));
  const float scale = stored_half(amax / 127.0f, block.scale);
  const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
  std::memset(block.quants, 0, sizeof(block.quants));
  for (uint32_t i = 0; i < n; ++i) {
    block.quants[i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * inverse), -127.0f, 127.0f));
  }
}

struct Q4Candidate {
  float scale = 0.0f;
  float min = 0.0f;
  uint16_t scale_bits = 0;
  uint16_t min_bits = 0;
  uint8_t q[kQuantBlockValues] = {};
  double error = std::numeric_limits<double>::infinity();
};

// Stores (scale, min) as binary16, picks each value's nearest level for the stored
// pair, and measures the squared error of the result.
void finish_q4(const float* x, uint32_t n, float scale, float min, Q4Candidate& c) {
  c.min = stored_half(min, c.min_bits);
  c.scale = stored_half(std::max(scale, 0.0f), c.scale_bits);
  const float inverse = c.scale > 0.0f ? 1.0f / c.scale : 0.0f;
  c.error = 0.0;
  for (uint32_t i = 0; i < n; ++i) {
    c.q[i] = static_cast<uint8_t>(std::clamp(std::nearbyint((x[i] - c.min) * inverse), 0.0f, 15.0f));
    const double d = double(c.scale) * c.q[i] + c.min - x[i];
    c.error += d * d;
  }
}

// For fixed levels q, the least-squares scale and minimum of sum (scale*q + min - x)^2.
bool fit_scale_min(const float* x, const uint8_t* q, uint32_t n, float& scale, float& min) {
  double sum_q = 0, sum_qq = 0, sum_x = 0, sum_qx = 0;
  for (uint32_t i = 0; i < n; ++i) {
    sum_q += q[i];
    sum_qq += double(q[i]) * q[i];
    sum_x += x[i];
    sum_qx += double(q[i]) * x[i];
  }
  const double det = n * sum_qq - sum_q * sum_q;
  if (det <= 0) return false;
  scale = static_cast<float>((n * sum_qx - sum_q * sum_x) / det);
  min = static_cast<float>((sum_qq * sum_x - sum_q * sum_qx) / det);
  return scale > 0.0f;
}

// Round to nearest over the block's [min, max] range, then (for MinimizeError) a
// search in the spirit of llama.cpp's k-quants: the range is divided into slightly
// more or fewer than 15 steps, each candidate's levels get the least-squares scale
// and minimum, the levels are re-rounded once for that pair, and the candidate with
// the smallest squared error after binary16 rounding wins. Round to nearest is one
// of the candidates, so the search is never worse than it.
void quantize_block_q4_1m(const float* x, uint32_t n, BlockQ4_1M& block, QuantRounding rounding) {
  float lo = x[0], hi = x[0];
  for (uint32_t i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  Q4Candidate best;
  finish_q4(x, n, (hi - lo) / 15.0f, lo, best);
  if (rounding == QuantRounding::MinimizeError && hi > lo) {
    constexpr int kSteps = 12;
    for (int step = -kSteps; step <= kSteps; ++step) {
      const float levels = 15.0f + 0.1f * static_cast<float>(step);
      const float inverse = levels / (hi - lo);
      uint8_t q[kQuantBlockValues];
      for (uint32_t i = 0; i < n; ++i) {
        q[i] = static_cast<uint8_t>(std::clamp(std::nearbyint((x[i] - lo) * inverse), 0.0f, 15.0f));
      }
      float scale = 0, min = 0;
      if (!fit_scale_min(x, q, n, scale, min)) continue;
      Q4Candidate c;
      finish_q4(x, n, scale, min, c);
      if (fit_scale_min(x, c.q, n, scale, min)) {
        Q4Candidate refit;
        finish_q4(x, n, scale, min, refit);
        if (refit.error < c.error) c = refit;
      }
      if (c.error < best.error) best = c;
    }
  }
  block.scale = best.scale_bits;
  block.min = best.min_bits;
  // Padding levels stay 0: they meet zero activations (the padded tail of x).
  for (uint32_t j = 0; j < kQuantBlockValues / 2; ++j) {
    const uint8_t low = j < n ? best.q[j] : 0;
    const uint8_t high = j + kQuantBlockValues / 2 < n ? best.q[j + kQuantBlockValues / 2] : 0;
    block.nibbles[j] = static_cast<uint8_t>(low | (high << 4));
  }
}

template <typename Block, typename QuantizeBlock>
void quantize_blocked_rows(const float* values, uint64_t rows, uint64_t cols, std::byte* out, QuantizeBlock quantize) {
  // Rows are independent: spread over the pool (the q4_1m search makes converting a
  // 1.5B model take minutes on one core). Each row's blocks are the same whatever the split.
  const uint64_t blocks_per_row = (cols + kQuantBlockValues - 1) / kQuantBlockValues;
  const auto quantize_row = [&](uint64_t r) {
    Block* blocks = reinterpret_cast<Block*>(out) + r * blocks_per_row;
    const float* row = values + r * cols;
    for (uint64_t c = 0; c < cols; c += kQuantBlockValues) {
      quantize(row + c, static_cast<uint32_t>(std::min<uint64_t>(kQuantBlockValues, cols - c)), *blocks++);
    }
  };
  if (rows > UINT32_MAX) {
    for (uint64_t r = 0; r < rows; ++r) quantize_row(r);
    return;
  }
  parallel_for(uint32_t(rows), 1, [&](uint32_t begin, uint32_t end) {
    for (uint32_t r = begin; r < end; ++r) quantize_row(r);
  });
}

}  // namespace

std::vector<std::byte> quantize_rows(const float* values, uint64_t rows, uint64_t cols, DType type,
                                     QuantRounding rounding) {
  std::vector<std::byte> out(dtype_tensor_bytes(type, {rows, cols}));
  const size_t n = rows * cols;
  switch (type) {
    case DType::F32: std::memcpy(out.data(), values, n * sizeof(float)); break;
    case DType::F16: {
      auto* dst = reinterpret_cast<uint16_t*>(out.data());
      for (size_t i = 0; i < n; ++i) dst[i] = fp32_to_fp16(values[i]);
      break;
    }
    case DType::BF16: {
      auto* dst = reinterpret_cast<uint16_t*>(out.data());
      for (size_t i = 0; i < n; ++i) dst[i] = fp32_to_bf16(values[i]);
      break;
    }
    case DType::Q8_0: quantize_blocked_rows<BlockQ8_0>(values, rows, cols, out.data(), quantize_block_q8_0); break;
    case DType::Q4_1M:
      quantize_blocked_rows<BlockQ4_1M>(values, rows, cols, out.data(),
                                        [rounding](const float* x, uint32_t count, BlockQ4_1M& block) {
                                          quantize_block_q4_1m(x, count, block, rounding);
                                        });
      break;
  }
  return out;
}

void quantize_activation(const float* x, uint32_t n, Int8Activation& out) {
  out.n_blocks = (n + kQuantBlockValues - 1) / kQuantBlockValues;
  out.quants.resize(size_t(out.n_blocks) * kQuantBlockValues);
  out.scales.resize(out.n_blocks);
  out.sums.resize(out.n_blocks);
  out.scale_sum_pairs.resize(2 * size_t(out.n_blocks) + 2);
  for (uint32_t b = 0; b < out.n_blocks; ++b) {
    const uint32_t begin = b * kQuantBlockValues;
    const uint32_t end = std::min(n, begin + kQuantBlockValues);
    int8_t* quants = out.quants.data() + begin;
    float scale;
    int32_t sum = 0;
#ifdef RWKV_HAVE_AVX2
    if (end - begin == kQuantBlockValues) {
      // The scalar loop below, eight values a step: the same amax, the same rounding
      // (the default round-to-nearest-even of cvtps, as nearbyint), the same quants.
      __m256 v[4];
      __m256 amax8 = _mm256_setzero_ps();
      const __m256 sign_bit = _mm256_set1_ps(-0.0f);
      for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(x + begin + 8 * i);
        amax8 = _mm256_max_ps(amax8, _mm256_andnot_ps(sign_bit, v[i]));
      }
      __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax8), _mm256_extractf128_ps(amax8, 1));
      m = _mm_max_ps(m, _mm_movehl_ps(m, m));
      m = _mm_max_ss(m, _mm_movehdup_ps(m));
      scale = _mm_cvtss_f32(m) / 127.0f;
      const __m256 inverse = _mm256_set1_ps(scale > 0.0f ? 1.0f / scale : 0.0f);
      __m256i q[4];
      for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], inverse));
      // Pack 32 int32 to 32 int8 in order: packs interleave 128-bit lanes, the permute undoes it.
      const __m256i q16 = _mm256_packs_epi32(q[0], q[1]);
      const __m256i q16b = _mm256_packs_epi32(q[2], q[3]);
      const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16, q16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(quants), q8);
      const __m256i sum8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum8), _mm256_extracti128_si256(sum8, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
      sum = _mm_cvtsi128_si32(s4);
    } else
#endif
    {
      float amax = 0.0f;
      for (uint32_t i = begin; i < end; ++i) amax = std::max(amax, std::abs(x[i]));
      scale = amax / 127.0f;
      const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
      for (uint32_t i = begin; i < begin + kQuantBlockValues; ++i) {
        const auto q = i < end ? static_cast<int8_t>(std::nearbyint(x[i] * inverse)) : int8_t{0};
        quants[i - begin] = q;
        sum += q;
      }
    }
    out.scales[b] = scale;
    out.sums[b] = scale * static_cast<float>(sum);
    out.scale_sum_pairs[2 * b] = scale;
    out.scale_sum_pairs[2 * b + 1] = out.sums[b];
  }
}

}  // namespace rwkv
