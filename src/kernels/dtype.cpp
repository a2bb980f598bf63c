#include "kernels/dtype.hpp"

#include <fmt/format.h>

#include "rwkv/error.hpp"

namespace rwkv {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
  }
  return "unknown";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
  }
  return 0;
}

DType parse_dtype(const std::string& name) {
  if (name == "f32") return DType::F32;
  if (name == "f16") return DType::F16;
  throw Error(fmt::format("unknown weight type '{}': expected f32 or f16", name));
}

}  // namespace rwkv
