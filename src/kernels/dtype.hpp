// Types of stored weights: element types (one value per element) and block types
// (groups of values sharing scales; see kernels/quant_blocks.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace rwkv {

// Codes are stored in model files: append new types, never renumber. Code 4 was q4_1m
// (blocks of 32 with binary16 scale and minimum), replaced by q4_s before any release.
enum class DType : uint8_t { F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3, Q4_S = 5 };

// The type of a stored code; throws rwkv::Error (naming `what`) for an unknown code.
DType dtype_from_code(uint8_t code, const std::string& what);

const char* dtype_name(DType t);  // "f32", "f16", "bf16", "q8_0", "q4_s"
// Inverse of dtype_name; throws rwkv::Error for an unknown name.
DType parse_dtype(const std::string& name);
// "f32, f16, bf16, q8_0 or q4_s", for messages and --help.
std::string dtype_names();
// Every type, in the order dtype_names() lists them.
std::span<const DType> all_dtypes();

// Values that share one block (1 for element types) and the bytes of one block.
uint32_t dtype_block_values(DType t);
size_t dtype_block_bytes(DType t);
bool dtype_is_blocked(DType t);

// Bytes of one stored row of `cols` values: a whole number of blocks, the last one
// padded with zeros, so that every row starts on a block.
uint64_t dtype_row_bytes(DType t, uint64_t cols);
// Bytes of a tensor of `shape` (rows along the last dimension); 0 when it would overflow.
uint64_t dtype_tensor_bytes(DType t, const std::vector<uint64_t>& shape);

}  // namespace rwkv
