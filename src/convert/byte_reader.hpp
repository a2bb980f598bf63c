// Bounds-checked reads of little-endian integers from untrusted bytes (zip
// headers, pickle operands). Callers check `fits` first, so reads never leave the span.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace rwkv::convert {

inline bool fits(std::span<const std::byte> bytes, uint64_t offset, uint64_t length) {
  return offset <= bytes.size() && length <= bytes.size() - offset;
}

template <typename UInt>
UInt load_le(std::span<const std::byte> bytes, uint64_t offset) {
  UInt value = 0;
  for (size_t i = 0; i < sizeof(UInt); ++i) {
    value |= static_cast<UInt>(static_cast<UInt>(bytes[offset + i]) << (8 * i));
  }
  return value;
}

inline std::string_view as_chars(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace rwkv::convert
