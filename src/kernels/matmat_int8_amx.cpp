// The q8_0 form of the int8 GEMM (matmat_int8.hpp) on AMX tiles, at the amx level.
// tdpbssd multiplies int8 by int8 and sums into int32: C[16 × 16] += A[16 × K] B[K × 16]
// for K up to 64 bytes. Here K is one q8_0 block (32 values), because every block has its
// own scales: a C tile is one block's integer dot products of 16 weight rows × 16 tokens,
// converted to float and scaled as in the VNNI kernel (matmat_int8.cpp).
//
// Layout. A (tmm4, tmm5) is loaded straight from the q8_0 matrix: 16 rows × the 32 quants
// of block b, the stride being the bytes of a row, so the weights are never rearranged
// (only their f16 scales are gathered, 16 rows at a time). B (tmm6, tmm7) is a block of
// 16 tokens in tdpbssd's layout, 8 rows of 16 tokens × 4 consecutive quants, packed once
// per product (pack_amx_q8_0_tokens) with the tokens' 16 scales after it. C (tmm0-3)
// goes through a 1 KiB buffer into 16 float32 accumulators, one per weight row with the
// 16 tokens in its lanes; a 16 × 16 transpose at the end gives each token's 16 outputs.
//
// Pipelining. A tile product's integers reach the vector unit only through memory, after
// tdpbssd's latency and the tile store's: so block b's product starts (C tile b % 4, A and
// B tiles alternating) while block b - 3's integers are converted, the vector work that
// bounds the speed (3 instructions per 16 × 32 multiply-adds of a row).
//
// Packing. A token group's B rows interleave its 16 tokens 4 bytes at a time, so tokens
// of one group packed on different threads would write the same cache lines: each range
// of tokens packs the groups that start inside it, whole.
//
// Equal to the VNNI kernel bit for bit: the same rounding of the tokens, the same exact
// integer dot per block, and the same float operations in the same order per output,
// acc = fma(float(dot) × weight scale, token scale, acc) over the blocks in order.
#include "kernels/matmat_int8.hpp"

#if defined(__AMX_TILE__) && defined(__AMX_INT8__)

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "kernels/amx_tiles.hpp"
#include "kernels/gcc12_avx512_warnings.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/scratch.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

constexpr uint32_t kLanes = 16;
constexpr uint32_t kTileRows = 16;    // weight rows of an A tile and of a C tile
constexpr uint32_t kTileTokens = 16;  // tokens of a B tile and of a C tile
static_assert(kTileTokens == kAmxQ8TokenTile);
constexpr size_t kBlockBytes = sizeof(BlockQ8_0);
constexpr size_t kQuantsOffset = offsetof(BlockQ8_0, quants);
static_assert(offsetof(BlockQ8_0, scale) == 0 && kQuantsOffset == 2 && kBlockBytes == 34);

// A token group (16 tokens) holds, per block, one record: the B tile, 8 rows × [16
// tokens][4 quants] (512 bytes), then the 16 tokens' scales as float.
constexpr uint32_t kTokenRowBytes = 4 * kTileTokens;
constexpr uint32_t kTokenQuantBytes = kQuantBlockValues / 4 * kTokenRowBytes;
constexpr uint32_t kTokenRecordBytes = kTokenQuantBytes + 4 * kTileTokens;
constexpr uint32_t kCTileBytes = kTileRows * 4 * kTileTokens;

// tmm0-3: C, 16 rows × 16 int32; tmm4, tmm5: A, 16 weight rows × 32 quants; tmm6, tmm7:
// B, 8 rows × 16 tokens × 4 quants (read-only memory: amx_tiles.hpp).
constexpr AmxTileConfig kGemmTiles = {1, 0, {}, {64, 64, 64, 64, 32, 32, 64, 64}, {16, 16, 16, 16, 16, 16, 8, 8}};

__mmask16 first_lanes(uint32_t n) { return n >= kLanes ? __mmask16(0xffff) : __mmask16((1u << n) - 1u); }

uint32_t block_count(uint32_t cols) { return (cols + kQuantBlockValues - 1) / kQuantBlockValues; }

// Token `slot` of a group: x's `cols` values (x null: a padding token, all zero) rounded
// block by block (round_activation_group, as the VNNI packer rounds q8_0 tokens).
void pack_token(const float* x, uint32_t cols, uint32_t n_blocks, std::byte* group, uint32_t slot) {
  for (uint32_t b = 0; b < n_blocks; ++b) {
    std::byte* record = group + size_t(b) * kTokenRecordBytes;
    const uint32_t begin = b * kQuantBlockValues;
    // A copy of the constant: std::min takes references, and binding one to
    // rwkv::kQuantBlockValues itself would emit it as a weak symbol shared with the other
    // levels' objects (kernels.no_shared_weak_symbols).
    const uint32_t block_values = kQuantBlockValues;
    const uint32_t present = x == nullptr ? 0 : std::min(block_values, cols - begin);
    const float scale = round_activation_group(x == nullptr ? nullptr : x + begin, present, kQuantBlockValues,
                                               [&](uint32_t, const uint32_t* rows, int32_t) {
                                                 for (uint32_t k = 0; k < kQuantBlockValues / 4; ++k) {
                                                   std::memcpy(record + k * kTokenRowBytes + 4 * slot, &rows[k], 4);
                                                 }
                                               });
    std::memcpy(record + kTokenQuantBytes + 4 * slot, &scale, sizeof(scale));
  }
}

// scales[16 b + i] = the scale of block b of row i, for the 16 rows from `rows` on.
void gather_scales(const std::byte* rows, size_t row_bytes, uint32_t n_blocks, float* scales) {
  const __m512i offsets =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(int32_t(row_bytes)));
  for (uint32_t b = 0; b < n_blocks; ++b) {
    // Each dword: the f16 scale in its low half, the block's first quants above.
    const __m512i heads = _mm512_i32gather_epi32(offsets, rows + size_t(b) * kBlockBytes, 1);
    _mm512_storeu_ps(scales + size_t(b) * kTileRows, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(heads)));
  }
}

// Block b's tile product in pipeline slot b % 4: C tile kSlot, A and B tiles 4 + kSlot % 2
// and 6 + kSlot % 2 (the intrinsics take tile numbers as literals).
template <uint32_t kSlot>
[[gnu::always_inline]] inline void multiply_block(const std::byte* weights, size_t row_bytes, const std::byte* tokens) {
  if constexpr (kSlot == 0) {
    _tile_loadd(4, weights, row_bytes);
    _tile_loadd(6, tokens, kTokenRowBytes);
    _tile_zero(0);
    _tile_dpbssd(0, 4, 6);
  } else if constexpr (kSlot == 1) {
    _tile_loadd(5, weights, row_bytes);
    _tile_loadd(7, tokens, kTokenRowBytes);
    _tile_zero(1);
    _tile_dpbssd(1, 5, 7);
  } else if constexpr (kSlot == 2) {
    _tile_loadd(4, weights, row_bytes);
    _tile_loadd(6, tokens, kTokenRowBytes);
    _tile_zero(2);
    _tile_dpbssd(2, 4, 6);
  } else {
    _tile_loadd(5, weights, row_bytes);
    _tile_loadd(7, tokens, kTokenRowBytes);
    _tile_zero(3);
    _tile_dpbssd(3, 5, 7);
  }
}

// C tile kSlot to memory.
template <uint32_t kSlot>
[[gnu::always_inline]] inline void store_products(int32_t* c) {
  if constexpr (kSlot == 0) {
    _tile_stored(0, c, kTokenRowBytes);
  } else if constexpr (kSlot == 1) {
    _tile_stored(1, c, kTokenRowBytes);
  } else if constexpr (kSlot == 2) {
    _tile_stored(2, c, kTokenRowBytes);
  } else {
    _tile_stored(3, c, kTokenRowBytes);
  }
}

// acc[i] += float(C[i, :]) × row i's scale × the tokens' scales, in the VNNI kernel's order.
[[gnu::always_inline]] inline void accumulate(__m512 (&acc)[kTileRows], const int32_t* c, const float* row_scales,
                                              const std::byte* token_scales) {
  const __m512 x_scales = _mm512_loadu_ps(token_scales);
#pragma GCC unroll 16
  for (uint32_t i = 0; i < kTileRows; ++i) {
    const __m512 dot = _mm512_cvtepi32_ps(_mm512_load_si512(c + i * kLanes));
    acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(dot, _mm512_set1_ps(row_scales[i])), x_scales, acc[i]);
  }
}

// v[i] lane j becomes v[j] lane i: pairs of rows interleaved (unpack), then groups of four
// (shuffle within 128-bit lanes), then the 128-bit lanes across four registers.
[[gnu::always_inline]] inline void transpose_16x16(__m512 (&v)[kLanes]) {
  __m512 t[kLanes];
#pragma GCC unroll 8
  for (uint32_t i = 0; i < kLanes; i += 2) {
    t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
  }
  // u[4 g + j]: column 4 L + j of rows 4 g .. 4 g + 3 in 128-bit lane L.
  __m512 u[kLanes];
#pragma GCC unroll 4
  for (uint32_t g = 0; g < kLanes; g += 4) {
    u[g] = _mm512_shuffle_ps(t[g], t[g + 2], 0x44);
    u[g + 1] = _mm512_shuffle_ps(t[g], t[g + 2], 0xee);
    u[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
    u[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xee);
  }
#pragma GCC unroll 4
  for (uint32_t j = 0; j < 4; ++j) {
    const __m512 even_low = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);   // lanes 0, 2 of rows 0-3, 4-7
    const __m512 even_high = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    const __m512 odd_low = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);    // lanes 1, 3
    const __m512 odd_high = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
    v[j] = _mm512_shuffle_f32x4(even_low, even_high, 0x88);
    v[8 + j] = _mm512_shuffle_f32x4(even_low, even_high, 0xdd);
    v[4 + j] = _mm512_shuffle_f32x4(odd_low, odd_high, 0x88);
    v[12 + j] = _mm512_shuffle_f32x4(odd_low, odd_high, 0xdd);
  }
}

// Block b of the 16 rows at `rows` into L2.
[[gnu::always_inline]] inline void prefetch_block(const std::byte* rows, size_t row_bytes, uint32_t b) {
#pragma GCC unroll 16
  for (uint32_t i = 0; i < kTileRows; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(rows + i * row_bytes + size_t(b) * kBlockBytes), _MM_HINT_T1);
  }
}

// The blocks of one tile (16 rows × 16 tokens) and where they go.
struct BlockStream {
  const std::byte* quants;  // row 0's first block's quants; row i at + i × row_bytes
  size_t row_bytes;
  const float* scales;      // gather_scales
  const std::byte* tokens;  // the token group's records
  const std::byte* prefetch;  // the next row tile's quants, or null
  uint32_t n_blocks;
};

// Step b of the pipeline, in slot kSlot = b % 4: starts block b's tile product, then
// converts block b - 3's (its C tile stored through c[its slot]) into the accumulators,
// so that three tile products are in flight while the vector unit works. Functions, not
// lambdas: acc must stay in registers across the tile stores, whose asm clobbers memory.
template <uint32_t kSlot>
[[gnu::always_inline]] inline void pipeline_step(__m512 (&acc)[kTileRows], int32_t (&c)[4][kCTileBytes / 4],
                                                 uint32_t b, const BlockStream& s) {
  if (b < s.n_blocks) {
    multiply_block<kSlot>(s.quants + b * kBlockBytes, s.row_bytes, s.tokens + size_t(b) * kTokenRecordBytes);
  }
  constexpr uint32_t kDrained = (kSlot + 1) % 4;  // the slot of block b - 3
  if (b >= 3 && b - 3 < s.n_blocks) {
    const uint32_t done = b - 3;
    store_products<kDrained>(c[kDrained]);
    if (s.prefetch != nullptr) prefetch_block(s.prefetch, s.row_bytes, done);
    accumulate(acc, c[kDrained], s.scales + size_t(done) * kTileRows,
               s.tokens + size_t(done) * kTokenRecordBytes + kTokenQuantBytes);
  }
}

// One row tile of the matrix: quants + i × row_bytes is row i's first block's quants.
struct RowTile {
  const std::byte* quants;
  size_t row_bytes;
  const float* scales;  // gather_scales
  uint32_t n_blocks;
};

// Where a tile's results go: token t's outputs at y + t × stride, the lanes of `rows`.
struct TileOutput {
  float* y;
  size_t stride;
  __mmask16 rows;
  uint32_t tokens;
  bool squared_relu;
};

// The 16 rows of `tile` × the 16 tokens of one group over all blocks, stored to `out`;
// prefetch (or null): the next row tile's quants, fetched into L2 along the way.
void multiply_tile(const RowTile& tile, const std::byte* tokens, const std::byte* prefetch, const TileOutput& out) {
  const BlockStream stream{tile.quants, tile.row_bytes, tile.scales, tokens, prefetch, tile.n_blocks};
  alignas(64) int32_t c[4][kCTileBytes / 4];
  __m512 acc[kTileRows];
#pragma GCC unroll 16
  for (uint32_t i = 0; i < kTileRows; ++i) acc[i] = _mm512_setzero_ps();
  for (uint32_t b = 0; b < stream.n_blocks + 3; b += 4) {
    pipeline_step<0>(acc, c, b, stream);
    pipeline_step<1>(acc, c, b + 1, stream);
    pipeline_step<2>(acc, c, b + 2, stream);
    pipeline_step<3>(acc, c, b + 3, stream);
  }
  // The transpose goes to another array: only that one is indexed by a variable below,
  // so acc stays in registers (an array indexed at run time lives in memory, which each
  // tile store's clobber would write back and reload).
  __m512 token_rows[kLanes];
#pragma GCC unroll 16
  for (uint32_t i = 0; i < kLanes; ++i) token_rows[i] = acc[i];
  transpose_16x16(token_rows);
  const __m512 zero = _mm512_setzero_ps();
  for (uint32_t t = 0; t < out.tokens; ++t) {
    __m512 y = token_rows[t];
    if (out.squared_relu) {
      y = _mm512_max_ps(y, zero);
      y = _mm512_mul_ps(y, y);
    }
    _mm512_mask_storeu_ps(out.y + t * out.stride, out.rows, y);
  }
}

}  // namespace

size_t amx_q8_0_tokens_bytes(uint32_t n_tokens, uint32_t cols) {
  const size_t n_groups = (size_t(n_tokens) + kTileTokens - 1) / kTileTokens;
  return n_groups * block_count(cols) * kTokenRecordBytes;
}

void pack_amx_q8_0_tokens(const float* X, uint32_t n_tokens, uint32_t cols, uint32_t token_begin, uint32_t token_end,
                          std::byte* packed) {
  const uint32_t n_blocks = block_count(cols);
  const size_t group_bytes = size_t(n_blocks) * kTokenRecordBytes;
  // The groups that start in [token_begin, token_end), with their padding past n_tokens.
  const uint32_t first_group = (token_begin + kTileTokens - 1) / kTileTokens;
  const uint32_t end_group = (token_end + kTileTokens - 1) / kTileTokens;
  for (uint32_t g = first_group; g < end_group; ++g) {
    for (uint32_t slot = 0; slot < kTileTokens; ++slot) {
      const uint32_t t = g * kTileTokens + slot;
      pack_token(t < n_tokens ? X + size_t(t) * cols : nullptr, cols, n_blocks, packed + size_t(g) * group_bytes, slot);
    }
  }
}

void matmat_rows_amx_q8_0(const MatrixRef& w, const std::byte* packed, uint32_t n_tokens, float* Y,
                          uint32_t row_begin, uint32_t row_end, bool squared_relu) {
  if (row_begin >= row_end || n_tokens == 0) return;
  const uint32_t n_blocks = block_count(w.cols);
  const size_t row_bytes = size_t(n_blocks) * kBlockBytes;
  const size_t group_bytes = size_t(n_blocks) * kTokenRecordBytes;
  const uint32_t n_groups = (n_tokens + kTileTokens - 1) / kTileTokens;
  // Scratch: the gathered scales, then room for a copy of the matrix's last rows where
  // they do not fill a tile (a tile load reads 16 rows).
  const size_t scales_bytes = (size_t(n_blocks) * kTileRows * sizeof(float) + 63) / 64 * 64;
  auto* scratch = static_cast<std::byte*>(thread_scratch(ScratchSlot::Panel, scales_bytes + kTileRows * row_bytes));
  float* scales = reinterpret_cast<float*>(scratch);
  std::byte* last_rows = scratch + scales_bytes;
  const auto* data = static_cast<const std::byte*>(w.data);

  _tile_loadconfig(&kGemmTiles);
  for (uint32_t first_row = row_begin; first_row < row_end; first_row += kTileRows) {
    const std::byte* rows = data + size_t(first_row) * row_bytes;
    if (first_row + kTileRows > w.rows) {
      // Past the matrix, the last row again (its outputs are never stored).
      for (uint32_t i = 0; i < kTileRows; ++i) {
        std::memcpy(last_rows + i * row_bytes, data + size_t(std::min(first_row + i, w.rows - 1)) * row_bytes,
                    row_bytes);
      }
      // The tile loads' asm names no memory operand: the copy must be in memory first.
      __asm__ volatile("" ::: "memory");
      rows = last_rows;
    }
    gather_scales(rows, row_bytes, n_blocks, scales);
    const RowTile tile{rows + kQuantsOffset, row_bytes, scales, n_blocks};
    const uint32_t next_row = first_row + kTileRows;
    const std::byte* next =
        next_row < row_end && next_row + kTileRows <= w.rows ? data + size_t(next_row) * row_bytes + kQuantsOffset : nullptr;
    TileOutput out;
    out.stride = w.rows;
    out.rows = first_lanes(std::min(kTileRows, row_end - first_row));
    out.squared_relu = squared_relu;
    for (uint32_t g = 0; g < n_groups; ++g) {
      out.y = Y + size_t(g) * kTileTokens * w.rows + first_row;
      out.tokens = std::min(kTileTokens, n_tokens - g * kTileTokens);
      multiply_tile(tile, packed + size_t(g) * group_bytes, g == 0 ? next : nullptr, out);
    }
  }
  _tile_release();
}

}  // namespace rwkv::RWKV_KERNEL_NS

#endif
