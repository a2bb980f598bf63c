// What the machine can do at most, measured in-process on the threads the matrix
// products use (rwkv/threads.hpp), so that a benchmark can say how close a model's
// speed comes to it.
//
//   rwkv::BandwidthProbe probe(256 << 20);       // a buffer far larger than the caches
//   double bytes_per_second = probe.pass();      // after each step of the work compared
//   double flops = rwkv::measure_fma_peak_once();
//
// Both start the thread pool (as Model::load does): set_thread_count must come first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace rwkv {

// Memory read bandwidth: every thread of the pool streams through its share of a
// buffer much larger than the caches. Passes can be interleaved with the work they are
// compared with, so that both see the same state of a shared, noisy machine.
class BandwidthProbe {
 public:
  // Allocates the buffer and writes it once (mapping its pages, each thread its own
  // share); one untimed pass.
  explicit BandwidthProbe(size_t buffer_bytes);
  ~BandwidthProbe();
  BandwidthProbe(const BandwidthProbe&) = delete;
  BandwidthProbe& operator=(const BandwidthProbe&) = delete;

  // One timed pass: bytes per second.
  double pass();

 private:
  std::unique_ptr<uint64_t[]> buffer_;
  size_t n_words_;
};

// Float32 FLOP/s of the pool's threads each running independent fused multiply-adds on
// registers at the widest width the library was compiled for (AVX-512, else AVX2 FMA),
// one timed pass.
double measure_fma_peak_once();

// The instruction set the kernels were compiled for: "avx512_vnni_bf16", "avx512_vnni",
// "avx512", "avx2" or "scalar" (kernels are chosen at compile time, RWKV_NATIVE).
const char* kernel_isa();

}  // namespace rwkv
