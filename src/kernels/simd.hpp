// Which SIMD paths this copy of the kernels compiles (from its level's -m flags), and the
// few helpers the vector kernels share. Without AVX2/FMA/F16C every kernel falls back
// to its portable scalar loop; with AVX-512 F/BW/VL as well, the kernels take 512-bit
// paths, with AVX-512 VNNI the int8 dot products use vpdpbusd, and with AMX-INT8 the
// q8_0 GEMM multiplies tiles (tdpbssd).
#pragma once

#include <cstdint>

#ifndef RWKV_KERNEL_NS
#error "kernels/simd.hpp is for the per-level kernel sources (RWKV_KERNEL_NS)"
#endif

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define RWKV_HAVE_AVX2 1
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define RWKV_HAVE_AVX512 1
#if defined(__AVX512VNNI__)
#define RWKV_HAVE_AVX512_VNNI 1
#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
#define RWKV_HAVE_AMX 1
#endif
#endif
#endif
#endif

namespace rwkv::RWKV_KERNEL_NS {

#ifdef RWKV_HAVE_AVX2
inline float horizontal_sum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_hadd_ps(sum, sum);
  sum = _mm_hadd_ps(sum, sum);
  return _mm_cvtss_f32(sum);
}

// Sums the products of 32 unsigned bytes with 32 signed bytes into 8 int32 lanes.
// Callers keep the unsigned side within [0, 127] so that the pairwise int16 sums
// of _mm256_maddubs_epi16 cannot saturate (2 * 127 * 127 < 32767).
inline __m256i dot_u8_i8(__m256i unsigned_bytes, __m256i signed_bytes) {
  const __m256i pairs = _mm256_maddubs_epi16(unsigned_bytes, signed_bytes);
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}
#endif

#ifdef RWKV_HAVE_AVX512
inline float horizontal_sum(__m512 v) { return _mm512_reduce_add_ps(v); }

// The same for 64 bytes into 16 int32 lanes, each lane the sum of 4 neighbouring
// products. vpdpbusd does it in one instruction without the int16 step; the
// [0, 127] bound above still applies to builds without VNNI.
inline __m512i dot_u8_i8(__m512i unsigned_bytes, __m512i signed_bytes) {
#ifdef RWKV_HAVE_AVX512_VNNI
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), unsigned_bytes, signed_bytes);
#else
  const __m512i pairs = _mm512_maddubs_epi16(unsigned_bytes, signed_bytes);
  return _mm512_madd_epi16(pairs, _mm512_set1_epi16(1));
#endif
}
#endif

// The widest float32 vector of this level, for kernels written once for both widths.
#if defined(RWKV_HAVE_AVX512)
struct FloatVec {
  using T = __m512;
  static constexpr uint32_t kWidth = 16;
  static T zero() { return _mm512_setzero_ps(); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T broadcast(float x) { return _mm512_set1_ps(x); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T fms(T a, T b, T c) { return _mm512_fmsub_ps(a, b, c); }  // a·b − c
  static float sum(T v) { return horizontal_sum(v); }
};
#elif defined(RWKV_HAVE_AVX2)
struct FloatVec {
  using T = __m256;
  static constexpr uint32_t kWidth = 8;
  static T zero() { return _mm256_setzero_ps(); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T broadcast(float x) { return _mm256_set1_ps(x); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T fms(T a, T b, T c) { return _mm256_fmsub_ps(a, b, c); }  // a·b − c
  static float sum(T v) { return horizontal_sum(v); }
};
#endif

}  // namespace rwkv::RWKV_KERNEL_NS
