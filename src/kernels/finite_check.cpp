#include "kernels/finite_check.hpp"

#include <cmath>
#include <cstring>

#include "kernels/quant_blocks.hpp"

namespace rwkv {

namespace {

// Values whose exponent bits are all ones are NaN or infinite. The scan runs in chunks
// without an early exit and with an integer accumulator, so that the compiler vectorizes
// it (about 20 GB/s a core); only a chunk that holds a bad value is searched again.
template <typename Bits, Bits kExponent>
uint64_t first_all_ones_exponent(const void* data, uint64_t count) {
  constexpr uint64_t kChunk = 4096;
  const Bits* values = static_cast<const Bits*>(data);
  for (uint64_t begin = 0; begin < count; begin += kChunk) {
    const uint64_t n = begin + kChunk < count ? kChunk : count - begin;
    const Bits* chunk = values + begin;
    Bits bad = 0;
    for (uint64_t i = 0; i < n; ++i) bad |= static_cast<Bits>((chunk[i] & kExponent) == kExponent);
    if (bad == 0) continue;
    for (uint64_t i = 0; i < n; ++i) {
      if ((chunk[i] & kExponent) == kExponent) return begin + i;
    }
  }
  return kAllFinite;
}

bool finite_product(float step, float largest_multiple) { return std::isfinite(step * largest_multiple); }

}  // namespace

uint64_t find_non_finite(DType t, const void* data, uint64_t bytes) {
  switch (t) {
    case DType::F32: return first_all_ones_exponent<uint32_t, 0x7f800000u>(data, bytes / 4);
    case DType::F16: return first_all_ones_exponent<uint16_t, 0x7c00u>(data, bytes / 2);
    case DType::BF16: return first_all_ones_exponent<uint16_t, 0x7f80u>(data, bytes / 2);
    case DType::Q8_0: {
      const uint64_t n = bytes / sizeof(BlockQ8_0);
      for (uint64_t b = 0; b < n; ++b) {
        uint16_t scale;
        std::memcpy(&scale, static_cast<const std::byte*>(data) + b * sizeof(BlockQ8_0), sizeof(scale));
        if ((scale & 0x7c00u) == 0x7c00u) return b;
      }
      return kAllFinite;
    }
    case DType::Q4_S: {
      const uint64_t n = bytes / sizeof(BlockQ4_S);
      for (uint64_t b = 0; b < n; ++b) {
        float steps[2];
        std::memcpy(steps, static_cast<const std::byte*>(data) + b * sizeof(BlockQ4_S), sizeof(steps));
        // Levels reach 15 * scale with scales up to 255; minimums reach 128 * min_step.
        if (!finite_product(steps[0], 255.0f * 15.0f) || !finite_product(steps[1], 128.0f)) return b;
      }
      return kAllFinite;
    }
  }
  return 0;
}

}  // namespace rwkv
