// The int8 GEMM of matmat_int8.hpp. Y[t, r] is a sum over activation groups of
// (float scales) × (an integer dot product), as in matvec_q8_0.cpp and matvec_q4_s.cpp;
// the integers are exact, only the float additions come in another order.
//
// Layout. A register holds 16 weight rows × 4 consecutive columns (vpdpbusd's lanes), so
// one k step of a token is a 4-byte broadcast, and the 16 int32 results of a row vector
// are 16 consecutive outputs of Y[t, :] (stored directly, no transpose). The micro-tile is
// 2 row vectors (kPanelRows = 32 rows) × kTokenTile = 6 tokens: 12 accumulators, per k step
// 2 weight loads and 6 broadcasts for 12 vpdpbusd. The weights of 32 rows are rearranged
// into that layout once per panel over all of K (in L2: 110 KiB for q8_0 at K = 3072)
// and multiplied with every tile of tokens; the tokens are packed once per product
// (pack_int8_tokens), 6 tokens interleaved 4 bytes at a time, so a tile's k step is 24
// contiguous bytes.
//
// Signs. vpdpbusd multiplies unsigned by signed bytes. q4_s levels are unsigned (0..15),
// so they are the unsigned operand as they are. q8_0 weights are stored as w + 128
// (unsigned, 1..255) and the activations stay signed: sum (w + 128) x = sum w x +
// 128 sum x, and 128 sum x is the token's own block sum, so each block's accumulators
// start at -128 × block_sum (a broadcast load the token pack precomputes) instead of
// zero; the correction costs no arithmetic. Moving the weight's sign onto x per product
// (matvec_q8_0.cpp) would cost an instruction per vpdpbusd here, where each x is shared
// by many rows.
//
// Scales. q8_0: per 32-value block, cvt(dot) × weight scales × token scale into float
// accumulators. q4_s: the sub-block scales are integers, so each sub-block's dot is
// multiplied by its scales in int32 (vpmulld; < 2^31: 8 × 255 × 15 × 127 × 32) and the
// super-block's sum converts to float once per 256 values, with the minimums' term
// sum_j mins[j] × block_sum[j] done in int16 pairs (vpdpwssd), as matvec_q4_s.cpp does.
#include "kernels/matmat_int8.hpp"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>

#include "kernels/gcc12_avx512_warnings.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/row_dots.hpp"
#include "kernels/scratch.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

constexpr uint32_t kLanes = 16;
constexpr uint32_t kRowVectors = 2;
constexpr uint32_t kPanelRows = kRowVectors * kLanes;
constexpr uint32_t kTokenTile = 6;
constexpr uint32_t kStepsPerBlock = kQuantBlockValues / 4;  // k steps of 4 columns in a block of 32

// One k step of a token tile: 4 bytes per token.
constexpr uint32_t kTileStepBytes = 4 * kTokenTile;

// A token tile holds, per activation group, one record:
//   q8_0 (group of 32): quants [8 steps][6 tokens][4], dot starts int32 [6] (-128 × block
//     sum), scales float [6];
//   q4_s (group of 256): quants [64 steps][6][4], scales float [6], block-sum pairs
//     int32 [4][6] (two int16 each, paired as the minimums are: see pack_panel_q4_s).
constexpr uint32_t kQ8TokenQuantBytes = kStepsPerBlock * kTileStepBytes;
constexpr uint32_t kQ8TokenRecordBytes = kQ8TokenQuantBytes + 2 * 4 * kTokenTile;
constexpr uint32_t kQ4TokenQuantBytes = kSuperBlockValues / 4 * kTileStepBytes;
constexpr uint32_t kQ4TokenRecordBytes = kQ4TokenQuantBytes + 4 * kTokenTile + 4 * 4 * kTokenTile;

// A weight panel holds, per group, one record:
//   q8_0: quants [8 steps][2 row vectors][16 rows][4] as w + 128, scales half [32]: the
//     WeightLayout::Int8Panels record of quant_blocks.hpp, so a matrix stored that way
//     is multiplied in place (no packing) and decoded by matvec_rows_int8_panels;
//   q4_s (expanded): levels [8 sub-blocks][8 steps][2][16][4], sub-block scales int32
//     [8][2][16], minimum pairs int32 [4][2][16], scale_step float [2][16], min_step float
//     [2][16]. The stored Int8Panels form keeps the nibbles and byte scales (as many bytes
//     as the rows: decoding reads it at the memory's pace), and a product expands each
//     panel into this form in scratch memory (expand_q4_panel: masks, shifts and
//     widenings of whole vectors, no transposes), the tile then reading bytes as they are.
constexpr uint32_t kVectorBytes = 64;
constexpr size_t kCacheLine = 64;
constexpr uint32_t kPanelStepBytes = kRowVectors * kVectorBytes;
constexpr uint32_t kQ8PanelQuantBytes = kStepsPerBlock * kPanelStepBytes;
static_assert(kPanelRows == kInt8PanelRows && kQ8PanelRecordBytes == kQ8PanelQuantBytes + 2 * kPanelRows);
constexpr uint32_t kHalfScalesBytes = 2 * kLanes;  // a row vector's scales
constexpr uint32_t kQ4ExpandedLevelBytes = kSubBlocks * kStepsPerBlock * kPanelStepBytes;
constexpr uint32_t kQ4ExpandedScalesOffset = kQ4ExpandedLevelBytes;
constexpr uint32_t kQ4ExpandedMinsOffset = kQ4ExpandedScalesOffset + kSubBlocks * kPanelStepBytes;
constexpr uint32_t kQ4ExpandedStepsOffset = kQ4ExpandedMinsOffset + kSubBlocks / 2 * kPanelStepBytes;
constexpr uint32_t kQ4ExpandedRecordBytes = kQ4ExpandedStepsOffset + 2 * kPanelStepBytes;

struct TokenLayout {
  uint32_t group_values;
  uint32_t n_groups;
  uint32_t record_bytes;
  size_t tile_bytes;
};

TokenLayout token_layout(DType type, uint32_t cols) {
  TokenLayout layout;
  const bool q4 = type == DType::Q4_S;
  layout.group_values = q4 ? kSuperBlockValues : kQuantBlockValues;
  layout.n_groups = (cols + layout.group_values - 1) / layout.group_values;
  layout.record_bytes = q4 ? kQ4TokenRecordBytes : kQ8TokenRecordBytes;
  layout.tile_bytes = size_t(layout.n_groups) * layout.record_bytes;
  return layout;
}

int32_t load_int32(const std::byte* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
float load_float(const std::byte* p) {
  float v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
void store_int32(std::byte* p, int32_t v) { std::memcpy(p, &v, sizeof(v)); }
void store_float(std::byte* p, float v) { std::memcpy(p, &v, sizeof(v)); }

__mmask16 first_lanes(uint32_t n) { return n >= kLanes ? __mmask16(0xffff) : __mmask16((1u << n) - 1u); }

// Token `slot` of a tile: x's `cols` values (x null: a padding token, all zero) rounded
// group by group (round_activation_group) into the tile's records.
void pack_token(DType type, const float* x, uint32_t cols, const TokenLayout& layout, std::byte* tile, uint32_t slot) {
  const bool q4 = type == DType::Q4_S;
  for (uint32_t g = 0; g < layout.n_groups; ++g) {
    std::byte* record = tile + size_t(g) * layout.record_bytes;
    const uint32_t begin = g * layout.group_values;
    const uint32_t present = x == nullptr ? 0 : std::min(layout.group_values, cols - begin);
    int32_t block_sums[kSubBlocks];
    const float scale = round_activation_group(
        x == nullptr ? nullptr : x + begin, present, layout.group_values,
        [&](uint32_t block, const uint32_t* steps, int32_t block_sum) {
          block_sums[block] = block_sum;
          for (uint32_t s = 0; s < kStepsPerBlock; ++s) {
            std::memcpy(record + (block * kStepsPerBlock + s) * kTileStepBytes + 4 * slot, &steps[s], 4);
          }
        });
    if (q4) {
      store_float(record + kQ4TokenQuantBytes + 4 * slot, scale);
      // Pairs (0, 2), (1, 3), (4, 6), (5, 7): the order the panel's minimum pairs have.
      std::byte* pairs = record + kQ4TokenQuantBytes + 4 * kTokenTile;
      for (uint32_t p = 0; p < kSubBlocks / 2; ++p) {
        const uint32_t j = q4_s_pair_low(p);
        const uint32_t pair = (uint32_t(block_sums[j]) & 0xffffu) | (uint32_t(block_sums[j + 2]) << 16);
        store_int32(pairs + (p * kTokenTile + slot) * 4, int32_t(pair));
      }
    } else {
      store_int32(record + kQ8TokenQuantBytes + 4 * slot, -128 * block_sums[0]);
      store_float(record + kQ8TokenQuantBytes + 4 * kTokenTile + 4 * slot, scale);
    }
  }
}

// Row i (i < 16) at row0 + i × stride, 32 bytes of each. Returns, in out[k], dword k of
// the 16 rows (rows 0..7 in the low 256 bits, 8..15 in the high): an 8×8 dword transpose
// in each half (unpack 32, unpack 64, then the 128-bit quarters across two registers).
// Inlined, so that the rows come straight from memory and the results stay in registers.
[[gnu::always_inline]] inline void transpose_rows(const std::byte* row0, size_t stride, __m512i out[8]) {
  __m512i v[8];
  const std::byte* low_row = row0;
  const std::byte* high_row = row0 + 8 * stride;
#pragma GCC unroll 8
  for (uint32_t i = 0; i < 8; ++i) {
    const __m256i low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(low_row));
    const __m256i high = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(high_row));
    v[i] = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
    low_row += stride;
    high_row += stride;
  }
  __m512i u[8], q[8];
#pragma GCC unroll 4
  for (uint32_t i = 0; i < 8; i += 2) {
    u[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
    u[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
  }
#pragma GCC unroll 2
  for (uint32_t i = 0; i < 8; i += 4) {
    q[i] = _mm512_unpacklo_epi64(u[i], u[i + 2]);
    q[i + 1] = _mm512_unpackhi_epi64(u[i], u[i + 2]);
    q[i + 2] = _mm512_unpacklo_epi64(u[i + 1], u[i + 3]);
    q[i + 3] = _mm512_unpackhi_epi64(u[i + 1], u[i + 3]);
  }
  const __m512i even_quarters = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i odd_quarters = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
#pragma GCC unroll 4
  for (uint32_t i = 0; i < 4; ++i) {
    out[i] = _mm512_permutex2var_epi64(q[i], even_quarters, q[i + 4]);
    out[i + 4] = _mm512_permutex2var_epi64(q[i], odd_quarters, q[i + 4]);
  }
}

// A panel's 32 rows, row i at first + i × stride, every one inside the matrix
// (rows_within_matrix).
struct PanelRows {
  const std::byte* first;
  size_t stride;
};

PanelRows panel_rows(const MatrixRef& w, uint32_t first_row, size_t row_bytes) {
  return {rows_within_matrix(w, first_row, kPanelRows, row_bytes), row_bytes};
}

void pack_panel_q8_0(const MatrixRef& w, uint32_t first_row, uint32_t n_blocks, std::byte* panel) {
  const PanelRows rows = panel_rows(w, first_row, size_t(n_blocks) * sizeof(BlockQ8_0));
  const __m512i bias = _mm512_set1_epi8(char(0x80));
  for (uint32_t v = 0; v < kRowVectors; ++v) {
    const std::byte* row0 = rows.first + v * kLanes * rows.stride;
    for (uint32_t b = 0; b < n_blocks; ++b) {
      std::byte* record = panel + size_t(b) * kQ8PanelRecordBytes + v * kVectorBytes;
      const std::byte* blocks = row0 + size_t(b) * sizeof(BlockQ8_0);
      __m512i steps[8];
      transpose_rows(blocks + offsetof(BlockQ8_0, quants), rows.stride, steps);
#pragma GCC unroll 8
      for (uint32_t k = 0; k < kStepsPerBlock; ++k) {
        // XOR 0x80 adds 128 modulo 256: w + 128 as unsigned.
        _mm512_storeu_si512(record + k * kPanelStepBytes, _mm512_xor_si512(steps[k], bias));
      }
      // The scales stay half floats, copied by the integer units (which are idle here;
      // a gather or a vector built from 16 loads costs more than the transpose), and
      // are widened by the tiles.
      std::byte* scales = panel + size_t(b) * kQ8PanelRecordBytes + kQ8PanelQuantBytes + v * kHalfScalesBytes;
      const std::byte* scale = blocks + offsetof(BlockQ8_0, scale);
#pragma GCC unroll 16
      for (uint32_t i = 0; i < kLanes; ++i) std::memcpy(scales + 2 * i, scale + i * rows.stride, 2);
    }
  }
}

void pack_panel_q4_s(const MatrixRef& w, uint32_t first_row, uint32_t n_super_blocks, std::byte* panel) {
  const PanelRows rows = panel_rows(w, first_row, size_t(n_super_blocks) * sizeof(BlockQ4_S));
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  const __m512i low_byte = _mm512_set1_epi32(0xff);
  static_assert(offsetof(BlockQ4_S, scale_step) == 0 && offsetof(BlockQ4_S, min_step) == 4 &&
                offsetof(BlockQ4_S, scales) == 8 && offsetof(BlockQ4_S, mins) == 16);
  for (uint32_t s = 0; s < n_super_blocks; ++s) {
    std::byte* record = panel + size_t(s) * kQ4ExpandedRecordBytes;
    const size_t block_offset = size_t(s) * sizeof(BlockQ4_S);
    for (uint32_t v = 0; v < kRowVectors; ++v) {
      const std::byte* heads = rows.first + v * kLanes * rows.stride + block_offset;
      // Quarter c of the nibbles (32 bytes) holds sub-block j = 4(c / 2) + c % 2 in its
      // low nibbles and j + 2 in its high ones (quant_blocks.hpp).
      for (uint32_t c = 0; c < 4; ++c) {
        __m512i steps[8];
        transpose_rows(heads + offsetof(BlockQ4_S, nibbles) + 32 * c, rows.stride, steps);
        const uint32_t j = 4 * (c / 2) + c % 2;
        for (uint32_t k = 0; k < kStepsPerBlock; ++k) {
          const __m512i low = _mm512_and_si512(steps[k], low_nibbles);
          const __m512i high = _mm512_and_si512(_mm512_srli_epi16(steps[k], 4), low_nibbles);
          _mm512_storeu_si512(record + (j * kStepsPerBlock + k) * kPanelStepBytes + v * kVectorBytes, low);
          _mm512_storeu_si512(record + ((j + 2) * kStepsPerBlock + k) * kPanelStepBytes + v * kVectorBytes, high);
        }
      }
      // The first 24 bytes of a block as dwords: scale_step, min_step, scales 0..3,
      // scales 4..7, mins 0..3, mins 4..7 (the transpose reads 32; the rest is unused).
      __m512i head[8];
      transpose_rows(heads, rows.stride, head);
      for (uint32_t j = 0; j < kSubBlocks; ++j) {
        const __m512i scale = _mm512_and_si512(_mm512_srli_epi32(head[2 + j / 4], 8 * (j % 4)), low_byte);
        _mm512_storeu_si512(record + kQ4ExpandedScalesOffset + j * kPanelStepBytes + v * kVectorBytes, scale);
      }
      // Sign-extending the bytes of each int16 gives pairs (mins 0, 2) and (1, 3) from
      // one dword, (4, 6) and (5, 7) from the other; the token pack pairs its block sums
      // the same way.
      for (uint32_t h = 0; h < 2; ++h) {
        const __m512i mins = head[4 + h];
        const __m512i even = _mm512_srai_epi16(_mm512_slli_epi16(mins, 8), 8);
        const __m512i odd = _mm512_srai_epi16(mins, 8);
        _mm512_storeu_si512(record + kQ4ExpandedMinsOffset + (2 * h) * kPanelStepBytes + v * kVectorBytes, even);
        _mm512_storeu_si512(record + kQ4ExpandedMinsOffset + (2 * h + 1) * kPanelStepBytes + v * kVectorBytes, odd);
      }
      _mm512_storeu_si512(record + kQ4ExpandedStepsOffset + v * kVectorBytes, head[0]);
      _mm512_storeu_si512(record + kQ4ExpandedStepsOffset + kPanelStepBytes + v * kVectorBytes, head[1]);
    }
  }
}

// A q4_s panel's expanded records (pack_panel_q4_s) in the stored Int8Panels form
// (quant_blocks.hpp), and back: expand_q4_panel(compact_q4_panel(e)) == e.
void compact_q4_panel(const std::byte* expanded, uint32_t n_super_blocks, std::byte* compact) {
  for (uint32_t s = 0; s < n_super_blocks; ++s) {
    const std::byte* e = expanded + size_t(s) * kQ4ExpandedRecordBytes;
    std::byte* c = compact + size_t(s) * kQ4PanelRecordBytes;
    for (uint32_t v = 0; v < kRowVectors; ++v) {
      for (uint32_t p = 0; p < kSubBlocks / 2; ++p) {
        const uint32_t j = q4_s_pair_low(p);
        for (uint32_t k = 0; k < kStepsPerBlock; ++k) {
          const __m512i low = _mm512_loadu_si512(e + (j * kStepsPerBlock + k) * kPanelStepBytes + v * kVectorBytes);
          const __m512i high =
              _mm512_loadu_si512(e + ((j + 2) * kStepsPerBlock + k) * kPanelStepBytes + v * kVectorBytes);
          // Levels are below 16, so shifting 16-bit lanes moves no bit into the next byte.
          _mm512_storeu_si512(c + (p * kStepsPerBlock + k) * kPanelStepBytes + v * kVectorBytes,
                              _mm512_or_si512(low, _mm512_slli_epi16(high, 4)));
        }
        const __m512i pairs = _mm512_loadu_si512(e + kQ4ExpandedMinsOffset + p * kPanelStepBytes + v * kVectorBytes);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + kQ4PanelMinsOffset + p * 2 * kPanelRows + v * 2 * kLanes),
                            _mm512_cvtepi16_epi8(pairs));
      }
      for (uint32_t j = 0; j < kSubBlocks; ++j) {
        const __m512i scales = _mm512_loadu_si512(e + kQ4ExpandedScalesOffset + j * kPanelStepBytes + v * kVectorBytes);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(c + kQ4PanelScalesOffset + j * kPanelRows + v * kLanes),
                         _mm512_cvtepi32_epi8(scales));
      }
      std::memcpy(c + kQ4PanelScaleStepOffset + v * kVectorBytes, e + kQ4ExpandedStepsOffset + v * kVectorBytes,
                  kVectorBytes);
      std::memcpy(c + kQ4PanelMinStepOffset + v * kVectorBytes,
                  e + kQ4ExpandedStepsOffset + kPanelStepBytes + v * kVectorBytes, kVectorBytes);
    }
  }
}

void expand_q4_panel(const std::byte* compact, uint32_t n_super_blocks, std::byte* expanded) {
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  for (uint32_t s = 0; s < n_super_blocks; ++s) {
    const std::byte* c = compact + size_t(s) * kQ4PanelRecordBytes;
    std::byte* e = expanded + size_t(s) * kQ4ExpandedRecordBytes;
    for (uint32_t v = 0; v < kRowVectors; ++v) {
      for (uint32_t p = 0; p < kSubBlocks / 2; ++p) {
        const uint32_t j = q4_s_pair_low(p);
        for (uint32_t k = 0; k < kStepsPerBlock; ++k) {
          const __m512i n = _mm512_loadu_si512(c + (p * kStepsPerBlock + k) * kPanelStepBytes + v * kVectorBytes);
          _mm512_storeu_si512(e + (j * kStepsPerBlock + k) * kPanelStepBytes + v * kVectorBytes,
                              _mm512_and_si512(n, low_nibbles));
          _mm512_storeu_si512(e + ((j + 2) * kStepsPerBlock + k) * kPanelStepBytes + v * kVectorBytes,
                              _mm512_and_si512(_mm512_srli_epi16(n, 4), low_nibbles));
        }
        const __m256i mins = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(c + kQ4PanelMinsOffset + p * 2 * kPanelRows + v * 2 * kLanes));
        _mm512_storeu_si512(e + kQ4ExpandedMinsOffset + p * kPanelStepBytes + v * kVectorBytes,
                            _mm512_cvtepi8_epi16(mins));
      }
      for (uint32_t j = 0; j < kSubBlocks; ++j) {
        const __m128i scales =
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + kQ4PanelScalesOffset + j * kPanelRows + v * kLanes));
        _mm512_storeu_si512(e + kQ4ExpandedScalesOffset + j * kPanelStepBytes + v * kVectorBytes,
                            _mm512_cvtepu8_epi32(scales));
      }
      std::memcpy(e + kQ4ExpandedStepsOffset + v * kVectorBytes, c + kQ4PanelScaleStepOffset + v * kVectorBytes,
                  kVectorBytes);
      std::memcpy(e + kQ4ExpandedStepsOffset + kPanelStepBytes + v * kVectorBytes,
                  c + kQ4PanelMinStepOffset + v * kVectorBytes, kVectorBytes);
    }
  }
}

// Where a tile's results go: token t's 32 outputs at y + t * stride, the lanes of each
// row vector that are inside the row range.
struct TileOutput {
  float* y;
  size_t stride;
  __mmask16 masks[kRowVectors];
  bool squared_relu;
};

// The next panel's weights, streamed into L2 while a tile multiplies: a few cache lines
// after each group, so that the loads from memory overlap the dot products instead of
// arriving in a burst (more than the core's outstanding misses) or stalling the packing.
struct PanelPrefetch {
  const std::byte* next = nullptr;
  size_t lines = 0;  // this tile's share, from `next`
  uint32_t lines_per_group = 0;

  void after_group(uint32_t group) const {
    const size_t first = size_t(group) * lines_per_group;
    for (size_t line = first; line < std::min(lines, first + lines_per_group); ++line) {
      _mm_prefetch(reinterpret_cast<const char*>(next + line * kCacheLine), _MM_HINT_T1);
    }
  }
};

template <uint32_t kTokens>
void store_tile(const TileOutput& out, const __m512 (&acc)[kRowVectors][kTokens]) {
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (uint32_t t = 0; t < kTokens; ++t) {
#pragma GCC unroll 2
    for (uint32_t v = 0; v < kRowVectors; ++v) {
      __m512 y = acc[v][t];
      if (out.squared_relu) {
        y = _mm512_max_ps(y, zero);
        y = _mm512_mul_ps(y, y);
      }
      _mm512_mask_storeu_ps(out.y + t * out.stride + v * kLanes, out.masks[v], y);
    }
  }
}

// The 32 panel rows × kTokens tokens of one tile over all blocks.
// dot[v][t] += the vpdpbusd products of one 32-value block (kStepsPerBlock steps of 4
// columns): row vector v's weights from the panel record at `weights`, token t's bytes
// from the tile record at `tokens`.
template <uint32_t kTokens>
[[gnu::always_inline]] inline void accumulate_block(__m512i (&dot)[kRowVectors][kTokens], const std::byte* weights,
                                                    const std::byte* tokens) {
#pragma GCC unroll 8
  for (uint32_t k = 0; k < kStepsPerBlock; ++k) {
    const __m512i w0 = _mm512_loadu_si512(weights + k * kPanelStepBytes);
    const __m512i w1 = _mm512_loadu_si512(weights + k * kPanelStepBytes + kVectorBytes);
#pragma GCC unroll 8
    for (uint32_t t = 0; t < kTokens; ++t) {
      const __m512i x = _mm512_set1_epi32(load_int32(tokens + k * kTileStepBytes + 4 * t));
      dot[0][t] = _mm512_dpbusd_epi32(dot[0][t], w0, x);
      dot[1][t] = _mm512_dpbusd_epi32(dot[1][t], w1, x);
    }
  }
}

// A row vector's 16 weight scales, stored as halves by pack_panel_q8_0.
__m512 load_half_scales(const std::byte* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

template <uint32_t kTokens>
void multiply_tile_q8_0(const std::byte* panel, const std::byte* tile, uint32_t n_blocks, const TileOutput& out,
                        const PanelPrefetch& prefetch) {
  __m512 acc[kRowVectors][kTokens];
#pragma GCC unroll 8
  for (uint32_t t = 0; t < kTokens; ++t) acc[0][t] = acc[1][t] = _mm512_setzero_ps();
  for (uint32_t b = 0; b < n_blocks; ++b) {
    const std::byte* weights = panel + size_t(b) * kQ8PanelRecordBytes;
    const std::byte* tokens = tile + size_t(b) * kQ8TokenRecordBytes;
    __m512i dot[kRowVectors][kTokens];
#pragma GCC unroll 8
    for (uint32_t t = 0; t < kTokens; ++t) {
      dot[0][t] = dot[1][t] = _mm512_set1_epi32(load_int32(tokens + kQ8TokenQuantBytes + 4 * t));
    }
    accumulate_block<kTokens>(dot, weights, tokens);
    const __m512 scales0 = load_half_scales(weights + kQ8PanelQuantBytes);
    const __m512 scales1 = load_half_scales(weights + kQ8PanelQuantBytes + kHalfScalesBytes);
#pragma GCC unroll 8
    for (uint32_t t = 0; t < kTokens; ++t) {
      const __m512 x_scale = _mm512_set1_ps(load_float(tokens + kQ8TokenQuantBytes + 4 * kTokenTile + 4 * t));
      acc[0][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot[0][t]), scales0), x_scale, acc[0][t]);
      acc[1][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot[1][t]), scales1), x_scale, acc[1][t]);
    }
    prefetch.after_group(b);
  }
  store_tile<kTokens>(out, acc);
}

template <uint32_t kTokens>
void multiply_tile_q4_s(const std::byte* panel, const std::byte* tile, uint32_t n_super_blocks,
                        const TileOutput& out, const PanelPrefetch& prefetch) {
  // The float sums live in memory: registers hold the 24 integer accumulators, and
  // these are touched once per 256 columns.
  alignas(64) float sums[kRowVectors][kTokens][kLanes] = {};
  for (uint32_t s = 0; s < n_super_blocks; ++s) {
    const std::byte* weights = panel + size_t(s) * kQ4ExpandedRecordBytes;
    const std::byte* tokens = tile + size_t(s) * kQ4TokenRecordBytes;
    // sum_j scales[j] × (levels · quants of sub-block j), exact in int32.
    __m512i scaled[kRowVectors][kTokens];
#pragma GCC unroll 8
    for (uint32_t t = 0; t < kTokens; ++t) scaled[0][t] = scaled[1][t] = _mm512_setzero_si512();
    for (uint32_t j = 0; j < kSubBlocks; ++j) {
      const std::byte* levels = weights + j * kStepsPerBlock * kPanelStepBytes;
      const std::byte* quants = tokens + j * kStepsPerBlock * kTileStepBytes;
      __m512i dot[kRowVectors][kTokens];
#pragma GCC unroll 8
      for (uint32_t t = 0; t < kTokens; ++t) dot[0][t] = dot[1][t] = _mm512_setzero_si512();
      accumulate_block<kTokens>(dot, levels, quants);
      const __m512i scale0 = _mm512_loadu_si512(weights + kQ4ExpandedScalesOffset + j * kPanelStepBytes);
      const __m512i scale1 = _mm512_loadu_si512(weights + kQ4ExpandedScalesOffset + j * kPanelStepBytes + kVectorBytes);
#pragma GCC unroll 8
      for (uint32_t t = 0; t < kTokens; ++t) {
        scaled[0][t] = _mm512_add_epi32(scaled[0][t], _mm512_mullo_epi32(dot[0][t], scale0));
        scaled[1][t] = _mm512_add_epi32(scaled[1][t], _mm512_mullo_epi32(dot[1][t], scale1));
      }
    }
    // sum_j mins[j] × block_sum[j], four int16 pairs.
    __m512i minimums[kRowVectors][kTokens];
#pragma GCC unroll 8
    for (uint32_t t = 0; t < kTokens; ++t) minimums[0][t] = minimums[1][t] = _mm512_setzero_si512();
    const std::byte* pairs = tokens + kQ4TokenQuantBytes + 4 * kTokenTile;
#pragma GCC unroll 4
    for (uint32_t p = 0; p < kSubBlocks / 2; ++p) {
      const __m512i mins0 = _mm512_loadu_si512(weights + kQ4ExpandedMinsOffset + p * kPanelStepBytes);
      const __m512i mins1 = _mm512_loadu_si512(weights + kQ4ExpandedMinsOffset + p * kPanelStepBytes + kVectorBytes);
#pragma GCC unroll 8
      for (uint32_t t = 0; t < kTokens; ++t) {
        const __m512i block_sums = _mm512_set1_epi32(load_int32(pairs + (p * kTokenTile + t) * 4));
        minimums[0][t] = _mm512_dpwssd_epi32(minimums[0][t], mins0, block_sums);
        minimums[1][t] = _mm512_dpwssd_epi32(minimums[1][t], mins1, block_sums);
      }
    }
#pragma GCC unroll 2
    for (uint32_t v = 0; v < kRowVectors; ++v) {
      const __m512 scale_step = _mm512_loadu_ps(weights + kQ4ExpandedStepsOffset + v * kVectorBytes);
      const __m512 min_step = _mm512_loadu_ps(weights + kQ4ExpandedStepsOffset + kPanelStepBytes + v * kVectorBytes);
#pragma GCC unroll 8
      for (uint32_t t = 0; t < kTokens; ++t) {
        const __m512 x_scale = _mm512_set1_ps(load_float(tokens + kQ4TokenQuantBytes + 4 * t));
        const __m512 block = _mm512_fmadd_ps(_mm512_cvtepi32_ps(scaled[v][t]), scale_step,
                                             _mm512_mul_ps(_mm512_cvtepi32_ps(minimums[v][t]), min_step));
        _mm512_store_ps(sums[v][t], _mm512_fmadd_ps(block, x_scale, _mm512_load_ps(sums[v][t])));
      }
    }
    prefetch.after_group(s);
  }
  __m512 acc[kRowVectors][kTokens];
#pragma GCC unroll 8
  for (uint32_t t = 0; t < kTokens; ++t) {
    acc[0][t] = _mm512_load_ps(sums[0][t]);
    acc[1][t] = _mm512_load_ps(sums[1][t]);
  }
  store_tile<kTokens>(out, acc);
}

using TileKernel = void (*)(const std::byte* panel, const std::byte* tile, uint32_t n_groups, const TileOutput& out,
                            const PanelPrefetch& prefetch);

template <uint32_t kTokens>
struct Q8Tile {
  static void run(const std::byte* panel, const std::byte* tile, uint32_t n_groups, const TileOutput& out,
                  const PanelPrefetch& prefetch) {
    multiply_tile_q8_0<kTokens>(panel, tile, n_groups, out, prefetch);
  }
};
template <uint32_t kTokens>
struct Q4Tile {
  static void run(const std::byte* panel, const std::byte* tile, uint32_t n_groups, const TileOutput& out,
                  const PanelPrefetch& prefetch) {
    multiply_tile_q4_s<kTokens>(panel, tile, n_groups, out, prefetch);
  }
};

// The kernel for a tile of n_tokens (1..kTokenTile) tokens: the last tile of a product
// computes only the tokens it has.
template <template <uint32_t> class Kernel>
TileKernel tile_kernel(uint32_t n_tokens) {
  static_assert(kTokenTile == 6);
  switch (n_tokens) {
    case 1: return Kernel<1>::run;
    case 2: return Kernel<2>::run;
    case 3: return Kernel<3>::run;
    case 4: return Kernel<4>::run;
    case 5: return Kernel<5>::run;
    default: return Kernel<6>::run;
  }
}

}  // namespace

size_t int8_tokens_bytes(DType type, uint32_t n_tokens, uint32_t cols) {
#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
  if (type == DType::Q8_0) return amx_q8_0_tokens_bytes(n_tokens, cols);
#endif
  const size_t n_tiles = (size_t(n_tokens) + kTokenTile - 1) / kTokenTile;
  return n_tiles * token_layout(type, cols).tile_bytes;
}

void pack_int8_tokens(DType type, const float* X, uint32_t n_tokens, uint32_t cols, uint32_t token_begin,
                      uint32_t token_end, std::byte* packed) {
#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
  if (type == DType::Q8_0) {
    pack_amx_q8_0_tokens(X, n_tokens, cols, token_begin, token_end, packed);
    return;
  }
#endif
  const TokenLayout layout = token_layout(type, cols);
  for (uint32_t t = token_begin; t < token_end; ++t) {
    pack_token(type, X + size_t(t) * cols, cols, layout, packed + size_t(t / kTokenTile) * layout.tile_bytes,
               t % kTokenTile);
  }
  if (token_end == n_tokens) {
    const uint32_t padded = (n_tokens + kTokenTile - 1) / kTokenTile * kTokenTile;
    for (uint32_t t = n_tokens; t < padded; ++t) {
      pack_token(type, nullptr, cols, layout, packed + size_t(t / kTokenTile) * layout.tile_bytes, t % kTokenTile);
    }
  }
}

void matmat_rows_int8(const MatrixRef& w, const std::byte* packed, uint32_t n_tokens, float* Y, uint32_t row_begin,
                      uint32_t row_end, bool squared_relu) {
#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
  if (w.dtype == DType::Q8_0 && w.layout == WeightLayout::Rows) {
    matmat_rows_amx_q8_0(w, packed, n_tokens, Y, row_begin, row_end, squared_relu);
    return;
  }
#endif
  const bool q4 = w.dtype == DType::Q4_S;
  const TokenLayout layout = token_layout(w.dtype, w.cols);
  const size_t panel_bytes = size_t(layout.n_groups) * (q4 ? kQ4ExpandedRecordBytes : kQ8PanelRecordBytes);
  // Weights stored as panels are multiplied where they are; others are packed a panel at
  // a time into scratch memory.
  const bool stored_as_panels = w.layout == WeightLayout::Int8Panels;
  if (stored_as_panels && row_begin % kPanelRows != 0) {
    throw std::logic_error("rwkv: int8 panels are multiplied from a panel's first row");
  }
  const size_t stored_panel_bytes = int8_panel_bytes(w.dtype, w.cols);
  const auto* panels = static_cast<const std::byte*>(w.data);
  auto* panel = stored_as_panels && !q4 ? nullptr
                                        : static_cast<std::byte*>(thread_scratch(ScratchSlot::Panel, panel_bytes));
  const TileKernel full_tile = q4 ? tile_kernel<Q4Tile>(kTokenTile) : tile_kernel<Q8Tile>(kTokenTile);
  const uint32_t last_tile_tokens = n_tokens % kTokenTile == 0 ? kTokenTile : n_tokens % kTokenTile;
  const TileKernel last_tile = q4 ? tile_kernel<Q4Tile>(last_tile_tokens) : tile_kernel<Q8Tile>(last_tile_tokens);
  const uint32_t n_tiles = (n_tokens + kTokenTile - 1) / kTokenTile;
  const size_t row_bytes = size_t(layout.n_groups) * (q4 ? sizeof(BlockQ4_S) : sizeof(BlockQ8_0));
  for (uint32_t first_row = row_begin; first_row < row_end; first_row += kPanelRows) {
    const std::byte* weights = panel;
    const std::byte* stored = panels + size_t(first_row / kPanelRows) * stored_panel_bytes;
    if (stored_as_panels && q4) {
      expand_q4_panel(stored, layout.n_groups, panel);
    } else if (stored_as_panels) {
      weights = stored;
    } else if (q4) {
      pack_panel_q4_s(w, first_row, layout.n_groups, panel);
    } else {
      pack_panel_q8_0(w, first_row, layout.n_groups, panel);
    }
    const uint32_t rows_here = std::min(kPanelRows, row_end - first_row);
    TileOutput out;
    out.stride = w.rows;
    out.masks[0] = first_lanes(rows_here);
    out.masks[1] = first_lanes(rows_here > kLanes ? rows_here - kLanes : 0);
    out.squared_relu = squared_relu;
    // The next panel's rows (contiguous in W), or the next stored panel, stream into L2
    // while this one is multiplied, a share per tile, spread over its groups (PanelPrefetch).
    const uint32_t next_row = first_row + kPanelRows;
    const size_t next_rows_bytes = stored_as_panels ? stored_panel_bytes : size_t(kPanelRows) * row_bytes;
    const size_t next_bytes =
        next_row < row_end ? next_rows_bytes * std::min(kPanelRows, row_end - next_row) / kPanelRows : 0;
    const size_t next_lines = (next_bytes + kCacheLine - 1) / kCacheLine;
    const size_t lines_per_tile = next_lines / n_tiles + 1;
    for (uint32_t tile = 0; tile < n_tiles; ++tile) {
      PanelPrefetch prefetch;
      const size_t first_line = tile * lines_per_tile;
      prefetch.next = (stored_as_panels ? stored + stored_panel_bytes : panels + size_t(next_row) * row_bytes) +
                      first_line * kCacheLine;
      prefetch.lines = first_line < next_lines ? std::min(lines_per_tile, next_lines - first_line) : 0;
      prefetch.lines_per_group = uint32_t((prefetch.lines + layout.n_groups - 1) / layout.n_groups);
      out.y = Y + size_t(tile) * kTokenTile * w.rows + first_row;
      const TileKernel kernel = tile + 1 == n_tiles ? last_tile : full_tile;
      kernel(weights, packed + size_t(tile) * layout.tile_bytes, layout.n_groups, out, prefetch);
    }
  }
}

uint32_t int8_row_granule() { return kPanelRows; }

uint32_t int8_token_tile(DType type) {
#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
  if (type == DType::Q8_0) return kAmxQ8TokenTile;
#endif
  (void)type;
  return kTokenTile;
}

void pack_int8_panels(const MatrixRef& w, uint32_t panel_begin, uint32_t panel_end, std::byte* out) {
  const TokenLayout layout = token_layout(w.dtype, w.cols);
  std::byte* expanded = nullptr;
  if (w.dtype == DType::Q4_S) {
    expanded = static_cast<std::byte*>(
        thread_scratch(ScratchSlot::Panel, size_t(layout.n_groups) * kQ4ExpandedRecordBytes));
  }
  for (uint32_t p = panel_begin; p < panel_end; ++p) {
    std::byte* stored = out + size_t(p) * int8_panel_bytes(w.dtype, w.cols);
    if (w.dtype == DType::Q4_S) {
      pack_panel_q4_s(w, p * kPanelRows, layout.n_groups, expanded);
      compact_q4_panel(expanded, layout.n_groups, stored);
    } else {
      pack_panel_q8_0(w, p * kPanelRows, layout.n_groups, stored);
    }
  }
}

namespace {

void matvec_panels_q8_0(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin, uint32_t row_end) {
  const size_t panel_bytes = int8_panel_bytes(w.dtype, w.cols);
  const auto* quants = reinterpret_cast<const std::byte*>(x.quants.data());
  for (uint32_t first_row = row_begin; first_row < row_end; first_row += kPanelRows) {
    const std::byte* record = static_cast<const std::byte*>(w.data) + size_t(first_row / kPanelRows) * panel_bytes;
    __m512 acc[kRowVectors] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (uint32_t b = 0; b < x.n_groups; ++b, record += kQ8PanelRecordBytes) {
      // The panels are one stream, prefetched as the rows are (row_dots.hpp says why).
      prefetch_bytes(record + kPrefetchBytesAhead, kQ8PanelRecordBytes);
      // The tile's arithmetic for one token (multiply_tile_q8_0), so that a token gets
      // the same bits alone and in any batch: the integer sums are exact in any order,
      // and here they run as two chains per row vector (even and odd steps), which
      // a single token needs to keep the multiply-adds busy.
      const std::byte* x_block = quants + size_t(b) * kQuantBlockValues;
      __m512i even[kRowVectors], odd[kRowVectors];
      even[0] = even[1] = _mm512_set1_epi32(-128 * int32_t(x.block_sums[b]));
      odd[0] = odd[1] = _mm512_setzero_si512();
#pragma GCC unroll 4
      for (uint32_t k = 0; k < kStepsPerBlock; k += 2) {
        const __m512i x_even = _mm512_set1_epi32(load_int32(x_block + 4 * k));
        const __m512i x_odd = _mm512_set1_epi32(load_int32(x_block + 4 * k + 4));
#pragma GCC unroll 2
        for (uint32_t v = 0; v < kRowVectors; ++v) {
          even[v] = _mm512_dpbusd_epi32(even[v], _mm512_loadu_si512(record + k * kPanelStepBytes + v * kVectorBytes),
                                        x_even);
          odd[v] = _mm512_dpbusd_epi32(
              odd[v], _mm512_loadu_si512(record + (k + 1) * kPanelStepBytes + v * kVectorBytes), x_odd);
        }
      }
      const __m512 x_scale = _mm512_set1_ps(x.scales[b]);
#pragma GCC unroll 2
      for (uint32_t v = 0; v < kRowVectors; ++v) {
        const __m512 scales = load_half_scales(record + kQ8PanelQuantBytes + v * kHalfScalesBytes);
        const __m512 dot = _mm512_cvtepi32_ps(_mm512_add_epi32(even[v], odd[v]));
        acc[v] = _mm512_fmadd_ps(_mm512_mul_ps(dot, scales), x_scale, acc[v]);
      }
    }
    const uint32_t rows_here = std::min(kPanelRows, row_end - first_row);
    _mm512_mask_storeu_ps(y + first_row, first_lanes(rows_here), acc[0]);
    _mm512_mask_storeu_ps(y + first_row + kLanes, first_lanes(rows_here > kLanes ? rows_here - kLanes : 0), acc[1]);
  }
}


// The same for q4_s, from the stored panels' nibbles and byte scales as they are, with the
// tile's arithmetic for one token (multiply_tile_q4_s): integer sums (exact in any
// order: here the two sub-blocks of each nibble pair together) and the same float steps.
void matvec_panels_q4_s(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin, uint32_t row_end) {
  const size_t panel_bytes = int8_panel_bytes(w.dtype, w.cols);
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  for (uint32_t first_row = row_begin; first_row < row_end; first_row += kPanelRows) {
    const std::byte* record = static_cast<const std::byte*>(w.data) + size_t(first_row / kPanelRows) * panel_bytes;
    __m512 sums[kRowVectors] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (uint32_t s = 0; s < x.n_groups; ++s, record += kQ4PanelRecordBytes) {
      const auto* quants = reinterpret_cast<const std::byte*>(x.quants.data()) + size_t(s) * kSuperBlockValues;
      const int16_t* block_sums = x.block_sums.data() + size_t(s) * kSubBlocks;
      __m512i scaled[kRowVectors] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
      __m512i minimums[kRowVectors] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
      for (uint32_t p = 0; p < kSubBlocks / 2; ++p) {
        // A quarter of a record's length, kPrefetchBytesAhead ahead (one stream, as for q8_0).
        constexpr uint32_t kQuarter = kQ4PanelRecordBytes / 4;
        prefetch_bytes(record + kPrefetchBytesAhead + p * kQuarter, kQuarter);
        const uint32_t j = q4_s_pair_low(p);
        __m512i low[kRowVectors] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        __m512i high[kRowVectors] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 8
        for (uint32_t k = 0; k < kStepsPerBlock; ++k) {
          const __m512i x_low = _mm512_set1_epi32(load_int32(quants + j * kQuantBlockValues + 4 * k));
          const __m512i x_high = _mm512_set1_epi32(load_int32(quants + (j + 2) * kQuantBlockValues + 4 * k));
#pragma GCC unroll 2
          for (uint32_t v = 0; v < kRowVectors; ++v) {
            const __m512i n =
                _mm512_loadu_si512(record + (p * kStepsPerBlock + k) * kPanelStepBytes + v * kVectorBytes);
            low[v] = _mm512_dpbusd_epi32(low[v], _mm512_and_si512(n, low_nibbles), x_low);
            high[v] = _mm512_dpbusd_epi32(high[v], _mm512_and_si512(_mm512_srli_epi16(n, 4), low_nibbles), x_high);
          }
        }
        const uint32_t pair = (uint32_t(block_sums[j]) & 0xffffu) | (uint32_t(block_sums[j + 2]) << 16);
        const __m512i x_pair = _mm512_set1_epi32(int32_t(pair));
#pragma GCC unroll 2
        for (uint32_t v = 0; v < kRowVectors; ++v) {
          const auto scales_of = [&](uint32_t sub_block) {
            return _mm512_cvtepu8_epi32(_mm_loadu_si128(
                reinterpret_cast<const __m128i*>(record + kQ4PanelScalesOffset + sub_block * kPanelRows + v * kLanes)));
          };
          scaled[v] = _mm512_add_epi32(scaled[v], _mm512_add_epi32(_mm512_mullo_epi32(low[v], scales_of(j)),
                                                                   _mm512_mullo_epi32(high[v], scales_of(j + 2))));
          const __m512i mins = _mm512_cvtepi8_epi16(_mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(record + kQ4PanelMinsOffset + p * 2 * kPanelRows + v * 2 * kLanes)));
          minimums[v] = _mm512_dpwssd_epi32(minimums[v], mins, x_pair);
        }
      }
      const __m512 x_scale = _mm512_set1_ps(x.scales[s]);
#pragma GCC unroll 2
      for (uint32_t v = 0; v < kRowVectors; ++v) {
        const __m512 scale_step = _mm512_loadu_ps(record + kQ4PanelScaleStepOffset + v * kVectorBytes);
        const __m512 min_step = _mm512_loadu_ps(record + kQ4PanelMinStepOffset + v * kVectorBytes);
        const __m512 block = _mm512_fmadd_ps(_mm512_cvtepi32_ps(scaled[v]), scale_step,
                                             _mm512_mul_ps(_mm512_cvtepi32_ps(minimums[v]), min_step));
        sums[v] = _mm512_fmadd_ps(block, x_scale, sums[v]);
      }
    }
    const uint32_t rows_here = std::min(kPanelRows, row_end - first_row);
    _mm512_mask_storeu_ps(y + first_row, first_lanes(rows_here), sums[0]);
    _mm512_mask_storeu_ps(y + first_row + kLanes, first_lanes(rows_here > kLanes ? rows_here - kLanes : 0), sums[1]);
  }
}

}  // namespace

void matvec_rows_int8_panels(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t row_begin,
                             uint32_t row_end) {
  if (w.layout != WeightLayout::Int8Panels || row_begin % kPanelRows != 0) {
    throw std::logic_error("rwkv: int8 panels are multiplied from a panel's first row");
  }
  if (w.dtype == DType::Q4_S) {
    matvec_panels_q4_s(w, x, y, row_begin, row_end);
  } else {
    matvec_panels_q8_0(w, x, y, row_begin, row_end);
  }
}

}  // namespace rwkv::RWKV_KERNEL_NS

#endif
