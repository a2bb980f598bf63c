// The loops that measure what the processor can do at one instruction-set level
// (rwkv/machine.hpp runs them on every thread of the pool): a streaming read with the
// widest loads, float32 FMAs and int8 dot products on registers.
#include <algorithm>

#include "kernels/amx_tiles.hpp"
#include "kernels/matvec_rows.hpp"

namespace rwkv::RWKV_KERNEL_NS {

// Reads n words with the widest loads as two streams side by side (the two halves of the
// range), four independent accumulators, and no software prefetch. A single sequential
// stream read 24-66 GB/s on AMD EPYC (Zen 5, 2 threads, 1 GiB) where two read 39-79 (and
// four 34-64) in the same runs, and the f16 decode kernel, which reads four panels side by
// side, reached 59 GB/s: the limit is what the memory gives to the best way of reading it.
uint64_t stream_read(const uint64_t* words, size_t n) {
  uint64_t total = 0;
  size_t done = 0;
#if defined(RWKV_HAVE_AVX512)
  const size_t half = n / 32 * 16;  // two streams of whole 128-byte steps
  const uint64_t* second = words + half;
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  for (size_t i = 0; i < half; i += 16) {
    a = _mm512_xor_si512(a, _mm512_loadu_si512(words + i));
    b = _mm512_xor_si512(b, _mm512_loadu_si512(words + i + 8));
    c = _mm512_xor_si512(c, _mm512_loadu_si512(second + i));
    d = _mm512_xor_si512(d, _mm512_loadu_si512(second + i + 8));
  }
  uint64_t lanes[8];
  _mm512_storeu_si512(lanes, _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d)));
  for (uint64_t lane : lanes) total ^= lane;
  done = 2 * half;
#elif defined(RWKV_HAVE_AVX2)
  const size_t half = n / 16 * 8;  // two streams of whole 64-byte steps
  const auto* first = reinterpret_cast<const __m256i*>(words);
  const auto* second = reinterpret_cast<const __m256i*>(words + half);
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (size_t i = 0; i < half / 4; i += 2) {
    a = _mm256_xor_si256(a, _mm256_loadu_si256(first + i));
    b = _mm256_xor_si256(b, _mm256_loadu_si256(first + i + 1));
    c = _mm256_xor_si256(c, _mm256_loadu_si256(second + i));
    d = _mm256_xor_si256(d, _mm256_loadu_si256(second + i + 1));
  }
  const __m256i r = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
  total = static_cast<uint64_t>(_mm256_extract_epi64(r, 0) ^ _mm256_extract_epi64(r, 1) ^ _mm256_extract_epi64(r, 2) ^
                                _mm256_extract_epi64(r, 3));
  done = 2 * half;
#else
  const size_t half = n / 2;
  uint64_t a = 0, b = 0;
  for (size_t i = 0; i < half; ++i) {
    a ^= words[i];
    b ^= words[half + i];
  }
  total = a ^ b;
  done = 2 * half;
#endif
  for (size_t i = done; i < n; ++i) total ^= words[i];
  return total;
}

namespace {
// Enough independent accumulators to cover the latency on both ports.
constexpr int kAccumulators = 12;
}  // namespace

// `iterations` rounds of kAccumulators independent FMAs at the widest float width.
double fma_peak_loop(uint32_t iterations, float* sink) {
#if defined(RWKV_HAVE_AVX512)
  __m512 acc[kAccumulators];
  for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_set1_ps(float(k) * 1e-3f);
  const __m512 mul = _mm512_set1_ps(0.999999f);
  const __m512 add = _mm512_set1_ps(1e-7f);
  for (uint32_t i = 0; i < iterations; ++i) {
    for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_fmadd_ps(acc[k], mul, add);
  }
  __m512 total = acc[0];
  for (int k = 1; k < kAccumulators; ++k) total = _mm512_add_ps(total, acc[k]);
  *sink = _mm512_reduce_add_ps(total);
  return 2.0 * 16 * kAccumulators * double(iterations);
#elif defined(RWKV_HAVE_AVX2)
  __m256 acc[kAccumulators];
  for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm256_set1_ps(float(k) * 1e-3f);
  const __m256 mul = _mm256_set1_ps(0.999999f);
  const __m256 add = _mm256_set1_ps(1e-7f);
  for (uint32_t i = 0; i < iterations; ++i) {
    for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm256_fmadd_ps(acc[k], mul, add);
  }
  __m256 total = acc[0];
  for (int k = 1; k < kAccumulators; ++k) total = _mm256_add_ps(total, acc[k]);
  *sink = horizontal_sum(total);
  return 2.0 * 8 * kAccumulators * double(iterations);
#else
  float acc[kAccumulators][8];
  for (int k = 0; k < kAccumulators; ++k) std::fill(acc[k], acc[k] + 8, float(k) * 1e-3f);
  for (uint32_t i = 0; i < iterations; ++i) {
    for (int k = 0; k < kAccumulators; ++k) {
      for (int l = 0; l < 8; ++l) acc[k][l] = acc[k][l] * 0.999999f + 1e-7f;
    }
  }
  *sink = acc[0][0];
  return 2.0 * 8 * kAccumulators * double(iterations);
#endif
}

#if defined(RWKV_HAVE_AMX)
// iterations / 8 rounds of four independent tile products (tdpbssd: s8 × s8 into int32,
// 16 × 16 × 64 multiply-adds each, the instruction the amx level's q8_0 GEMM uses); 2
// operations per byte pair.
double int8_peak_loop(uint32_t iterations, int32_t* sink) {
  alignas(64) int8_t operand[16 * 64];
  for (uint32_t i = 0; i < sizeof(operand); ++i) operand[i] = int8_t(i * 7 + 3);
  start_peak_tiles(operand);
  const uint32_t rounds = std::max(iterations / 8, 1u);
  for (uint32_t i = 0; i < rounds; ++i) {
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  }
  alignas(64) int32_t sums[16 * 16];
  _tile_stored(0, sums, 64);
  _tile_release();
  int32_t folded = 0;
  for (int32_t v : sums) folded ^= v;
  *sink = folded;
  return 2.0 * 16 * 16 * 64 * 4 * double(rounds);
}
#else
// `iterations` rounds of kAccumulators independent int8 dot products (u8 × s8 summed
// into int32 lanes, the instruction the int8 kernels use); 2 operations per byte pair.
double int8_peak_loop(uint32_t iterations, int32_t* sink) {
#if defined(RWKV_HAVE_AVX512)
  __m512i acc[kAccumulators];
  for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_set1_epi32(k);
  const __m512i s = _mm512_set1_epi8(-2);
#if defined(RWKV_HAVE_AVX512_VNNI)
  const __m512i u = _mm512_set1_epi8(3);
#endif
  for (uint32_t i = 0; i < iterations; ++i) {
#if defined(RWKV_HAVE_AVX512_VNNI)
    for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], u, s);
#else
    // Each dot product reads its own accumulator's bytes, so that none is loop-invariant
    // or shared (the compiler would compute such a product once and time only the adds).
    for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_add_epi32(acc[k], dot_u8_i8(acc[k], s));
#endif
  }
  // XOR, not a sum: the lanes have wrapped around, and a reduction in signed int
  // arithmetic would overflow.
  __m512i total = acc[0];
  for (int k = 1; k < kAccumulators; ++k) total = _mm512_xor_si512(total, acc[k]);
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, total);
  int32_t folded = 0;
  for (int32_t lane : lanes) folded ^= lane;
  *sink = folded;
  return 2.0 * 64 * kAccumulators * double(iterations);
#elif defined(RWKV_HAVE_AVX2)
  __m256i acc[kAccumulators];
  for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm256_set1_epi32(k);
  const __m256i s = _mm256_set1_epi8(-2);
  for (uint32_t i = 0; i < iterations; ++i) {
    // Each dot product reads its own accumulator's bytes (see the AVX-512 loop).
    for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm256_add_epi32(acc[k], dot_u8_i8(acc[k], s));
  }
  __m256i total = acc[0];
  for (int k = 1; k < kAccumulators; ++k) total = _mm256_xor_si256(total, acc[k]);  // as above
  *sink = _mm256_extract_epi32(total, 0);
  return 2.0 * 32 * kAccumulators * double(iterations);
#else
  *sink = int32_t(iterations);
  return 0.0;
#endif
}
#endif

#if defined(RWKV_HAVE_AVX512)
const char* const kFmaUnit = "avx512 fma";
#elif defined(RWKV_HAVE_AVX2)
const char* const kFmaUnit = "avx2 fma";
#else
const char* const kFmaUnit = "scalar";
#endif

#if defined(RWKV_HAVE_AMX)
const char* const kInt8Unit = "amx int8 (tdpbssd)";
#elif defined(RWKV_HAVE_AVX512_VNNI)
const char* const kInt8Unit = "avx512 vnni";
#elif defined(RWKV_HAVE_AVX512)
const char* const kInt8Unit = "avx512bw";
#elif defined(RWKV_HAVE_AVX2)
const char* const kInt8Unit = "avx2";
#else
const char* const kInt8Unit = "";
#endif

}  // namespace rwkv::RWKV_KERNEL_NS
