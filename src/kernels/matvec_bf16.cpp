#include "kernels/half.hpp"
#include "kernels/matvec_rows.hpp"
#include "kernels/row_dots.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

struct BFloat16 {
  static float widen(uint16_t h) { return bf16_to_fp32(h); }
#ifdef RWKV_HAVE_AVX2
  // bfloat16 is the top half of a float32: widening is a zero-extend and a shift.
  static __m256 widen8(const uint16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
#endif
#ifdef RWKV_HAVE_AVX512
  static __m512 widen16(__m256i halves) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
  }
#endif
};

}  // namespace

void matvec_rows_bf16(const MatrixRef& w, const float* x, float* y, uint32_t row_begin, uint32_t row_end) {
  dot_each_row<uint16_t>(w, w.cols, x, y, row_begin, row_end,
                         [&](const uint16_t* row, const float* v) { return dot_half_f32<BFloat16>(row, v, w.cols); });
}

void matmat_rows_bf16_tokens(const MatrixRef& w, const float* const* x, uint32_t n_tokens, float* Y,
                         uint32_t row_begin, uint32_t row_end) {
  dot_each_row_tokens<uint16_t>(w, w.cols, x, n_tokens, Y, row_begin, row_end,
                            [&](const uint16_t* row, const float* v) { return dot_half_f32<BFloat16>(row, v, w.cols); });
}

}  // namespace rwkv::RWKV_KERNEL_NS
