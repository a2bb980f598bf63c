// This level's KernelSet: the addresses of its copies of the kernels (kernels/isa.hpp).
#include "kernels/matmat_bf16.hpp"
#include "kernels/matmat_f16.hpp"
#include "kernels/matmat_int8.hpp"
#include "kernels/matvec_rows.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

KernelSet make_kernel_set() {
  KernelSet k;
#if !defined(RWKV_HAVE_AVX2)
  k.level = IsaLevel::Scalar;
#elif !defined(RWKV_HAVE_AVX512)
  k.level = IsaLevel::Avx2;
#elif !defined(RWKV_HAVE_AVX512_VNNI)
  k.level = IsaLevel::Avx512;
#elif !defined(RWKV_HAVE_AMX)
  k.level = IsaLevel::Avx512Vnni;
#else
  k.level = IsaLevel::Amx;
#endif
  k.matvec_rows_f32 = matvec_rows_f32;
  k.matvec_rows_f16 = matvec_rows_f16;
  k.matvec_rows_bf16 = matvec_rows_bf16;
  k.matvec_rows_q8_0 = matvec_rows_q8_0;
  k.matvec_rows_q4_s = matvec_rows_q4_s;
  k.matmat_rows_q8_0 = matmat_rows_q8_0;
  k.matmat_rows_q4_s = matmat_rows_q4_s;
  k.matmat_rows_f32_tokens = matmat_rows_f32_tokens;
  k.matmat_rows_f16_tokens = matmat_rows_f16_tokens;
  k.matmat_rows_bf16_tokens = matmat_rows_bf16_tokens;
#ifdef RWKV_HAVE_AVX2
  k.packed_tokens_floats = packed_tokens_floats;
  k.token_block = kTokenBlock;
  k.pack_tokens = pack_tokens;
  k.matmat_rows = matmat_rows;
  k.matmat_row_granule = kMatmatRowGranule;
  k.matmat_rows_small = matmat_rows_small;
  k.max_small_batch = kMaxSmallBatch;
  k.narrow_tokens = kNarrowTokens;
  k.pack_tokens_narrow = pack_tokens_narrow;
  k.matmat_rows_narrow = matmat_rows_narrow;
#ifdef RWKV_HAVE_AVX512
  k.pack_f16_panels = pack_f16_panels;
  k.matmat_rows_f16_panels = matmat_rows_f16_panels;
#endif
#ifdef RWKV_HAVE_AVX512_VNNI
  k.int8_tokens_bytes = int8_tokens_bytes;
  k.pack_int8_tokens = pack_int8_tokens;
  k.matmat_rows_int8 = matmat_rows_int8;
  k.int8_row_granule = int8_row_granule();
  k.int8_token_tile = int8_token_tile;
#ifndef RWKV_HAVE_AMX
  k.pack_int8_panels = pack_int8_panels;
  k.matvec_rows_int8_panels = matvec_rows_int8_panels;
#endif
#endif
#ifdef RWKV_HAVE_BF16_DOT
  // Only where vdpbf16ps outruns the FMA it replaces: on AMD Zen 5 its peak is 1.86× the
  // FMA's (790 against 425 GFLOP/s on 2 threads) and bf16 prefill and batches gain; on
  // Intel Sapphire Rapids it measured about half the FMA's (108-156 against 218-330 on 2
  // threads, 663 against 1,249 on 16) and 0.1B bf16 prefill lost 7-14% (batch 16 gained
  // 10%). Other AMD and Intel generations are not measured. (Intel's bf16 unit for
  // matrices is AMX.)
  const CpuFeatures cpu = detect_cpu_features();
  const auto use_bf16_products = [&k](auto matmat, uint32_t granule, auto peak_loop, const char* unit) {
    k.bf16_tokens_values = bf16_tokens_values;
    k.pack_bf16_tokens = pack_bf16_tokens;
    k.matmat_rows_bf16 = matmat;
    k.bf16_row_granule = granule;
    k.bf16_peak_loop = peak_loop;
    k.bf16_unit = unit;
  };
  if (cpu.avx512_bf16 && cpu.amd) {
    use_bf16_products(matmat_rows_bf16, bf16_row_granule(), bf16_peak_loop, "avx512 bf16 (vdpbf16ps)");
  }
#ifdef RWKV_HAVE_AMX_BF16
  // At the amx level (chosen only where the tile data permission was granted) bf16
  // products with more than two tokens go to the AMX tiles, on any vendor's processor.
  if (cpu.amx_bf16 && cpu.avx512_bf16) {
    use_bf16_products(matmat_rows_bf16_amx, bf16_amx_row_granule(), amx_bf16_peak_loop, "amx bf16 (tdpbf16ps)");
  }
#endif
#endif
#else
  k.matmat_rows_eigen_f32 = matmat_rows_f32;
  k.matmat_rows_eigen_dequantized = matmat_rows_dequantized;
#endif
  k.dequantize_block = dequantize_block;
  k.quantize_activation = quantize_activation;
  k.exp_inplace = exp_inplace;
  k.sigmoid_inplace = sigmoid_inplace;
  k.tanh_inplace = tanh_inplace;
  k.dot = dot;
  k.dot3 = dot3;
  k.token_shift_mix = token_shift_mix;
  k.token_shift_blend = token_shift_blend;
  k.add_inplace = add_inplace;
  k.add_product = add_product;
  k.normalize = normalize;
  k.wkv4_step = wkv4_step;
  k.wkv5_head_step = wkv5_head_step;
  k.wkv7_head_step = wkv7_head_step;
  k.wkv7_head_steps = wkv7_head_steps;
  k.stream_read = stream_read;
  k.fma_peak_loop = fma_peak_loop;
  k.int8_peak_loop = kInt8Unit[0] != '\0' ? int8_peak_loop : nullptr;
  k.fma_unit = kFmaUnit;
  k.int8_unit = kInt8Unit;
  return k;
}

}  // namespace

const KernelSet& kernel_set() {
  static const KernelSet set = make_kernel_set();
  return set;
}

}  // namespace rwkv::RWKV_KERNEL_NS
