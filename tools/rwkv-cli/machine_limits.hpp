// What the machine can do at most, measured in-process with the kernel thread pool,
// so that bench can say how close the model's speed comes to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace rwkv_cli {

// Memory read bandwidth: every thread of the kernel pool streams through its share of
// a buffer much larger than the caches. Passes can be interleaved with the work they
// are compared with, so that both see the same state of a shared, noisy machine.
class BandwidthProbe {
 public:
  // Allocates the buffer and writes it once (mapping its pages); one untimed pass.
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

// Float32 FLOP/s of the kernel pool's threads each running independent fused
// multiply-adds on registers (AVX2 FMA where compiled in), one timed pass.
double measure_fma_peak_once();

}  // namespace rwkv_cli
