#include <algorithm>
#include <cstring>

#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/quant_blocks.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

// Columns [col_begin, col_end) of rows [row_begin, row_end), decoding each block they
// touch (col_begin need not fall on a block boundary).
template <typename Block, uint32_t values_per_block, typename DecodeBlock>
void dequantize_blocked(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, uint32_t col_begin,
                        uint32_t col_end, float* out, DecodeBlock decode) {
  const uint32_t blocks_per_row = (w.cols + values_per_block - 1) / values_per_block;
  float values[values_per_block];
  for (uint32_t r = row_begin; r < row_end; ++r) {
    const Block* blocks = static_cast<const Block*>(w.data) + size_t(r) * blocks_per_row;
    for (uint32_t c = col_begin; c < col_end;) {
      if (c % values_per_block == 0 && c + values_per_block <= col_end) {  // a whole block: straight to out
        decode(blocks[c / values_per_block], out);
        out += values_per_block;
        c += values_per_block;
        continue;
      }
      decode(blocks[c / values_per_block], values);
      const uint32_t first = c % values_per_block;
      const uint32_t n = std::min(values_per_block - first, col_end - c);
      std::memcpy(out, values + first, n * sizeof(float));
      out += n;
      c += n;
    }
  }
}

void decode_q8_0(const BlockQ8_0& block, float* out) {
  const float scale = fp16_to_fp32(block.scale);
#ifdef RWKV_HAVE_AVX2
  const __m256 scale8 = _mm256_set1_ps(scale);
  for (uint32_t i = 0; i < kQuantBlockValues; i += 8) {
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block.quants + i));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(scale8, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
  }
#else
  for (uint32_t i = 0; i < kQuantBlockValues; ++i) out[i] = scale * block.quants[i];
#endif
}

void decode_q4_s(const BlockQ4_S& block, float* out) {
  for (uint32_t j = 0; j < kSubBlocks; ++j) {
    const float scale = block.scale_step * float(block.scales[j]);
    const float min = block.min_step * float(block.mins[j]);
    const uint8_t* bytes = block.nibbles + q4_s_first_byte(j);
    const int shift = q4_s_shift(j);
    float* values = out + j * kQuantBlockValues;
#ifdef RWKV_HAVE_AVX2
    // Sequence mode widens every weight once per pass: eight levels a step.
    const __m256 scale8 = _mm256_set1_ps(scale), min8 = _mm256_set1_ps(min);
    for (uint32_t i = 0; i < kQuantBlockValues; i += 8) {
      const __m128i packed = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes + i));
      const __m128i levels = _mm_and_si128(_mm_srli_epi16(packed, shift), _mm_set1_epi8(0x0f));
      const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(levels));
      _mm256_storeu_ps(values + i, _mm256_fmadd_ps(scale8, q, min8));
    }
#else
    for (uint32_t i = 0; i < kQuantBlockValues; ++i) {
      values[i] = scale * static_cast<float>((bytes[i] >> shift) & 0x0f) + min;
    }
#endif
  }
}

// Row i's block from a q8_0 or q4_s panel record (quant_blocks.hpp), rebuilt byte by
// byte, so that int8 panels decode with the rows' own decoders, bit for bit: for the
// rare reader of such a matrix's values (the kernels multiply the panels as they are).
BlockQ8_0 q8_0_block_of_panel(const uint8_t* record, uint32_t i) {
  BlockQ8_0 block;
  std::memcpy(&block.scale, record + kInt8PanelRows * kQuantBlockValues + 2 * i, sizeof(block.scale));
  for (uint32_t c = 0; c < kQuantBlockValues; ++c) {
    block.quants[c] = int8_t(record[(c / 4) * 4 * kInt8PanelRows + 4 * i + c % 4] ^ 0x80);  // stored as w + 128
  }
  return block;
}

BlockQ4_S q4_s_block_of_panel(const uint8_t* record, uint32_t i) {
  BlockQ4_S block;
  std::memcpy(&block.scale_step, record + kQ4PanelScaleStepOffset + 4 * i, 4);
  std::memcpy(&block.min_step, record + kQ4PanelMinStepOffset + 4 * i, 4);
  for (uint32_t p = 0; p < kSubBlocks / 2; ++p) {
    const uint32_t j = q4_s_pair_low(p);
    block.mins[j] = int8_t(record[kQ4PanelMinsOffset + p * 2 * kInt8PanelRows + 2 * i]);
    block.mins[j + 2] = int8_t(record[kQ4PanelMinsOffset + p * 2 * kInt8PanelRows + 2 * i + 1]);
    // A row pairs the same sub-blocks in the low and high nibbles of one byte.
    for (uint32_t c = 0; c < kQuantBlockValues; ++c) {
      block.nibbles[q4_s_first_byte(j) + c] = record[(p * 8 + c / 4) * 4 * kInt8PanelRows + 4 * i + c % 4];
    }
  }
  for (uint32_t j = 0; j < kSubBlocks; ++j) block.scales[j] = record[kQ4PanelScalesOffset + j * kInt8PanelRows + i];
  return block;
}

template <typename Block, uint32_t values_per_block, typename DecodeBlock, typename BlockOf>
void dequantize_panels(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, uint32_t col_begin,
                       uint32_t col_end, float* out, DecodeBlock decode, BlockOf block_of) {
  const size_t panel_bytes = int8_panel_bytes(w.dtype, w.cols);
  float values[values_per_block];
  for (uint32_t r = row_begin; r < row_end; ++r) {
    const auto* panel = static_cast<const uint8_t*>(w.data) + size_t(r / kInt8PanelRows) * panel_bytes;
    for (uint32_t c = col_begin; c < col_end;) {
      const uint32_t b = c / values_per_block;
      decode(block_of(panel + size_t(b) * kInt8PanelRows * sizeof(Block), r % kInt8PanelRows), values);
      const uint32_t first = c % values_per_block;
      const uint32_t n = std::min(values_per_block - first, col_end - c);
      std::memcpy(out, values + first, n * sizeof(float));
      out += n;
      c += n;
    }
  }
}

void widen_f16(const uint16_t* src, size_t n, float* out) {
  size_t i = 0;
#ifdef RWKV_HAVE_AVX512
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  }
#endif
#ifdef RWKV_HAVE_AVX2
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  }
#endif
  for (; i < n; ++i) out[i] = fp16_to_fp32(src[i]);
}

void widen_bf16(const uint16_t* src, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = bf16_to_fp32(src[i]);  // a shift: the compiler vectorizes it
}

}  // namespace

void dequantize_block(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, uint32_t col_begin, uint32_t col_end,
                      float* out) {
  if (w.layout == WeightLayout::Int8Panels && w.dtype == DType::Q8_0) {
    dequantize_panels<BlockQ8_0, kQuantBlockValues>(w, row_begin, row_end, col_begin, col_end, out, decode_q8_0,
                                                    q8_0_block_of_panel);
    return;
  }
  if (w.layout == WeightLayout::F16Panels) {
    const auto* panels = static_cast<const uint16_t*>(w.data);
    for (uint32_t r = row_begin; r < row_end; ++r) {
      const uint16_t* column = panels + (size_t(r / kF16PanelRows) * w.cols + col_begin) * kF16PanelRows;
      for (uint32_t c = col_begin; c < col_end; ++c, column += kF16PanelRows) {
        *out++ = fp16_to_fp32(column[r % kF16PanelRows]);
      }
    }
    return;
  }
  if (w.layout == WeightLayout::Int8Panels) {
    dequantize_panels<BlockQ4_S, kSuperBlockValues>(w, row_begin, row_end, col_begin, col_end, out, decode_q4_s,
                                                    q4_s_block_of_panel);
    return;
  }
  if (w.dtype == DType::Q8_0) {
    dequantize_blocked<BlockQ8_0, kQuantBlockValues>(w, row_begin, row_end, col_begin, col_end, out, decode_q8_0);
    return;
  }
  if (w.dtype == DType::Q4_S) {
    dequantize_blocked<BlockQ4_S, kSuperBlockValues>(w, row_begin, row_end, col_begin, col_end, out, decode_q4_s);
    return;
  }
  const uint32_t n = col_end - col_begin;
  for (uint32_t r = row_begin; r < row_end; ++r, out += n) {
    const size_t first = size_t(r) * w.cols + col_begin;
    if (w.dtype == DType::F32) std::memcpy(out, static_cast<const float*>(w.data) + first, n * sizeof(float));
    if (w.dtype == DType::F16) widen_f16(static_cast<const uint16_t*>(w.data) + first, n, out);
    if (w.dtype == DType::BF16) widen_bf16(static_cast<const uint16_t*>(w.data) + first, n, out);
  }
}

}  // namespace rwkv::RWKV_KERNEL_NS
