#include "kernels/dtype.hpp"

#include <fmt/format.h>

#include <limits>

#include "kernels/quant_blocks.hpp"
#include "rwkv/error.hpp"

namespace rwkv {

namespace {
constexpr DType kAllTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_S};
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::Q8_0: return "q8_0";
    case DType::Q4_S: return "q4_s";
  }
  return "unknown";
}

std::span<const DType> all_dtypes() { return kAllTypes; }

std::string dtype_names() {
  std::string out;
  for (size_t i = 0; i < std::size(kAllTypes); ++i) {
    if (i > 0) out += i + 1 == std::size(kAllTypes) ? " or " : ", ";
    out += dtype_name(kAllTypes[i]);
  }
  return out;
}

DType parse_dtype(const std::string& name) {
  for (DType t : kAllTypes) {
    if (name == dtype_name(t)) return t;
  }
  throw Error(fmt::format("unknown weight type '{}': expected {}", name, dtype_names()));
}

DType dtype_from_code(uint8_t code, const std::string& what) {
  for (DType t : kAllTypes) {
    if (code == static_cast<uint8_t>(t)) return t;
  }
  if (code == 4) {
    throw Error(fmt::format("{} has weight type 4 (q4_1m), which this version no longer reads: convert the checkpoint "
                            "again (q4_s replaces it)",
                            what));
  }
  throw Error(fmt::format("{} has unknown data type {}: expected one of {}", what, code, dtype_names()));
}

uint32_t dtype_block_values(DType t) {
  if (t == DType::Q8_0) return kQuantBlockValues;
  if (t == DType::Q4_S) return kSuperBlockValues;
  return 1;
}

size_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16:
    case DType::BF16: return 2;
    case DType::Q8_0: return sizeof(BlockQ8_0);
    case DType::Q4_S: return sizeof(BlockQ4_S);
  }
  return 0;
}

bool dtype_is_blocked(DType t) { return t == DType::Q8_0 || t == DType::Q4_S; }

uint64_t dtype_row_bytes(DType t, uint64_t cols) {
  const uint64_t per_block = dtype_block_values(t);
  return (cols + per_block - 1) / per_block * dtype_block_bytes(t);
}

uint64_t dtype_tensor_bytes(DType t, const std::vector<uint64_t>& shape) {
  if (shape.empty()) return dtype_block_bytes(t);
  uint64_t bytes = dtype_row_bytes(t, shape.back());
  for (size_t i = 0; i + 1 < shape.size(); ++i) {
    if (shape[i] != 0 && bytes > std::numeric_limits<uint64_t>::max() / shape[i]) return 0;
    bytes *= shape[i];
  }
  return bytes;
}

}  // namespace rwkv
