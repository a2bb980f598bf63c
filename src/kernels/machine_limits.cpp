#include "rwkv/machine.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "kernels/row_dots.hpp"
#include "kernels/thread_pool.hpp"

namespace rwkv {

namespace {

using Clock = std::chrono::steady_clock;

// Seconds for every thread of the pool to run body(thread) once, started together.
template <typename Body>
double time_on_every_thread(Body&& body) {
  ThreadPool& pool = kernel_pool();
  const auto start = Clock::now();
  pool.run(pool.size(), [&](unsigned task) { body(task); });
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Reads n words with the widest loads the library is compiled for, four independent
// accumulators, and no software prefetch: a plain sequential read is what the hardware
// prefetchers serve best. On AMD EPYC (Zen 5, 2 threads, 1 GiB) this reads 60-65 GB/s,
// where the former scalar sum with prefetches every line read 25 GB/s, below what
// decoding itself reaches.
uint64_t sum_words(const uint64_t* words, size_t n) {
  size_t i = 0;
  uint64_t total = 0;
#if defined(__AVX512F__)
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  for (; i + 32 <= n; i += 32) {
    a = _mm512_xor_si512(a, _mm512_loadu_si512(words + i));
    b = _mm512_xor_si512(b, _mm512_loadu_si512(words + i + 8));
    c = _mm512_xor_si512(c, _mm512_loadu_si512(words + i + 16));
    d = _mm512_xor_si512(d, _mm512_loadu_si512(words + i + 24));
  }
  uint64_t lanes[8];
  _mm512_storeu_si512(lanes, _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d)));
  for (uint64_t lane : lanes) total ^= lane;
#elif defined(__AVX2__)
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (; i + 16 <= n; i += 16) {
    a = _mm256_xor_si256(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + i)));
    b = _mm256_xor_si256(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + i + 4)));
    c = _mm256_xor_si256(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + i + 8)));
    d = _mm256_xor_si256(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + i + 12)));
  }
  const __m256i r = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
  total = static_cast<uint64_t>(_mm256_extract_epi64(r, 0) ^ _mm256_extract_epi64(r, 1) ^ _mm256_extract_epi64(r, 2) ^
                                _mm256_extract_epi64(r, 3));
#else
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (; i + 4 <= n; i += 4) {
    a ^= words[i];
    b ^= words[i + 1];
    c ^= words[i + 2];
    d ^= words[i + 3];
  }
  total = a ^ b ^ c ^ d;
#endif
  for (; i < n; ++i) total ^= words[i];
  return total;
}

// Enough independent accumulators to cover the FMA latency on both FMA ports.
constexpr int kAccumulators = 12;
constexpr int kFmaIterations = 4'000'000;

// Returns the FLOPs done. The result is published so that the loop is not removed.
// At the widest vector width the kernels are compiled for: the peak is that of the
// unit doing the float32 work, not of a narrower one.
double fma_loop(std::atomic<float>& sink) {
#if defined(__AVX512F__)
  __m512 acc[kAccumulators];
  for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_set1_ps(float(k) * 1e-3f);
  const __m512 mul = _mm512_set1_ps(0.999999f);
  const __m512 add = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < kFmaIterations / 2; ++i) {
    for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm512_fmadd_ps(acc[k], mul, add);
  }
  __m512 total = acc[0];
  for (int k = 1; k < kAccumulators; ++k) total = _mm512_add_ps(total, acc[k]);
  sink.store(_mm512_reduce_add_ps(total), std::memory_order_relaxed);
  return 2.0 * 16 * kAccumulators * double(kFmaIterations / 2);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 acc[kAccumulators];
  for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm256_set1_ps(float(k) * 1e-3f);
  const __m256 mul = _mm256_set1_ps(0.999999f);
  const __m256 add = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < kFmaIterations; ++i) {
    for (int k = 0; k < kAccumulators; ++k) acc[k] = _mm256_fmadd_ps(acc[k], mul, add);
  }
  __m256 total = acc[0];
  for (int k = 1; k < kAccumulators; ++k) total = _mm256_add_ps(total, acc[k]);
  float lanes[8];
  _mm256_storeu_ps(lanes, total);
  sink.store(lanes[0], std::memory_order_relaxed);
  return 2.0 * 8 * kAccumulators * double(kFmaIterations);
#else
  float acc[kAccumulators][8];
  for (int k = 0; k < kAccumulators; ++k) std::fill(acc[k], acc[k] + 8, float(k) * 1e-3f);
  for (int i = 0; i < kFmaIterations; ++i) {
    for (int k = 0; k < kAccumulators; ++k) {
      for (int l = 0; l < 8; ++l) acc[k][l] = acc[k][l] * 0.999999f + 1e-7f;
    }
  }
  sink.store(acc[0][0], std::memory_order_relaxed);
  return 2.0 * 8 * kAccumulators * double(kFmaIterations);
#endif
}

}  // namespace

const char* kernel_isa() {
#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__AVX512BF16__)
  return "avx512_vnni_bf16";
#elif defined(__AVX512F__) && defined(__AVX512VNNI__)
  return "avx512_vnni";
#elif defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2";
#else
  return "scalar";
#endif
}

BandwidthProbe::BandwidthProbe(size_t buffer_bytes)
    : buffer_(new uint64_t[std::max<size_t>(buffer_bytes / sizeof(uint64_t), 1)]),
      n_words_(std::max<size_t>(buffer_bytes / sizeof(uint64_t), 1)) {
  const unsigned n_threads = kernel_pool().size();
  // Each thread first writes the part it will read, so that its pages are mapped
  // (and, on NUMA machines, local to it) before the timed passes.
  time_on_every_thread([&](unsigned t) {
    const size_t begin = n_words_ * t / n_threads, end = n_words_ * (t + 1) / n_threads;
    for (size_t i = begin; i < end; ++i) buffer_[i] = i;
  });
  pass();
}

BandwidthProbe::~BandwidthProbe() = default;

double BandwidthProbe::pass() {
  const unsigned n_threads = kernel_pool().size();
  std::atomic<uint64_t> sink{0};
  const double seconds = time_on_every_thread([&](unsigned t) {
    const size_t begin = n_words_ * t / n_threads, end = n_words_ * (t + 1) / n_threads;
    sink.fetch_add(sum_words(buffer_.get() + begin, end - begin), std::memory_order_relaxed);
  });
  return double(n_words_ * sizeof(uint64_t)) / seconds;
}

double measure_fma_peak_once() {
  std::atomic<float> sink{0};
  std::atomic<double> flops{0};
  const double seconds = time_on_every_thread([&](unsigned) {
    const double f = fma_loop(sink);
    double expected = flops.load();
    while (!flops.compare_exchange_weak(expected, expected + f)) {
    }
  });
  return flops.load() / seconds;
}

}  // namespace rwkv
