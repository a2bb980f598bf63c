// Element types of stored weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace rwkv {

enum class DType : uint8_t { F32 = 0, F16 = 1 };

const char* dtype_name(DType t);  // "f32", "f16"
size_t dtype_size(DType t);
// Inverse of dtype_name; throws rwkv::Error for an unknown name.
DType parse_dtype(const std::string& name);

}  // namespace rwkv
