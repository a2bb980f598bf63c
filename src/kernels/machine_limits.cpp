#include "rwkv/machine.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/dtype.hpp"
#include "kernels/isa.hpp"
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

constexpr uint32_t kPeakIterations = 2'000'000;

}  // namespace

const char* kernel_isa() { return isa_level_name(kernels().level); }

std::vector<std::string> supported_kernel_isas() {
  std::vector<std::string> names;
  for (IsaLevel level : supported_isa_levels()) names.push_back(isa_level_name(level));
  return names;
}

void set_kernel_isa(const std::string& level) { use_kernels(parse_isa_request(level)); }

bool int8_matmat(const std::string& weight_type) {
  return dtype_is_blocked(parse_dtype(weight_type)) && kernels().matmat_rows_int8 != nullptr;
}

bool bf16_matmat(const std::string& weight_type) {
  return parse_dtype(weight_type) == DType::BF16 && kernels().matmat_rows_bf16 != nullptr;
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
    sink.fetch_add(kernels().stream_read(buffer_.get() + begin, end - begin), std::memory_order_relaxed);
  });
  return double(n_words_ * sizeof(uint64_t)) / seconds;
}

namespace {

// Operations per second of every pool thread running `loop` once, started together.
template <typename Sink, typename Loop>
double measure_peak(Loop loop) {
  std::atomic<double> operations{0};
  const double seconds = time_on_every_thread([&](unsigned) {
    Sink sink{};
    const double done = loop(kPeakIterations, &sink);
    double expected = operations.load();
    while (!operations.compare_exchange_weak(expected, expected + done)) {
    }
  });
  return operations.load() / seconds;
}

}  // namespace

double measure_fma_peak_once() { return measure_peak<float>(kernels().fma_peak_loop); }

double measure_int8_peak_once() {
  if (kernels().int8_peak_loop == nullptr) return 0.0;
  return measure_peak<int32_t>(kernels().int8_peak_loop);
}

double measure_bf16_peak_once() {
  if (kernels().bf16_peak_loop == nullptr) return 0.0;
  return measure_peak<float>(kernels().bf16_peak_loop);
}

const char* fma_peak_unit() { return kernels().fma_unit; }
const char* int8_peak_unit() { return kernels().int8_unit; }
const char* bf16_peak_unit() { return kernels().bf16_unit; }

}  // namespace rwkv
