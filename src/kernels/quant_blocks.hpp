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

// q4_s: a super-block of 256 values in 8 sub-blocks of 32. Sub-block j has
// scale = scale_step * scales[j] and min = min_step * mins[j], and its value i is
// scale * q + min with q in [0, 15]. The sub-blocks' scales are integers so that the
// kernel applies them with integer multiply-adds and converts to float once per 256
// values instead of once per 32 (docs/format.md has the reasons and the measurements).
// The levels are packed so that a mask and a shift of one load unpack sub-blocks whose
// activations are adjacent: each 64-byte half h holds sub-blocks 4h and 4h + 1 (32 bytes
// each) in its low nibbles and 4h + 2 and 4h + 3 in its high nibbles. A 512-bit load
// takes a half, a 256-bit load a quarter (two sub-blocks).
inline constexpr uint32_t kSuperBlockValues = 256;
inline constexpr uint32_t kSubBlocks = kSuperBlockValues / kQuantBlockValues;
struct BlockQ4_S {
  float scale_step;
  float min_step;
  uint8_t scales[kSubBlocks];
  int8_t mins[kSubBlocks];
  uint8_t nibbles[kSuperBlockValues / 2];
};
static_assert(sizeof(BlockQ4_S) == 152);
// Where sub-block j's levels are: 32 bytes of `nibbles` from q4_s_first_byte(j), in the
// bits from q4_s_shift(j) (0: low nibble, 4: high nibble).
constexpr uint32_t q4_s_first_byte(uint32_t j) { return 64 * (j / 4) + 32 * (j % 2); }
constexpr int q4_s_shift(uint32_t j) { return j % 4 < 2 ? 0 : 4; }
// Nibble pair p (0..3) holds sub-block q4_s_pair_low(p) in its low nibbles and that + 2
// in its high ones: the pairs (0, 2), (1, 3), (4, 6), (5, 7) of a row's bytes.
constexpr uint32_t q4_s_pair_low(uint32_t p) { return 4 * (p / 2) + p % 2; }

// WeightLayout::Int8Panels: q8_0 and q4_s rearranged for the int8 dot-product kernels,
// which multiply them without rearranging (matmat_int8.cpp has the reasons), in as many
// bytes as the rows' own blocks. The rows go in panels of kInt8PanelRows (the last padded
// by repeating the last row), each panel the records of its blocks (q8_0, 32 columns) or
// super-blocks (q4_s, 256) in order, the last zero-padded as in a row. For panel row i:
// - q8_0 record (1088 bytes): value c of the block is (byte[(c / 4) * 128 + 4 * i + c % 4]
//   - 128) * scale, the byte stored as w + 128, the scale the binary16 at 1024 + 2 * i.
// - q4_s record (4864 bytes): nibbles [4 pairs][8 steps][32 rows][4] (4096 bytes), the byte
//   at (p * 8 + c / 4) * 128 + 4 * i + c % 4 holding value c of sub-block j (in its low
//   nibble) and of j + 2 (high), j = 4 (p / 2) + p % 2, as a row's nibbles pair them; then
//   scales [8 sub-blocks][32 rows] (u8), mins [4 pairs][32 rows][j, j + 2] (i8),
//   scale_step [32] and min_step [32] (float).
inline constexpr uint32_t kInt8PanelRows = 32;
inline constexpr uint32_t kQ8PanelRecordBytes = kInt8PanelRows * sizeof(BlockQ8_0);
inline constexpr uint32_t kQ4PanelNibbleBytes = kInt8PanelRows * kSuperBlockValues / 2;
inline constexpr uint32_t kQ4PanelScalesOffset = kQ4PanelNibbleBytes;
inline constexpr uint32_t kQ4PanelMinsOffset = kQ4PanelScalesOffset + kInt8PanelRows * kSubBlocks;
inline constexpr uint32_t kQ4PanelScaleStepOffset = kQ4PanelMinsOffset + kInt8PanelRows * kSubBlocks;
inline constexpr uint32_t kQ4PanelMinStepOffset = kQ4PanelScaleStepOffset + kInt8PanelRows * 4;
inline constexpr uint32_t kQ4PanelRecordBytes = kInt8PanelRows * sizeof(BlockQ4_S);
static_assert(kQ4PanelMinStepOffset + kInt8PanelRows * 4 == kQ4PanelRecordBytes);
// Bytes of one panel of `type` (Q8_0 or Q4_S) with `cols` columns, and of a whole matrix.
inline constexpr size_t int8_panel_bytes(DType type, uint32_t cols) {
  const uint32_t group = type == DType::Q4_S ? kSuperBlockValues : kQuantBlockValues;
  return size_t((cols + group - 1) / group) * (type == DType::Q4_S ? kQ4PanelRecordBytes : kQ8PanelRecordBytes);
}
inline constexpr size_t int8_panels_bytes(DType type, uint32_t rows, uint32_t cols) {
  return size_t((rows + kInt8PanelRows - 1) / kInt8PanelRows) * int8_panel_bytes(type, cols);
}

// WeightLayout::F16Panels: float16 matrices for the AVX-512 FMA kernels (matmat_f16.hpp),
// in as many bytes as the rows plus the last panel's padding: the rows go in panels of
// kF16PanelRows, each panel column after column, so value c of panel row i is the half
// at (c * kF16PanelRows + i) from the panel's start (panels cols * kF16PanelRows halves
// apart); the last panel's missing rows are zero.
inline constexpr uint32_t kF16PanelRows = 32;
inline constexpr size_t f16_panels_bytes(uint32_t rows, uint32_t cols) {
  return size_t((rows + kF16PanelRows - 1) / kF16PanelRows) * kF16PanelRows * cols * sizeof(uint16_t);
}

// How q4_s picks its scales, minimums and levels. Nearest (plain min/max range and
// round to nearest) exists so that tests can show what the search gains.
enum class QuantRounding { MinimizeError, Nearest };

// Encodes `rows` rows of `cols` floats as `type` (dtype_tensor_bytes({rows, cols}) bytes).
std::vector<std::byte> quantize_rows(const float* values, uint64_t rows, uint64_t cols, DType type,
                                     QuantRounding rounding = QuantRounding::MinimizeError);

// An activation vector rounded to int8 for the integer kernels: one float scale per
// group of `group_values` values (32 for q8_0, one per block; 256 for q4_s, one per
// super-block), zero-padded to whole groups, and the sum of every 32 quants (q4_s's
// minimums multiply them).
struct Int8Activation {
  uint32_t group_values = kQuantBlockValues;
  uint32_t n_groups = 0;
  std::vector<int8_t> quants;       // [n_groups * group_values]
  std::vector<float> scales;        // [n_groups]
  std::vector<int16_t> block_sums;  // [n_groups * group_values / 32]
};
// The group size the kernels of weight type `t` (a block type) read.
uint32_t activation_group_values(DType t);
void quantize_activation(const float* x, uint32_t n, uint32_t group_values, Int8Activation& out);

}  // namespace rwkv
