#include <Eigen/Core>

#include "kernels/matvec_rows.hpp"

namespace rwkv {

namespace {
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}

void matvec_rows_f32(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end) {
  Eigen::Map<const RowMajor> m(static_cast<const float*>(w.data) + size_t(row_begin) * w.cols, row_end - row_begin,
                               w.cols);
  Eigen::Map<Eigen::VectorXf>(y + row_begin, row_end - row_begin).noalias() =
      m * Eigen::Map<const Eigen::VectorXf>(x, w.cols);
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

}  // namespace rwkv
