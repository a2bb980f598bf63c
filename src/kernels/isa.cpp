#include "kernels/isa.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/vector_math.hpp"
#include "kernels/wkv.hpp"
#include "rwkv/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define RWKV_X86 1
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

// Each compiled level's KernelSet (kernel_set.cpp, compiled once per level). The build
// defines RWKV_X86_KERNELS where it compiles the x86 levels.
namespace rwkv::isa_scalar {
const KernelSet& kernel_set();
}
#ifdef RWKV_X86_KERNELS
namespace rwkv::isa_avx2 {
const KernelSet& kernel_set();
}
namespace rwkv::isa_avx512 {
const KernelSet& kernel_set();
}
namespace rwkv::isa_avx512_vnni {
const KernelSet& kernel_set();
}
#endif
#ifdef RWKV_AMX_KERNELS
namespace rwkv::isa_amx {
const KernelSet& kernel_set();
}
#endif

namespace rwkv {

namespace {

struct LevelEntry {
  IsaLevel level;
  const char* name;
  const KernelSet& (*kernel_set)();
};

constexpr LevelEntry kCompiledLevels[] = {
    {IsaLevel::Scalar, "scalar", isa_scalar::kernel_set},
#ifdef RWKV_X86_KERNELS
    {IsaLevel::Avx2, "avx2", isa_avx2::kernel_set},
    {IsaLevel::Avx512, "avx512", isa_avx512::kernel_set},
    {IsaLevel::Avx512Vnni, "avx512_vnni", isa_avx512_vnni::kernel_set},
#endif
#ifdef RWKV_AMX_KERNELS
    {IsaLevel::Amx, "amx", isa_amx::kernel_set},
#endif
};

#ifdef RWKV_X86
struct CpuidRegisters {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
};

CpuidRegisters cpuid(unsigned leaf, unsigned subleaf) {
  CpuidRegisters r;
  if (!__get_cpuid_count(leaf, subleaf, &r.eax, &r.ebx, &r.ecx, &r.edx)) return {};
  return r;
}

// XCR0: which register states the OS saves and restores. Read with the instruction's
// bytes so that this file needs no -mxsave.
uint64_t read_xcr0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

bool bit(unsigned value, int n) { return ((value >> n) & 1u) != 0; }
#endif

// Linux (5.16 and later) enables the AMX tile data state for a process only on request;
// the grant holds for all its threads. Asked once per process.
bool request_amx_permission() {
#if defined(__linux__) && defined(__x86_64__) && defined(SYS_arch_prctl)
  static const bool granted = [] {
    constexpr long kArchReqXcompPerm = 0x1023;  // ARCH_REQ_XCOMP_PERM (asm/prctl.h)
    constexpr long kXfeatureXtiledata = 18;     // XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return granted;
#else
  return false;
#endif
}

}  // namespace

const char* isa_level_name(IsaLevel level) {
  switch (level) {
    case IsaLevel::Scalar: return "scalar";
    case IsaLevel::Avx2: return "avx2";
    case IsaLevel::Avx512: return "avx512";
    case IsaLevel::Avx512Vnni: return "avx512_vnni";
    case IsaLevel::Amx: return "amx";
  }
  return "unknown";
}

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#ifdef RWKV_X86
  const CpuidRegisters leaf0 = cpuid(0, 0);
  const CpuidRegisters leaf1 = cpuid(1, 0);
  char vendor[12];
  std::memcpy(vendor, &leaf0.ebx, 4);
  std::memcpy(vendor + 4, &leaf0.edx, 4);
  std::memcpy(vendor + 8, &leaf0.ecx, 4);
  f.amd = std::memcmp(vendor, "AuthenticAMD", 12) == 0;
  const bool osxsave = bit(leaf1.ecx, 27);
  if (!osxsave || leaf0.eax < 7) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;            // SSE and AVX state
  const bool zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM0-15 upper halves, ZMM16-31
  const bool tile_state = (xcr0 & 0x60000) == 0x60000;   // XTILECFG and XTILEDATA
  const CpuidRegisters leaf7 = cpuid(7, 0);
  const CpuidRegisters leaf7_1 = cpuid(7, 1);
  const bool avx = bit(leaf1.ecx, 28), fma = bit(leaf1.ecx, 12), f16c = bit(leaf1.ecx, 29);
  f.avx2 = ymm_state && avx && fma && f16c && bit(leaf7.ebx, 5);
  // F (16), DQ (17), CD (28), BW (30), VL (31): the x86-64-v4 set the kernels are compiled for.
  f.avx512 = f.avx2 && zmm_state && bit(leaf7.ebx, 16) && bit(leaf7.ebx, 17) && bit(leaf7.ebx, 28) &&
             bit(leaf7.ebx, 30) && bit(leaf7.ebx, 31);
  f.avx512_vnni = f.avx512 && bit(leaf7.ecx, 11);
  f.avx512_bf16 = f.avx512 && bit(leaf7_1.eax, 5);
  f.avx_vnni = f.avx2 && bit(leaf7_1.eax, 4);
  f.amx_int8 = tile_state && bit(leaf7.edx, 24) && bit(leaf7.edx, 25);
  f.amx_bf16 = tile_state && bit(leaf7.edx, 24) && bit(leaf7.edx, 22);
  f.amx_permitted = f.amx_int8 && request_amx_permission();
#endif
  return f;
}

namespace {

bool processor_runs(IsaLevel level, const CpuFeatures& f) {
  switch (level) {
    case IsaLevel::Scalar: return true;
    case IsaLevel::Avx2: return f.avx2;
    case IsaLevel::Avx512: return f.avx512;
    case IsaLevel::Avx512Vnni: return f.avx512_vnni;
    // The level's flags include AVX-512 BF16 and AMX-BF16, which every AMX processor has.
    case IsaLevel::Amx: return f.avx512_vnni && f.avx512_bf16 && f.amx_int8 && f.amx_bf16 && f.amx_permitted;
  }
  return false;
}

const std::vector<IsaLevel>& supported_levels() {
  static const std::vector<IsaLevel> levels = [] {
    const CpuFeatures f = detect_cpu_features();
    std::vector<IsaLevel> out;
    for (const LevelEntry& e : kCompiledLevels) {
      if (processor_runs(e.level, f)) out.push_back(e.level);
    }
    return out;
  }();
  return levels;
}

std::string compiled_level_names() {
  std::string names;
  for (const LevelEntry& e : kCompiledLevels) names += std::string(names.empty() ? "" : ", ") + e.name;
  return names;
}

const KernelSet& set_of(IsaLevel level) {
  for (const LevelEntry& e : kCompiledLevels) {
    if (e.level == level) return e.kernel_set();
  }
  throw Error(std::string("rwkv: this build has no ") + isa_level_name(level) + " kernels (it has " +
              compiled_level_names() + ")");
}

// The level used unless RWKV_ISA names one: the best supported, except that amx is only
// taken when asked for. Its q8_0 GEMM (the only kernel it changes) measured 8-11% faster
// prefill than avx512_vnni on 2 threads of the device's Xeon but 25-30% slower on 16
// (2026-12-06, first version of the kernel); it becomes the default once it is faster.
IsaLevel default_level() {
  const std::vector<IsaLevel>& levels = supported_levels();
  if (levels.back() == IsaLevel::Amx && levels.size() > 1) return levels[levels.size() - 2];
  return levels.back();
}

IsaLevel initial_level() {
  const char* requested = std::getenv("RWKV_ISA");
  if (requested != nullptr && *requested != '\0') return parse_isa_request(requested);
  return default_level();
}

std::atomic<const KernelSet*>& active_set() {
  static std::atomic<const KernelSet*> active{&set_of(initial_level())};
  return active;
}

}  // namespace

IsaLevel best_supported_isa() { return supported_levels().back(); }

std::span<const IsaLevel> supported_isa_levels() { return supported_levels(); }

IsaLevel parse_isa_request(const std::string& value) {
  if (value == "native") return default_level();
  for (const LevelEntry& e : kCompiledLevels) {
    if (value != e.name) continue;
    if (e.level > best_supported_isa()) {
      throw Error("RWKV_ISA=" + value + ": this processor (or its operating system) supports at most " +
                  isa_level_name(best_supported_isa()) + "; RWKV_ISA can only lower the level");
    }
    return e.level;
  }
  throw Error("RWKV_ISA=" + value + ": unknown instruction-set level (expected native or one of: " +
              compiled_level_names() + ")");
}

const KernelSet& kernels() { return *active_set().load(std::memory_order_relaxed); }

void use_kernels(IsaLevel level) {
  if (level > best_supported_isa()) {
    throw Error(std::string("rwkv: this processor cannot run the ") + isa_level_name(level) + " kernels");
  }
  active_set().store(&set_of(level), std::memory_order_relaxed);
}

ScopedKernels::ScopedKernels(IsaLevel level) : previous_(kernels().level) { use_kernels(level); }
ScopedKernels::~ScopedKernels() { use_kernels(previous_); }

// The level-independent entry points of the kernel headers, through the chosen set.

void exp_inplace(float* x, uint32_t n) { kernels().exp_inplace(x, n); }
float dot(const float* a, const float* b, uint32_t n) { return kernels().dot(a, b, n); }
float dot3(const float* a, const float* b, const float* c, uint32_t n) { return kernels().dot3(a, b, c, n); }
void sigmoid_inplace(float* x, uint32_t n) { kernels().sigmoid_inplace(x, n); }
void tanh_inplace(float* x, uint32_t n) { kernels().tanh_inplace(x, n); }
void token_shift_mix(const float* cur, const float* prev, const float* mix, float* out, uint32_t n) {
  kernels().token_shift_mix(cur, prev, mix, out, n);
}
void token_shift_blend(const float* cur, const float* prev, const float* mix, float* out, uint32_t n) {
  kernels().token_shift_blend(cur, prev, mix, out, n);
}
void add_inplace(float* x, const float* y, size_t n) { kernels().add_inplace(x, y, n); }
void add_product(float* x, const float* a, const float* b, size_t n) { kernels().add_product(x, a, b, n); }

void wkv4_step(const float* k, const float* v, const float* log_decay, const float* bonus, float* aa, float* bb,
               float* pp, float* wkv, uint32_t C) {
  kernels().wkv4_step(k, v, log_decay, bonus, aa, bb, pp, wkv, C);
}

void wkv5_head_step(const float* r, const float* k, const float* v, const float* w, const float* u, float* S,
                    float* y, uint32_t N) {
  kernels().wkv5_head_step(r, k, v, w, u, S, y, N);
}

void wkv7_head_step(const float* r, const float* w, const float* k, const float* v, const float* kk,
                    const float* a, float* S, float* y, uint32_t N, uint32_t rows) {
  kernels().wkv7_head_step(r, w, k, v, kk, a, S, y, N, rows);
}

void wkv7_head_steps(const float* r, const float* w, const float* k, const float* v, const float* kk,
                     const float* a, size_t stride, uint32_t n_tokens, float* S, float* y, uint32_t N, uint32_t rows) {
  kernels().wkv7_head_steps(r, w, k, v, kk, a, stride, n_tokens, S, y, N, rows);
}

void dequantize_rows(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, float* out) {
  kernels().dequantize_block(w, row_begin, row_end, 0, w.cols, out);
}

void quantize_activation(const float* x, uint32_t n, uint32_t group_values, Int8Activation& out) {
  out.group_values = group_values;
  out.n_groups = (n + group_values - 1) / group_values;
  out.quants.resize(size_t(out.n_groups) * group_values);
  out.scales.resize(out.n_groups);
  out.block_sums.resize(out.quants.size() / kQuantBlockValues);
  kernels().quantize_activation(x, n, group_values, out.quants.data(), out.scales.data(), out.block_sums.data());
}

}  // namespace rwkv
