#include <cstring>

#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"

namespace rwkv {

void dequantize_rows(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, float* out) {
  const size_t n = size_t(row_end - row_begin) * w.cols;
  const size_t first = size_t(row_begin) * w.cols;
  switch (w.dtype) {
    case DType::F32: std::memcpy(out, static_cast<const float*>(w.data) + first, n * sizeof(float)); return;
    case DType::F16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + first;
      for (size_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(src[i]);
      return;
    }
  }
}

}  // namespace rwkv
