// The tensor types of ggml (llama.cpp's tensor library) as GGUF files store them: the
// type numbers of ggml.h's `enum ggml_type`, the block layouts of ggml-common.h, and
// dequantization that gives the same floats as ggml's reference dequantize_row_*
// (ggml-quants.c), bit for bit.
//
//   const GgmlTypeInfo* info = ggml_type_info(tensor.type);   // nullptr: not supported
//   std::vector<float> values(elements);
//   dequantize_ggml(tensor.type, tensor.data, elements, values.data());
#pragma once

#include <cstddef>
#include <cstdint>

namespace rwkv::convert {

// Type numbers from ggml.h (4 and 5 were Q4_2 and Q4_3, long removed).
inline constexpr uint32_t kGgmlF32 = 0;
inline constexpr uint32_t kGgmlF16 = 1;
inline constexpr uint32_t kGgmlQ4_0 = 2;
inline constexpr uint32_t kGgmlQ4_1 = 3;
inline constexpr uint32_t kGgmlQ5_0 = 6;
inline constexpr uint32_t kGgmlQ5_1 = 7;
inline constexpr uint32_t kGgmlQ8_0 = 8;
inline constexpr uint32_t kGgmlQ8_1 = 9;
inline constexpr uint32_t kGgmlQ2_K = 10;
inline constexpr uint32_t kGgmlQ3_K = 11;
inline constexpr uint32_t kGgmlQ4_K = 12;
inline constexpr uint32_t kGgmlQ5_K = 13;
inline constexpr uint32_t kGgmlQ6_K = 14;
inline constexpr uint32_t kGgmlQ8_K = 15;
inline constexpr uint32_t kGgmlBF16 = 30;

struct GgmlTypeInfo {
  const char* name;         // as ggml names it: "F32", "Q4_K", ...
  uint32_t block_elements;  // values per block (1 for F32, F16, BF16)
  uint32_t block_bytes;     // bytes per block
};

// The layout of a type this reader can dequantize: F32, F16, BF16, Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K; nullptr for any other number.
const GgmlTypeInfo* ggml_type_info(uint32_t type);

// ggml's name of any type number it defines ("IQ2_XXS", "I32", ...), supported or not,
// for messages; nullptr for a number ggml does not define.
const char* ggml_type_name(uint32_t type);

// Bytes that `elements` values of `type` take. Throws rwkv::Error if the type is not
// supported, `elements` is not a whole number of blocks, or the size overflows.
uint64_t ggml_bytes(uint32_t type, uint64_t elements);

// Dequantizes `elements` values (a whole number of blocks, as ggml_bytes checks) from
// `data`, which holds ggml_bytes(type, elements) bytes at any alignment, into `out`.
// Throws rwkv::Error as ggml_bytes does.
void dequantize_ggml(uint32_t type, const std::byte* data, uint64_t elements, float* out);

}  // namespace rwkv::convert
