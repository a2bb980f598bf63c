#include <algorithm>
#include <cstring>

#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/quant_blocks.hpp"

namespace rwkv {

namespace {

template <typename Block, typename DecodeBlock>
void dequantize_blocked(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, uint32_t col_begin,
                        uint32_t col_end, float* out, DecodeBlock decode) {
  const uint32_t blocks_per_row = (w.cols + kQuantBlockValues - 1) / kQuantBlockValues;
  float values[kQuantBlockValues];
  for (uint32_t r = row_begin; r < row_end; ++r) {
    const Block* blocks = static_cast<const Block*>(w.data) + size_t(r) * blocks_per_row;
    for (uint32_t c = col_begin; c < col_end; c += kQuantBlockValues) {
      decode(blocks[c / kQuantBlockValues], values);
      const uint32_t n = std::min(kQuantBlockValues, col_end - c);
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

void widen_f16(const uint16_t* src, size_t n, float* out) {
  size_t i = 0;
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
  if (w.dtype == DType::Q8_0) {
    dequantize_blocked<BlockQ8_0>(w, row_begin, row_end, col_begin, col_end, out, decode_q8_0);
    return;
  }
  if (w.dtype == DType::Q4_1M) {
    dequantize_blocked<BlockQ4_1M>(w, row_begin, row_end, col_begin, col_end, out, decode_q4_1m);
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

void dequantize_rows(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, float* out) {
  dequantize_block(w, row_begin, row_end, 0, w.cols, out);
}

}  // namespace rwkv
