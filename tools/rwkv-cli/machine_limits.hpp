// What the machine can do at most, measured in-process with the kernel thread pool,
// so that bench can say how close the model's speed comes to it.
#pragma once

#include <cstddef>

namespace rwkv_cli {

// Bytes per second read from memory by every thread of the kernel pool streaming
// through its share of a `buffer_bytes` buffer (much larger than the caches); the
// median of `passes` passes after one untimed pass.
double measure_read_bandwidth(size_t buffer_bytes, int passes);

// Float32 FLOP/s of the kernel pool's threads each running independent fused
// multiply-adds on registers (AVX2 FMA where compiled in); median of `passes`.
double measure_fma_peak(int passes);

}  // namespace rwkv_cli
