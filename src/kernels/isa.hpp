// Run-time choice of kernels. The kernel sources (CMakeLists.txt: RWKV_KERNEL_SOURCES)
// are compiled once per instruction-set level, each copy in its own namespace
// rwkv::isa_<level> with that level's compiler flags, and each copy fills a KernelSet
// with its functions. At first use the library takes the best level that the processor
// and the operating system support, or the level named by the RWKV_ISA environment
// variable, so one build runs well on every x86-64 machine.
//
// Everything that depends on the level goes through kernels(): the row kernels under
// matvec/matmat, the vector math, the recurrences and the machine probes. Code outside
// the kernel sources is compiled once (with -march=native only when RWKV_NATIVE=ON).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "kernels/matvec.hpp"
#include "kernels/quant_blocks.hpp"

namespace rwkv {

// In increasing order: each level's processor has every earlier level's instructions.
enum class IsaLevel : uint8_t {
  Scalar,      // portable C++ (and Eigen's GEMM), no intrinsics
  Avx2,        // AVX2, FMA, F16C (x86-64-v3)
  Avx512,      // AVX-512 F, CD, BW, DQ, VL (x86-64-v4)
  Avx512Vnni,  // and AVX-512 VNNI: int8 dot products in one instruction
  Amx,         // and AVX-512 BF16, AMX-TILE, AMX-INT8, AMX-BF16: the q8_0 GEMM on tiles
};

const char* isa_level_name(IsaLevel level);

// What cpuid and the operating system say this processor can run. A feature counts only
// when the OS saves its registers on context switch (XCR0): AVX needs the YMM state,
// AVX-512 the opmask and ZMM states, AMX the tile states. Linux also wants each process
// to ask for the tile data state before its first tile instruction (else SIGILL):
// detection asks once, for the whole process, and records whether it was granted.
struct CpuFeatures {
  bool avx2 = false;  // with FMA and F16C
  bool avx512 = false;
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool avx_vnni = false;
  bool amx_int8 = false;  // tile data state enabled in XCR0 (the permission request is separate)
  bool amx_bf16 = false;
  bool amx_permitted = false;  // the OS lets this process use the tile data (Linux: arch_prctl)
  bool amd = false;            // vendor "AuthenticAMD"
};
CpuFeatures detect_cpu_features();

// The best level this process can run: the highest compiled level the processor supports.
IsaLevel best_supported_isa();
// The levels compiled into this build that this processor supports, lowest first.
std::span<const IsaLevel> supported_isa_levels();

// The level RWKV_ISA names: "scalar", "avx2", "avx512", "avx512_vnni", "amx" or "native"
// (the default: the best supported, but amx only when named). Throws rwkv::Error naming RWKV_ISA, the value and what is allowed
// when the name is unknown or the level is above what this processor supports.
IsaLevel parse_isa_request(const std::string& value);

// One level's kernels. Pointers that a level does not have are null (the sequence-mode
// GEMM below AVX2, which then uses Eigen's).
struct KernelSet {
  IsaLevel level = IsaLevel::Scalar;

  // One token: y[r] = W[r, :] · x for rows [begin, end) (matvec_rows.hpp).
  void (*matvec_rows_f32)(const MatrixRef& w, const float* x, float* y, uint32_t begin, uint32_t end) = nullptr;
  void (*matvec_rows_f16)(const MatrixRef& w, const float* x, float* y, uint32_t begin, uint32_t end) = nullptr;
  void (*matvec_rows_bf16)(const MatrixRef& w, const float* x, float* y, uint32_t begin, uint32_t end) = nullptr;
  void (*matvec_rows_q8_0)(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t begin,
                           uint32_t end) = nullptr;
  void (*matvec_rows_q4_s)(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t begin,
                           uint32_t end) = nullptr;

  // A few tokens, each token's one-token dot products.
  void (*matmat_rows_q8_0)(const MatrixRef& w, const Int8Activation* x, uint32_t n_tokens, float* Y, uint32_t begin,
                           uint32_t end) = nullptr;
  void (*matmat_rows_q4_s)(const MatrixRef& w, const Int8Activation* x, uint32_t n_tokens, float* Y, uint32_t begin,
                           uint32_t end) = nullptr;
  void (*matmat_rows_f32_tokens)(const MatrixRef& w, const float* const* x, uint32_t n_tokens, float* Y,
                                 uint32_t begin, uint32_t end) = nullptr;
  void (*matmat_rows_f16_tokens)(const MatrixRef& w, const float* const* x, uint32_t n_tokens, float* Y,
                                 uint32_t begin, uint32_t end) = nullptr;
  void (*matmat_rows_bf16_tokens)(const MatrixRef& w, const float* const* x, uint32_t n_tokens, float* Y,
                                  uint32_t begin, uint32_t end) = nullptr;

  // The blocked float32 GEMM (AVX2 and up): tokens packed once per product.
  size_t (*packed_tokens_floats)(uint32_t n_tokens, uint32_t cols) = nullptr;
  uint32_t token_block = 0;  // pack_tokens packs whole blocks of this many tokens
  void (*pack_tokens)(const float* X, uint32_t n_tokens, uint32_t cols, uint32_t block, uint32_t col_begin,
                      uint32_t col_end, float* packed) = nullptr;
  void (*matmat_rows)(const MatrixRef& w, const float* packed_tokens, float* Y, uint32_t n_tokens, uint32_t begin,
                      uint32_t end, bool squared_relu) = nullptr;
  uint32_t matmat_row_granule = 0;
  // Up to max_small_batch tokens: each row widened once and multiplied with every token.
  void (*matmat_rows_small)(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens, uint32_t begin,
                            uint32_t end, bool squared_relu) = nullptr;
  uint32_t max_small_batch = 0;
  // Batched decoding on the FMA GEMM: tokens in groups of narrow_tokens (one vector),
  // packed by pack_tokens_narrow into (groups × narrow_tokens × cols) floats.
  uint32_t narrow_tokens = 0;
  void (*pack_tokens_narrow)(const float* X, uint32_t n_tokens, uint32_t cols, float* packed) = nullptr;
  void (*matmat_rows_narrow)(const MatrixRef& w, const float* packed_tokens, float* Y, uint32_t n_tokens,
                             uint32_t begin, uint32_t end, bool squared_relu) = nullptr;
  // The int8 GEMM for the block types (AVX-512 VNNI, and AMX for q8_0 at the amx level;
  // matmat_int8.hpp): every token's activation rounded to int8 as for one token, packed
  // once per product; any range of rows, best a multiple of int8_row_granule.
  size_t (*int8_tokens_bytes)(DType type, uint32_t n_tokens, uint32_t cols) = nullptr;
  void (*pack_int8_tokens)(DType type, const float* X, uint32_t n_tokens, uint32_t cols, uint32_t token_begin,
                           uint32_t token_end, std::byte* packed) = nullptr;
  void (*matmat_rows_int8)(const MatrixRef& w, const std::byte* packed, uint32_t n_tokens, float* Y, uint32_t begin,
                           uint32_t end, bool squared_relu) = nullptr;
  uint32_t int8_row_granule = 0;
  uint32_t (*int8_token_tile)(DType type) = nullptr;  // tokens that share a packed tile's cache lines
  // q8_0 and q4_s weights stored as int8 panels (WeightLayout::Int8Panels,
  // quant_blocks.hpp): the packing a model does once at load, and the one-token product
  // on them. Only at the AVX-512 VNNI level (the amx level reads q8_0 rows in place);
  // where null, weights keep their rows.
  void (*pack_int8_panels)(const MatrixRef& w, uint32_t panel_begin, uint32_t panel_end, std::byte* out) = nullptr;
  void (*matvec_rows_int8_panels)(const MatrixRef& w, const Int8Activation& x, float* y, uint32_t begin,
                                  uint32_t end) = nullptr;
  // float16 weights stored as panels (WeightLayout::F16Panels, matmat_f16.hpp): the
  // packing at load, and every product on them, one token included. AVX-512 levels only;
  // where null, float16 weights keep their rows.
  void (*pack_f16_panels)(const MatrixRef& w, uint32_t panel_begin, uint32_t panel_end, std::byte* out) = nullptr;
  void (*matmat_rows_f16_panels)(const MatrixRef& w, const float* X, uint32_t n_tokens, float* Y, uint32_t begin,
                                 uint32_t end, bool squared_relu) = nullptr;
  // bfloat16 weights on AVX512_BF16 (matmat_bf16.hpp): the tokens rounded to bfloat16 and
  // packed once per product; null where the processor lacks AVX512_BF16 or is not AMD's
  // (kernel_set.cpp says why).
  size_t (*bf16_tokens_values)(uint32_t n_tokens, uint32_t cols) = nullptr;
  void (*pack_bf16_tokens)(const float* X, uint32_t n_tokens, uint32_t cols, uint32_t token_begin, uint32_t token_end,
                           uint16_t* packed) = nullptr;
  void (*matmat_rows_bf16)(const MatrixRef& w, const uint16_t* packed, uint32_t n_tokens, float* Y, uint32_t begin,
                           uint32_t end, bool squared_relu) = nullptr;
  uint32_t bf16_row_granule = 0;
  // Below AVX2: Eigen's GEMM on float32 weights, or on blocks of rows widened to float32.
  void (*matmat_rows_eigen_f32)(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens, uint32_t begin,
                                uint32_t end) = nullptr;
  void (*matmat_rows_eigen_dequantized)(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens,
                                        uint32_t begin, uint32_t end) = nullptr;

  void (*dequantize_block)(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, uint32_t col_begin,
                           uint32_t col_end, float* out) = nullptr;
  // quantize_activation's arithmetic into buffers already sized for n values.
  void (*quantize_activation)(const float* x, uint32_t n, uint32_t group_values, int8_t* quants, float* scales,
                              int16_t* block_sums) = nullptr;

  void (*exp_inplace)(float* x, uint32_t n) = nullptr;
  void (*sigmoid_inplace)(float* x, uint32_t n) = nullptr;
  void (*tanh_inplace)(float* x, uint32_t n) = nullptr;
  // Sums over a vector's values in vector-wide partial sums (a float sum in a plain loop
  // is one chain of dependent adds: the compiler may not reorder it).
  float (*dot)(const float* a, const float* b, uint32_t n) = nullptr;
  float (*dot3)(const float* a, const float* b, const float* c, uint32_t n) = nullptr;
  void (*token_shift_mix)(const float* cur, const float* prev, const float* mix, float* out, uint32_t n) = nullptr;
  void (*token_shift_blend)(const float* cur, const float* prev, const float* mix, float* out, uint32_t n) = nullptr;
  void (*add_inplace)(float* x, const float* y, size_t n) = nullptr;
  void (*add_product)(float* x, const float* a, const float* b, size_t n) = nullptr;
  void (*normalize)(const float* x, const float* weight, const float* bias, float* out, uint32_t n,
                    float eps) = nullptr;
  void (*wkv4_step)(const float* k, const float* v, const float* log_decay, const float* bonus, float* aa, float* bb,
                    float* pp, float* wkv, uint32_t C) = nullptr;
  void (*wkv5_head_step)(const float* r, const float* k, const float* v, const float* w, const float* u, float* S,
                         float* y, uint32_t N) = nullptr;
  void (*wkv7_head_step)(const float* r, const float* w, const float* k, const float* v, const float* kk,
                         const float* a, float* S, float* y, uint32_t N, uint32_t rows) = nullptr;
  void (*wkv7_head_steps)(const float* r, const float* w, const float* k, const float* v, const float* kk,
                          const float* a, size_t stride, uint32_t n_tokens, float* S, float* y, uint32_t N,
                          uint32_t rows) = nullptr;

  // Machine probes (machine_limits.cpp): a streaming read of n words with the widest
  // loads, returning their XOR; `iterations` rounds of independent FMAs on registers at
  // the widest float width, returning the FLOPs done; the same for int8 dot products
  // (the integer multiply-adds the int8 kernels use; at the amx level iterations / 8
  // rounds of four tile products), returning the int8 operations.
  uint64_t (*stream_read)(const uint64_t* words, size_t n) = nullptr;
  double (*fma_peak_loop)(uint32_t iterations, float* sink) = nullptr;
  double (*int8_peak_loop)(uint32_t iterations, int32_t* sink) = nullptr;
  const char* fma_unit = "";   // e.g. "avx512 fma"
  const char* int8_unit = "";  // e.g. "avx512 vnni", "amx int8 (tdpbssd)"; "" when int8_peak_loop is null
  // The same for the bf16 dot products of matmat_rows_bf16 (FLOPs); null with it.
  double (*bf16_peak_loop)(uint32_t iterations, float* sink) = nullptr;
  const char* bf16_unit = "";  // "avx512 bf16 (vdpbf16ps)"; "" when bf16_peak_loop is null
};

// The kernels in use. The first call chooses them (RWKV_ISA, else the best supported).
const KernelSet& kernels();
// Switches every later call to `level`'s kernels (tests; not while kernels run).
// Throws rwkv::Error when this build or processor lacks it.
void use_kernels(IsaLevel level);

// While alive, kernels() is `level`'s; restores the previous level after (tests).
class ScopedKernels {
 public:
  explicit ScopedKernels(IsaLevel level);
  ~ScopedKernels();
  ScopedKernels(const ScopedKernels&) = delete;
  ScopedKernels& operator=(const ScopedKernels&) = delete;

 private:
  IsaLevel previous_;
};

}  // namespace rwkv
