// The bfloat16 products of matmat_bf16.hpp on AMX tiles, at the amx level.
// tdpbf16ps multiplies bf16 pairs and sums into float32: C[16 × 16] += A[16 × 32] B[32 × 16].
// Unlike q8_0 (matmat_int8_amx.cpp), bf16 has no per-block scales, so a C tile stays in
// its tile register over all the columns and is stored once: the vector unit does no
// work per column at all.
//
// Layout. A (tmm4, tmm5) is loaded straight from the stored rows: 16 weight rows × 32
// columns, the row's bytes as stride, so the weights are neither rearranged nor widened.
// B (tmm6, tmm7) is 16 column pairs of a group of 16 tokens, which is exactly how
// pack_bf16_tokens lays a group out ([column pair][16 tokens][2], 64 bytes a pair): 16
// pairs are one contiguous 1 KiB tile. C (tmm0-3): 2 row tiles × 2 token groups, stored
// as [row][token] into a buffer that is transposed into Y at the end, as the vector
// kernel does.
//
// Edges. A tile load reads 16 whole rows of 32 columns: the columns past the last whole
// step (cols % 32) and rows past the matrix are copied into zero-padded tiles first.
//
// Results: each output is the float32 sum of the exact products of row r and the
// token's bf16 values, as with vdpbf16ps; the order of the additions is the tile unit's
// (tested against the rounded-token definition, KernelBf16Dot).
#include "kernels/matmat_bf16.hpp"

#ifdef RWKV_HAVE_AMX_BF16

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/amx_tiles.hpp"
#include "kernels/gcc12_avx512_warnings.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/scratch.hpp"
#include "kernels/transpose.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

constexpr uint32_t kTileRows = 16;    // weight rows of an A tile and of a C tile
constexpr uint32_t kTileTokens = 16;  // tokens of a B tile and of a C tile (one packed group)
constexpr uint32_t kStepPairs = 16;   // column pairs a tile product takes
constexpr uint32_t kStepValues = 2 * kStepPairs;
constexpr uint32_t kPairValues = 2 * kTileTokens;  // uint16 values of one column pair of a group
constexpr uint32_t kTileValues = kTileRows * kStepValues;  // uint16 values of an A or B tile (1 KiB)
constexpr size_t kTileRowBytes = 64;

uint32_t column_pairs(uint32_t cols) { return (cols + 1) / 2; }

// The operands of one block of up to 2 row tiles × 2 token groups.
struct Block {
  const uint16_t* rows[2];     // row tile i's first row; row j at + j × row_stride values
  size_t row_stride;           // values
  const uint16_t* groups[2];   // token group i's packed pairs
  const uint16_t* row_tail[2];    // row tile i's last partial step, zero-padded (null: none)
  const uint16_t* group_tail[2];  // token group i's last partial step, zero-padded
  uint32_t full_steps;
  float* out;         // C tile (i, j) at out + i × 16 × out_stride + j × 16
  size_t out_stride;  // floats
};

// One tile step: A tiles from a (stride in bytes), B tiles from b, into the C tiles.
template <bool kTwoRowTiles, bool kTwoGroups>
[[gnu::always_inline]] inline void step(const uint16_t* a0, const uint16_t* a1, size_t a_stride, const uint16_t* b0,
                                        const uint16_t* b1) {
  _tile_loadd(4, a0, a_stride);
  _tile_loadd(6, b0, kTileRowBytes);
  _tile_dpbf16ps(0, 4, 6);
  if constexpr (kTwoGroups) {
    _tile_loadd(7, b1, kTileRowBytes);
    _tile_dpbf16ps(1, 4, 7);
  }
  if constexpr (kTwoRowTiles) {
    _tile_loadd(5, a1, a_stride);
    _tile_dpbf16ps(2, 5, 6);
    if constexpr (kTwoGroups) _tile_dpbf16ps(3, 5, 7);
  }
}

template <bool kTwoRowTiles, bool kTwoGroups>
void multiply_block(const Block& b) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const size_t row_bytes = b.row_stride * sizeof(uint16_t);
  for (uint32_t s = 0; s < b.full_steps; ++s) {
    const size_t column = size_t(s) * kStepValues;
    const size_t pairs = size_t(s) * kStepPairs * kPairValues;
    step<kTwoRowTiles, kTwoGroups>(b.rows[0] + column, b.rows[1] + column, row_bytes, b.groups[0] + pairs,
                                   b.groups[1] + pairs);
  }
  if (b.row_tail[0] != nullptr) {
    step<kTwoRowTiles, kTwoGroups>(b.row_tail[0], b.row_tail[1], kTileRowBytes, b.group_tail[0], b.group_tail[1]);
  }
  const size_t out_bytes = b.out_stride * sizeof(float);
  _tile_stored(0, b.out, out_bytes);
  if constexpr (kTwoGroups) _tile_stored(1, b.out + kTileTokens, out_bytes);
  if constexpr (kTwoRowTiles) {
    _tile_stored(2, b.out + kTileRows * b.out_stride, out_bytes);
    if constexpr (kTwoGroups) _tile_stored(3, b.out + kTileRows * b.out_stride + kTileTokens, out_bytes);
  }
}

}  // namespace

void matmat_rows_bf16_amx(const MatrixRef& w, const uint16_t* packed, uint32_t n_tokens, float* Y,
                          uint32_t row_begin, uint32_t row_end, bool squared_relu) {
  if (row_begin >= row_end || n_tokens == 0) return;
  const uint32_t cols = w.cols;
  const uint32_t groups = (n_tokens + kTileTokens - 1) / kTileTokens;
  const uint32_t padded_tokens = groups * kTileTokens;
  const size_t group_values = size_t(column_pairs(cols)) * kPairValues;
  const uint32_t full_steps = cols / kStepValues;
  const uint32_t tail_values = cols - full_steps * kStepValues;
  const uint32_t tail_pairs = column_pairs(cols) - full_steps * kStepPairs;
  const uint32_t n_rows = row_end - row_begin;
  const uint32_t row_tiles = (n_rows + kTileRows - 1) / kTileRows;
  const auto* data = static_cast<const uint16_t*>(w.data);

  // Scratch: the sums as [row][token]; then the tokens' tails (one tile a group), two row
  // tiles' tails, and room for a copy of the matrix's last 16 rows where they do not fill
  // a tile.
  auto* sums = static_cast<float*>(
      thread_scratch(ScratchSlot::Transposed, size_t(row_tiles) * kTileRows * padded_tokens * sizeof(float)));
  const size_t staged_values = (size_t(groups) + 2) * kTileValues + size_t(kTileRows) * cols;
  auto* staged = static_cast<uint16_t*>(thread_scratch(ScratchSlot::Panel, staged_values * sizeof(uint16_t)));
  uint16_t* group_tails = staged;
  uint16_t* row_tails = staged + size_t(groups) * kTileValues;
  uint16_t* last_rows = row_tails + 2 * kTileValues;
  if (tail_values != 0) {
    std::fill_n(group_tails, size_t(groups) * kTileValues, uint16_t(0));
    for (uint32_t g = 0; g < groups; ++g) {
      std::memcpy(group_tails + size_t(g) * kTileValues, packed + g * group_values + size_t(full_steps) * kTileValues,
                  size_t(tail_pairs) * kPairValues * sizeof(uint16_t));
    }
  }

  _tile_loadconfig(&kAmxTiles16x64);  // every tile 16 rows × 64 bytes
  for (uint32_t tile = 0; tile < row_tiles; tile += 2) {
    // The tile loads of the last block are done before its staged rows are overwritten.
    __asm__ volatile("" ::: "memory");
    const bool two_row_tiles = tile + 1 < row_tiles;
    Block b{};
    b.row_stride = cols;
    b.full_steps = full_steps;
    for (uint32_t i = 0; i < (two_row_tiles ? 2u : 1u); ++i) {
      const uint32_t first_row = row_begin + (tile + i) * kTileRows;
      const uint16_t* rows = data + size_t(first_row) * cols;
      if (first_row + kTileRows > w.rows) {
        // Past the matrix, the last row again (its outputs are never stored). Only the
        // last row tile of the matrix can be here, so one copy serves.
        for (uint32_t j = 0; j < kTileRows; ++j) {
          std::memcpy(last_rows + size_t(j) * cols, data + size_t(std::min(first_row + j, w.rows - 1)) * cols,
                      size_t(cols) * sizeof(uint16_t));
        }
        rows = last_rows;
      }
      b.rows[i] = rows;
      if (tail_values != 0) {
        uint16_t* tail = row_tails + size_t(i) * kTileValues;
        std::fill_n(tail, kTileValues, uint16_t(0));
        for (uint32_t j = 0; j < kTileRows; ++j) {
          std::memcpy(tail + j * kStepValues, rows + size_t(j) * cols + size_t(full_steps) * kStepValues,
                      tail_values * sizeof(uint16_t));
        }
        b.row_tail[i] = tail;
      }
    }
    if (!two_row_tiles) {
      b.rows[1] = b.rows[0];
      b.row_tail[1] = b.row_tail[0];
    }
    // The tile loads' asm names no memory operand: the copies must be in memory first.
    __asm__ volatile("" ::: "memory");
    for (uint32_t g = 0; g < groups; g += 2) {
      const bool two_groups = g + 1 < groups;
      b.groups[0] = packed + g * group_values;
      b.groups[1] = two_groups ? b.groups[0] + group_values : b.groups[0];
      if (tail_values != 0) {
        b.group_tail[0] = group_tails + size_t(g) * kTileValues;
        b.group_tail[1] = two_groups ? b.group_tail[0] + kTileValues : b.group_tail[0];
      }
      b.out = sums + size_t(tile) * kTileRows * padded_tokens + size_t(g) * kTileTokens;
      b.out_stride = padded_tokens;
      if (two_row_tiles) {
        two_groups ? multiply_block<true, true>(b) : multiply_block<true, false>(b);
      } else {
        two_groups ? multiply_block<false, true>(b) : multiply_block<false, false>(b);
      }
    }
  }
  _tile_release();
  __asm__ volatile("" ::: "memory");  // the tile stores' asm names no memory operand either
  if (squared_relu) square_relu(sums, size_t(n_rows) * padded_tokens);
  transpose_floats(sums, padded_tokens, Y + row_begin, w.rows, n_rows, n_tokens);
}

uint32_t bf16_amx_row_granule() { return kTileRows; }

// iterations / 8 rounds of four independent tile products (tdpbf16ps, 16 × 16 × 32
// multiply-adds each, the instruction of matmat_rows_bf16_amx); 2 operations each.
double amx_bf16_peak_loop(uint32_t iterations, float* sink) {
  alignas(64) uint16_t operand[kTileValues];
  for (uint32_t i = 0; i < kTileValues; ++i) operand[i] = uint16_t(0x3f80 + (i % 7));  // about 1.0
  start_peak_tiles(operand);
  const uint32_t rounds = std::max(iterations / 8, 1u);
  for (uint32_t i = 0; i < rounds; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float result[kTileRows * kTileTokens];
  _tile_stored(0, result, kTileRowBytes);
  _tile_release();
  __asm__ volatile("" ::: "memory");
  *sink = result[0];
  return 2.0 * kTileRows * kTileTokens * kStepValues * 4 * double(rounds);
}

}  // namespace rwkv::RWKV_KERNEL_NS

#endif
