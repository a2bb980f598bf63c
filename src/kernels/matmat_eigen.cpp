#include <Eigen/Core>
#include <algorithm>

#include "kernels/matvec_rows.hpp"
#include "kernels/scratch.hpp"

// The portable sequence-mode products, for the level without AVX2 (matmat.cpp otherwise).
#ifndef RWKV_HAVE_AVX2

namespace rwkv::RWKV_KERNEL_NS {

namespace {
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}

void matmat_rows_f32(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens, uint32_t row_begin,
                     uint32_t row_end) {
  Eigen::Map<const RowMajor> m(static_cast<const float*>(w.data) + size_t(row_begin) * w.cols, row_end - row_begin,
                               w.cols);
  Eigen::Map<const RowMajor> x(X, n_tokens, w.cols);
  // Y is [n_tokens, rows]: this task writes columns [row_begin, row_end) of it.
  Eigen::Map<RowMajor, 0, Eigen::OuterStride<>> y(Y + row_begin, n_tokens, row_end - row_begin,
                                                   Eigen::OuterStride<>(w.rows));
  y.noalias() = x * m.transpose();
}

void matmat_rows_dequantized(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens, uint32_t row_begin,
                             uint32_t row_end) {
  // Widen a block of rows to float32 once, then multiply it with every token (GEMM):
  // the conversion is paid once per row for all tokens, and the GEMM is Eigen's.
  constexpr uint32_t kBlockRows = 64;
  float* block = static_cast<float*>(thread_scratch(ScratchSlot::Panel, size_t(kBlockRows) * w.cols * sizeof(float)));
  Eigen::Map<const RowMajor> x(X, n_tokens, w.cols);
  for (uint32_t r0 = row_begin; r0 < row_end; r0 += kBlockRows) {
    const uint32_t r1 = std::min(row_end, r0 + kBlockRows);
    dequantize_block(w, r0, r1, 0, w.cols, block);
    Eigen::Map<const RowMajor> m(block, r1 - r0, w.cols);
    Eigen::Map<RowMajor, 0, Eigen::OuterStride<>> y(Y + r0, n_tokens, r1 - r0, Eigen::OuterStride<>(w.rows));
    y.noalias() = x * m.transpose();
  }
}

}  // namespace rwkv::RWKV_KERNEL_NS

#endif  // RWKV_HAVE_AVX2
