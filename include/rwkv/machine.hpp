// What the machine can do at most, measured in-process on the threads the matrix
// products use (rwkv/threads.hpp), so that a benchmark can say how close a model's
// speed comes to it.
//
//   rwkv::BandwidthProbe probe(256 << 20);       // a buffer far larger than the caches
//   double bytes_per_second = probe.pass();      // after each step of the work compared
//   double flops = rwkv::measure_fma_peak_once();
//   double int8_ops = rwkv::measure_int8_peak_once();
//
// Both start the thread pool (as Model::load does): set_thread_count must come first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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
// registers at the widest width of the kernels in use (kernel_isa()), one timed pass.
double measure_fma_peak_once();
// The same for the int8 dot products of the int8 kernels (u8 × s8 summed into int32:
// vpdpbusd with AVX-512 VNNI, else vpmaddubsw + vpmaddwd; at the amx level AMX tile
// products, s8 × s8 with tdpbssd), int8 operations per second (2 per byte pair); 0 where
// the kernels in use have none (scalar).
double measure_int8_peak_once();
// The same for the bf16 dot products (vdpbf16ps) that products of bf16 weights use on
// AMD processors with AVX512_BF16, FLOP/s (2 per product); 0 where the kernels have none.
double measure_bf16_peak_once();
// Which unit each measures, e.g. "avx512 fma", "avx512 vnni", "amx int8 (tdpbssd)",
// "avx512 bf16 (vdpbf16ps)" ("" for none).
const char* fma_peak_unit();
const char* int8_peak_unit();
const char* bf16_peak_unit();

// Whether matrix–matrix products (prefill, batches beyond a few tokens) of weights of
// `weight_type` ("q8_0", ...) run on int8 dot products with the kernels in use: the block
// types at the avx512_vnni and amx levels (q8_0 on AMX tiles at amx). Otherwise they run
// on float32 FMAs.
bool int8_matmat(const std::string& weight_type);
// Whether they run on bf16 dot products: bf16 weights where the processor has
// AVX512_BF16 from AMD (at the avx512_vnni and amx levels; on Intel's Sapphire Rapids
// vdpbf16ps measured slower than the FMA); the activations are then rounded to
// bf16 (kernels/matmat_bf16.hpp).
bool bf16_matmat(const std::string& weight_type);

// The instruction-set level of the kernels in use: "scalar", "avx2", "avx512",
// "avx512_vnni" or "amx". The library chooses the best level the processor and operating
// system support at first use, except amx, which is used only when asked for (it is not
// yet faster at every thread count); the environment variable
// RWKV_ISA=scalar|avx2|avx512|avx512_vnni|amx|native chooses another one (a level above
// what the machine supports is an error).
const char* kernel_isa();
// The levels this build has that this processor runs, lowest first ("scalar", ...).
std::vector<std::string> supported_kernel_isas();
// Uses `level` ("native" = the default choice above) from now on, as RWKV_ISA would; throws
// rwkv::Error for an unknown level or one above what the processor supports. Not while
// another thread runs a model.
void set_kernel_isa(const std::string& level);

}  // namespace rwkv
