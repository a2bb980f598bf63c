#include <cstring>

#include "kernels/half.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/matvec_rows.hpp"

namespace rwkv {

namespace {

template <typename Block, typename DecodeBlock>
void dequantize_blocked_rows(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, float* out,
                             DecodeBlock decode) {
  const uint32_t blocks_per_row = (w.cols + kQuantBlockValues - 1) / kQuantBlockValues;
  const auto* blocks = static_cast<const Block*>(w.data) + size_t(row_begin) * blocks_per_row;
  float values[kQuantBlockValues];
  for (uint32_t r = row_begin; r < row_end; ++r) {
    for (uint32_t c = 0; c < w.cols; c += kQuantBlockValues) {
      decode(*blocks++, values);
      const uint32_t n = std::min(kQuantBlockValues, w.cols - c);
      std::memcpy(out, values, n * sizeof(float));
      out += n;
    }
  }
}

void decode_q8_0(const BlockQ8_0& block, float* out) {
  const float scale = fp16_to_fp32(block.scale);
  for (uint32_t i = 0; i < kQuantBlockValues; ++i) out[i] = scale * block.quants[i];
}

void decode_q4_1m(const BlockQ4_1M& block, float* out) {
  const float scale = fp16_to_fp32(block.scale);
  const float min = fp16_to_fp32(block.min);
  constexpr uint32_t kHalf = kQuantBlockValues / 2;
  for (uint32_t j = 0; j < kHalf; ++j) {
    out[j] = scale * static_cast<float>(block.nibbles[j] & 0x0f) + min;
    out[j + kHalf] = scale * static_cast<float>(block.nibbles[j] >> 4) + min;
  }
}

template <float (*Widen)(uint16_t)>
void widen_halves(const MatrixRef& w, size_t first, size_t n, float* out) {
  const uint16_t* src = static_cast<const uint16_t*>(w.data) + first;
  for (size_t i = 0; i < n; ++i) out[i] = Widen(src[i]);
}

}  // namespace

void dequantize_rows(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, float* out) {
  const size_t n = size_t(row_end - row_begin) * w.cols;
  const size_t first = size_t(row_begin) * w.cols;
  switch (w.dtype) {
    case DType::F32: std::memcpy(out, static_cast<const float*>(w.data) + first, n * sizeof(float)); return;
    case DType::F16: widen_halves<fp16_to_fp32>(w, first, n, out); return;
    case DType::BF16: widen_halves<bf16_to_fp32>(w, first, n, out); return;
    case DType::Q8_0: dequantize_blocked_rows<BlockQ8_0>(w, row_begin, row_end, out, decode_q8_0); return;
    case DType::Q4_1M: dequantize_blocked_rows<BlockQ4_1M>(w, row_begin, row_end, out, decode_q4_1m); return;
  }
}

}  // namespace rwkv
