// A float matrix transposed with AVX: for the GEMMs that accumulate [row][token] and
// write Y's [token][row] (and pack tokens the other way round).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/simd.hpp"

#ifdef RWKV_HAVE_AVX2

namespace rwkv::RWKV_KERNEL_NS {

// dst[c * dst_stride + r] = src[r * src_stride + c] for r < rows, c < cols: whole 8×8
// tiles in registers, the edges one value at a time.
inline void transpose_floats(const float* src, size_t src_stride, float* dst, size_t dst_stride, uint32_t rows,
                             uint32_t cols) {
  uint32_t r0 = 0;
  for (; r0 + 8 <= rows; r0 += 8) {
    uint32_t c0 = 0;
    for (; c0 + 8 <= cols; c0 += 8) {
      __m256 v[8];
      for (uint32_t i = 0; i < 8; ++i) v[i] = _mm256_loadu_ps(src + (r0 + i) * src_stride + c0);
      __m256 u[8];
      for (uint32_t i = 0; i < 8; i += 2) {
        u[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
        u[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
      }
      __m256 q[8];
      for (uint32_t i = 0; i < 8; i += 4) {
        q[i] = _mm256_shuffle_ps(u[i], u[i + 2], 0x44);
        q[i + 1] = _mm256_shuffle_ps(u[i], u[i + 2], 0xee);
        q[i + 2] = _mm256_shuffle_ps(u[i + 1], u[i + 3], 0x44);
        q[i + 3] = _mm256_shuffle_ps(u[i + 1], u[i + 3], 0xee);
      }
      for (uint32_t i = 0; i < 4; ++i) {
        _mm256_storeu_ps(dst + (c0 + i) * dst_stride + r0, _mm256_permute2f128_ps(q[i], q[i + 4], 0x20));
        _mm256_storeu_ps(dst + (c0 + i + 4) * dst_stride + r0, _mm256_permute2f128_ps(q[i], q[i + 4], 0x31));
      }
    }
    for (uint32_t r = r0; r < r0 + 8; ++r) {
      for (uint32_t c = c0; c < cols; ++c) dst[c * dst_stride + r] = src[r * src_stride + c];
    }
  }
  for (uint32_t r = r0; r < rows; ++r) {
    for (uint32_t c = 0; c < cols; ++c) dst[c * dst_stride + r] = src[r * src_stride + c];
  }
}

}  // namespace rwkv::RWKV_KERNEL_NS

#endif  // RWKV_HAVE_AVX2
