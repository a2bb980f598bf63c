// Stored layouts of the block types (docs/format.md describes them with the reasons),
// the routines that produce them, and the int8 form of an activation vector that the
// integer dot products read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/dtype.hpp"

namespace rwkv {

inline constexpr uint32_t kQuantBlockValues = 32;

// value[i] = scale * quants[i]; scale is IEEE binary16.
struct BlockQ8_0 {
  uint16_t scale;
  int8_t quants[kQuantBlockValues];
};
static_assert(sizeof(BlockQ8_0) == 34);

// value[i] = scale * q[i] + min, q[i] in [0, 15]; scale and min are binary16.
// Byte j holds q[j] in its low nibble and q[j + 16] in its high nibble, so that one
// mask and one shift unpack the two halves of the block in SIMD registers.
struct BlockQ4_1M {
  uint16_t scale;
  uint16_t min;
  uint8_t nibbles[kQuantBlockValues / 2];
};
static_assert(sizeof(BlockQ4_1M) == 20);

// How q4_1m picks its scale, minimum and quants. Nearest (plain min/max range and
// round to nearest) exists so that tests can show what the search gains.
enum class QuantRounding { MinimizeError, Nearest };

// Encodes `rows` rows of `cols` floats as `type` (dtype_tensor_bytes({rows, cols}) bytes).
std::vector<std::byte> quantize_rows(const float* values, uint64_t rows, uint64_t cols, DType type,
                                     QuantRounding rounding = QuantRounding::MinimizeError);

// An activation vector rounded to int8 in blocks of kQuantBlockValues, one float scale
// per block, zero-padded to whole blocks: the integer kernels multiply int8 weights (or
// 4-bit ones) with it and scale once per block.
struct Int8Activation {
  uint32_t n_blocks = 0;
  std::vector<int8_t> quants;  // [n_blocks * 32]
  std::vector<float> scales;   // [n_blocks]
  std::vector<float> sums;     // [n_blocks]: scale * sum of the block's quants (for q4_1m's minimum)
  // scales[b] and sums[b] side by side, [2 * n_blocks] plus 2 floats of padding, so that
  // one 16-byte load gives both (the AVX2 q4_1m kernel multiplies them with a block's
  // scale and minimum, also adjacent).
  std::vector<float> scale_sum_pairs;
};
void quantize_activation(const float* x, uint32_t n, Int8Activation& out);

}  // namespace rwkv
