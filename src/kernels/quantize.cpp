#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/half.hpp"
#include "kernels/quant_blocks.hpp"
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

// A sub-block's scale and minimum (as floats, before the super-block's 8-bit grid),
// its levels for that pair, and the squared error of the result.
struct Q4Candidate {
  float scale = 0.0f;
  float min = 0.0f;
  uint8_t q[kQuantBlockValues] = {};
  double error = std::numeric_limits<double>::infinity();
};

// Picks each value's nearest level for (scale, min) and measures the squared error.
void finish_q4(const float* x, uint32_t n, float scale, float min, Q4Candidate& c) {
  c.min = min;
  c.scale = std::max(scale, 0.0f);
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

// A sub-block's scale and minimum: round to nearest over its [min, max] range, then
// (for MinimizeError) a search in the spirit of llama.cpp's k-quants: the range is
// divided into slightly more or fewer than 15 steps, each candidate's levels get the
// least-squares scale and minimum, the levels are re-rounded once for that pair, and
// the candidate with the smallest squared error wins. Round to nearest is one of the
// candidates, so the search is never worse than it.
Q4Candidate search_q4_sub_block(const float* x, uint32_t n, QuantRounding rounding) {
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
  return best;
}

// The super-block: each sub-block's (scale, min) from the search, then the grid that
// stores them (scale_step = largest scale / 255, min_step = largest |min| / 127), each
// sub-block's integers rounded to that grid, and (for MinimizeError) the neighbouring
// integers tried as well, keeping the pair whose re-rounded levels err least.
void quantize_block_q4_s(const float* x, uint32_t n, BlockQ4_S& block, QuantRounding rounding) {
  for (uint32_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) throw Error(fmt::format("a value to be stored as q4_s is not finite ({})", x[i]));
  }
  Q4Candidate sub[kSubBlocks];
  float largest_scale = 0.0f, largest_min = 0.0f;
  for (uint32_t j = 0; j < kSubBlocks && j * kQuantBlockValues < n; ++j) {
    sub[j] = search_q4_sub_block(x + j * kQuantBlockValues, std::min(kQuantBlockValues, n - j * kQuantBlockValues),
                                 rounding);
    largest_scale = std::max(largest_scale, sub[j].scale);
    largest_min = std::max(largest_min, std::abs(sub[j].min));
  }
  if (!std::isfinite(largest_scale) || !std::isfinite(largest_min)) {
    throw Error(fmt::format("q4_s cannot store a block whose values span more than float32's range (scale {}, minimum {})",
                            largest_scale, largest_min));
  }
  block.scale_step = largest_scale / 255.0f;
  block.min_step = largest_min / 127.0f;
  const float inverse_scale_step = block.scale_step > 0.0f ? 1.0f / block.scale_step : 0.0f;
  const float inverse_min_step = block.min_step > 0.0f ? 1.0f / block.min_step : 0.0f;
  std::memset(block.nibbles, 0, sizeof(block.nibbles));
  for (uint32_t j = 0; j < kSubBlocks; ++j) {
    // Padding sub-blocks (past n) keep scale, min and levels 0: they meet zero activations.
    block.scales[j] = 0;
    block.mins[j] = 0;
    if (j * kQuantBlockValues >= n) continue;
    const float* xs = x + j * kQuantBlockValues;
    const uint32_t count = std::min(kQuantBlockValues, n - j * kQuantBlockValues);
    const int scale_units = int(std::clamp(std::nearbyint(sub[j].scale * inverse_scale_step), 0.0f, 255.0f));
    const int min_units = int(std::clamp(std::nearbyint(sub[j].min * inverse_min_step), -127.0f, 127.0f));
    const int reach = rounding == QuantRounding::MinimizeError ? 1 : 0;
    Q4Candidate best;
    int best_scale = 0, best_min = 0;
    for (int s = std::max(0, scale_units - reach); s <= std::min(255, scale_units + reach); ++s) {
      for (int m = std::max(-127, min_units - reach); m <= std::min(127, min_units + reach); ++m) {
        Q4Candidate c;
        finish_q4(xs, count, block.scale_step * float(s), block.min_step * float(m), c);
        if (c.error < best.error) {
          best = c;
          best_scale = s;
          best_min = m;
        }
      }
    }
    block.scales[j] = static_cast<uint8_t>(best_scale);
    block.mins[j] = static_cast<int8_t>(best_min);
    uint8_t* bytes = block.nibbles + q4_s_first_byte(j);
    const int shift = q4_s_shift(j);
    for (uint32_t i = 0; i < count; ++i) bytes[i] = static_cast<uint8_t>(bytes[i] | (best.q[i] << shift));
  }
}

template <typename Block, uint32_t values_per_block, typename QuantizeBlock>
void quantize_blocked_rows(const float* values, uint64_t rows, uint64_t cols, std::byte* out, QuantizeBlock quantize) {
  // Rows are independent: spread over the pool (the q4_s search makes converting a
  // 1.5B model take minutes on one core). Each row's blocks are the same whatever the split.
  const uint64_t block_values = values_per_block;
  const uint64_t blocks_per_row = (cols + block_values - 1) / block_values;
  const auto quantize_row = [&](uint64_t r) {
    Block* blocks = reinterpret_cast<Block*>(out) + r * blocks_per_row;
    const float* row = values + r * cols;
    for (uint64_t c = 0; c < cols; c += block_values) {
      quantize(row + c, static_cast<uint32_t>(std::min<uint64_t>(block_values, cols - c)), *blocks++);
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
    case DType::Q8_0:
      quantize_blocked_rows<BlockQ8_0, kQuantBlockValues>(values, rows, cols, out.data(), quantize_block_q8_0);
      break;
    case DType::Q4_S:
      quantize_blocked_rows<BlockQ4_S, kSuperBlockValues>(values, rows, cols, out.data(),
                                                          [rounding](const float* x, uint32_t count, BlockQ4_S& block) {
                                                            quantize_block_q4_s(x, count, block, rounding);
                                                          });
      break;
  }
  return out;
}

uint32_t activation_group_values(DType t) { return t == DType::Q4_S ? kSuperBlockValues : kQuantBlockValues; }

}  // namespace rwkv
