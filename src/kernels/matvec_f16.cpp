#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/row_dots.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

struct Binary16 {
  static float widen(uint16_t h) { return fp16_to_fp32(h); }
#ifdef RWKV_HAVE_AVX2
  static __m256 widen8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
#endif
#ifdef RWKV_HAVE_AVX512
  static __m512 widen16(__m256i halves) { return _mm512_cvtph_ps(halves); }
#endif
};

}  // namespace

void matvec_rows_f16(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end) {
  dot_each_row<uint16_t>(w, w.cols, x, y, row_begin, row_end,
                         [&](const uint16_t* row, const float* v) { return dot_half_f32<Binary16>(row, v, w.cols); });
}

void matmat_rows_f16_tokens(const MatrixRef& w, const float* const* x, uint32_t n_tokens, float* Y,
                         uint32_t row_begin, uint32_t row_end) {
  dot_each_row_tokens<uint16_t>(w, w.cols, x, n_tokens, Y, row_begin, row_end,
                            [&](const uint16_t* row, const float* v) { return dot_half_f32<Binary16>(row, v, w.cols); });
}

}  // namespace rwkv::RWKV_KERNEL_NS
