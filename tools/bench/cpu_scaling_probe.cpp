// How a machine's own arithmetic units scale with threads, apart from any model: each
// thread, pinned to one CPU, runs a register-only loop of one unit's instruction (512-bit
// FMA, or 256-bit without AVX-512; 512-bit VNNI `vpdpbusd`; AMX `tdpbf16ps`), each where
// the processor has it, for a fixed time, all threads started together; the total rate
// is printed per thread count. A second pass runs CPU 0 beside each other CPU alone:
// where the pair's rate is that of one CPU, the two share a core (hyperthreads that a
// virtual machine may not show in its topology).
//
// Built as build/rwkv-cpu-scaling-probe where the compiler has the AMX intrinsics;
// tools/bench/device_scaling.sh compiles it on its own (x86-64 only):
//   g++ -O2 -std=c++20 -pthread tools/bench/cpu_scaling_probe.cpp -o /tmp/cpu_scaling_probe
//   rwkv-cpu-scaling-probe [--seconds 0.5] [--threads 1,2,4,8,16] [--pairs]
// Output: one JSON object a line, {"unit", "threads", "cpus", "rate", "rate_unit"}.
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Operations per call of each loop below (a multiply-add counts 2).
constexpr int kRounds = 1024;
constexpr double kFmaOpsPerCall = double(kRounds) * 12 * 16 * 2;
constexpr double kVnniOpsPerCall = double(kRounds) * 12 * 64 * 2;
constexpr double kAmxOpsPerCall = double(kRounds) * 4 * 16 * 16 * 32 * 2;

__attribute__((target("avx512f"))) float fma_loop() {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(float(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-4f);
  for (int r = 0; r < kRounds; ++r) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  alignas(64) float out[16];
  for (int i = 1; i < 12; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  _mm512_store_ps(out, acc[0]);
  return out[0] + out[15];
}

// The same with 256-bit FMA, for processors without AVX-512.
__attribute__((target("avx2,fma"))) float fma256_loop() {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(float(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-4f);
  for (int r = 0; r < kRounds; ++r) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  alignas(32) float out[8];
  for (int i = 1; i < 12; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  _mm256_store_ps(out, acc[0]);
  return out[0] + out[7];
}

__attribute__((target("avx512f,avx512vnni"))) int vnni_loop() {
  __m512i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (int r = 0; r < kRounds; ++r) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  }
  alignas(64) int out[16];
  for (int i = 1; i < 12; ++i) acc[0] = _mm512_add_epi32(acc[0], acc[i]);
  _mm512_store_si512(out, acc[0]);
  return out[0] + out[15];
}

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

bool amx_permitted() {
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureTileData = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureTileData) == 0;
}

// Four 16 x 16 float tiles accumulating tdpbf16ps of two zeroed operand tiles: the
// unit's rate does not depend on the values.
__attribute__((target("amx-tile,amx-bf16"))) int amx_loop() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = 16;
  }
  _tile_loadconfig(&config);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_zero(4);
  _tile_zero(5);
  for (int r = 0; r < kRounds; ++r) {
    _tile_dpbf16ps(0, 4, 5);
    _tile_dpbf16ps(1, 4, 5);
    _tile_dpbf16ps(2, 4, 5);
    _tile_dpbf16ps(3, 4, 5);
  }
  alignas(64) float out[16 * 16];
  _tile_stored(0, out, 64);
  _tile_release();
  return int(out[0]);
}

struct Unit {
  const char* name;
  const char* rate_unit;
  double ops_per_call;
  int (*run)();
};

int run_fma() { return int(fma_loop()); }
int run_fma256() { return int(fma256_loop()); }

bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

// Total operations per second of `unit` on threads pinned to `cpus`, all timed over the
// same `seconds` after a common start.
double measure(const Unit& unit, const std::vector<int>& cpus, double seconds) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false}, stop{false};
  std::vector<double> calls(cpus.size(), 0.0);
  std::vector<std::thread> threads;
  std::atomic<int> sink{0};
  for (size_t i = 0; i < cpus.size(); ++i) {
    threads.emplace_back([&, i] {
      if (!pin_to(cpus[i])) std::fprintf(stderr, "cannot pin a thread to CPU %d\n", cpus[i]);
      // Warm the unit before the common start (20 ms): the first wide instructions run
      // slower while the core changes its power state, and AMX takes its state then.
      int local = 0;
      for (const auto warm_until = Clock::now() + std::chrono::milliseconds(20); Clock::now() < warm_until;) {
        local += unit.run();
      }
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      double n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        local += unit.run();
        n += 1;
      }
      calls[i] = n;
      sink.fetch_add(local);
    });
  }
  while (ready.load() < int(cpus.size())) std::this_thread::yield();
  const auto start = Clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& t : threads) t.join();
  double total = 0;
  for (double c : calls) total += c;
  return total * unit.ops_per_call / elapsed;
}

std::vector<int> parse_list(const char* text) {
  std::vector<int> out;
  for (const char* p = text; *p != '\0';) {
    char* end = nullptr;
    const long v = std::strtol(p, &end, 10);
    if (end == p || v <= 0) {
      std::fprintf(stderr, "--threads: expected a comma-separated list of positive counts, got '%s'\n", text);
      std::exit(2);
    }
    out.push_back(int(v));
    p = *end == ',' ? end + 1 : end;
  }
  return out;
}

std::string cpu_list(const std::vector<int>& cpus) {
  std::string s;
  for (int c : cpus) {
    if (!s.empty()) s.push_back(',');
    s.append(std::to_string(c));
  }
  return s;
}

void print_usage(FILE* to, const char* program) {
  std::fprintf(to, "usage: %s [--seconds S (0 < S <= 60, default 0.5)] [--threads 1,2,4,8,16] [--pairs]\n", program);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.5;
  std::vector<int> counts = {1, 2, 4, 8, 16};
  bool pairs = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      print_usage(stdout, argv[0]);
      return 0;
    } else if (!std::strcmp(argv[i], "--seconds") && has_value) {
      char* end = nullptr;
      seconds = std::strtod(argv[++i], &end);
      if (end == argv[i] || *end != '\0' || !(seconds > 0 && seconds <= 60)) {
        std::fprintf(stderr, "--seconds: expected a number of seconds in (0, 60], got '%s'\n", argv[i]);
        return 2;
      }
    } else if (!std::strcmp(argv[i], "--threads") && has_value) {
      counts = parse_list(argv[++i]);
    } else if (!std::strcmp(argv[i], "--pairs")) {
      pairs = true;
    } else {
      std::fprintf(stderr, "%s: %s\n", argv[i],
                   !std::strcmp(argv[i], "--seconds") || !std::strcmp(argv[i], "--threads") ? "needs a value"
                                                                                             : "unknown argument");
      print_usage(stderr, argv[0]);
      return 2;
    }
  }
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof(allowed), &allowed);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  __builtin_cpu_init();
  std::vector<Unit> units;
  if (__builtin_cpu_supports("avx512f")) {
    units.push_back({"fma512", "GFLOP/s", kFmaOpsPerCall, run_fma});
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    units.push_back({"fma256", "GFLOP/s", kFmaOpsPerCall / 2, run_fma256});
  }
  if (__builtin_cpu_supports("avx512vnni")) units.push_back({"vnni512", "GOP/s", kVnniOpsPerCall, vnni_loop});
  if (__builtin_cpu_supports("amx-bf16") && amx_permitted()) {
    units.push_back({"amx_bf16", "GFLOP/s", kAmxOpsPerCall, amx_loop});
  }
  for (const Unit& unit : units) {
    for (int n : counts) {
      if (n > int(cpus.size())) continue;
      const std::vector<int> use(cpus.begin(), cpus.begin() + n);
      std::printf("{\"unit\": \"%s\", \"threads\": %d, \"cpus\": \"%s\", \"rate\": %.1f, \"rate_unit\": \"%s\"}\n",
                  unit.name, n, cpu_list(use).c_str(), measure(unit, use, seconds) / 1e9, unit.rate_unit);
      std::fflush(stdout);
    }
    if (!pairs) continue;
    for (size_t k = 1; k < cpus.size(); ++k) {
      const std::vector<int> use = {cpus[0], cpus[k]};
      std::printf("{\"unit\": \"%s\", \"threads\": 2, \"cpus\": \"%s\", \"rate\": %.1f, \"rate_unit\": \"%s\"}\n",
                  unit.name, cpu_list(use).c_str(), measure(unit, use, seconds) / 1e9, unit.rate_unit);
      std::fflush(stdout);
    }
  }
  return 0;
}
