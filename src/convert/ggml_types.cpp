#include "convert/ggml_types.hpp"

#include <array>
#include <cstring>

#include <fmt/format.h>

#include "kernels/half.hpp"
#include "rwkv/error.hpp"

namespace rwkv::convert {

namespace {

constexpr uint32_t kSuperBlock = 256;  // QK_K: values per K-quant super-block

// Each multiply and add below is its own statement, as in ggml's reference code compiled
// without contraction: a compiler may not fuse them into an FMA, which would round once
// instead of twice and change the last bit.

uint8_t byte_at(const std::byte* p, size_t i) { return static_cast<uint8_t>(p[i]); }
int8_t signed_at(const std::byte* p, size_t i) { return static_cast<int8_t>(p[i]); }
float half_at(const std::byte* p, size_t i) {
  return fp16_to_fp32(static_cast<uint16_t>(byte_at(p, i) | (byte_at(p, i + 1) << 8)));
}

// block_q4_0: d (f16), then 16 bytes whose low nibbles are values 0..15 and high
// nibbles values 16..31; value = (q - 8) * d.
void block_q4_0(const std::byte* b, float* y) {
  const float d = half_at(b, 0);
  for (size_t j = 0; j < 16; ++j) {
    const uint8_t q = byte_at(b, 2 + j);
    y[j] = static_cast<float>((q & 0x0f) - 8) * d;
    y[j + 16] = static_cast<float>((q >> 4) - 8) * d;
  }
}

// block_q4_1: d and m (f16), 16 bytes of nibbles as in Q4_0; value = q * d + m.
void block_q4_1(const std::byte* b, float* y) {
  const float d = half_at(b, 0);
  const float m = half_at(b, 2);
  for (size_t j = 0; j < 16; ++j) {
    const uint8_t q = byte_at(b, 4 + j);
    const float low = static_cast<float>(q & 0x0f) * d;
    const float high = static_cast<float>(q >> 4) * d;
    y[j] = low + m;
    y[j + 16] = high + m;
  }
}

// The fifth bits of Q5_0/Q5_1: a little-endian u32 whose bit i belongs to value i.
uint32_t high_bits(const std::byte* p) {
  return static_cast<uint32_t>(byte_at(p, 0)) | static_cast<uint32_t>(byte_at(p, 1)) << 8 |
         static_cast<uint32_t>(byte_at(p, 2)) << 16 | static_cast<uint32_t>(byte_at(p, 3)) << 24;
}

// block_q5_0: d (f16), qh (4 bytes), 16 bytes of nibbles; value = (q | h << 4) - 16, times d.
void block_q5_0(const std::byte* b, float* y) {
  const float d = half_at(b, 0);
  const uint32_t qh = high_bits(b + 2);
  for (size_t j = 0; j < 16; ++j) {
    const uint8_t q = byte_at(b, 6 + j);
    const int low = static_cast<int>((q & 0x0f) | (((qh >> j) & 1u) << 4)) - 16;
    const int high = static_cast<int>((q >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16;
    y[j] = static_cast<float>(low) * d;
    y[j + 16] = static_cast<float>(high) * d;
  }
}

// block_q5_1: d and m (f16), qh, 16 bytes of nibbles; value = (q | h << 4) * d + m.
void block_q5_1(const std::byte* b, float* y) {
  const float d = half_at(b, 0);
  const float m = half_at(b, 2);
  const uint32_t qh = high_bits(b + 4);
  for (size_t j = 0; j < 16; ++j) {
    const uint8_t q = byte_at(b, 8 + j);
    const float low = static_cast<float>((q & 0x0f) | (((qh >> j) & 1u) << 4)) * d;
    const float high = static_cast<float>((q >> 4) | (((qh >> (j + 16)) & 1u) << 4)) * d;
    y[j] = low + m;
    y[j + 16] = high + m;
  }
}

// block_q8_0: d (f16), 32 signed bytes; value = q * d.
void block_q8_0(const std::byte* b, float* y) {
  const float d = half_at(b, 0);
  for (size_t j = 0; j < 32; ++j) y[j] = static_cast<float>(signed_at(b, 2 + j)) * d;
}

// block_q2_K: 16 scale bytes (low nibble: scale, high nibble: min of a sub-block of 16),
// 64 bytes of 2-bit values, d and dmin (f16). Each 32 bytes of qs hold 128 values: bits
// 2k..2k+1 of byte l are value 32k + l. value = d * scale * q - dmin * min.
void block_q2_K(const std::byte* b, float* y) {
  const std::byte* scales = b;
  const std::byte* qs = b + 16;
  const float d = half_at(b, 80);
  const float dmin = half_at(b, 82);
  for (size_t e = 0; e < kSuperBlock; ++e) {
    const uint8_t sc = byte_at(scales, e / 16);
    const uint32_t q = (byte_at(qs, (e / 128) * 32 + e % 32) >> (2 * ((e % 128) / 32))) & 3u;
    const float step = d * static_cast<float>(sc & 0x0f);
    const float offset = dmin * static_cast<float>(sc >> 4);
    const float scaled = step * static_cast<float>(q);
    y[e] = scaled - offset;
  }
}

// block_q3_K: hmask (32 bytes: bit k of byte l is the high bit of value 32k + l), qs (64
// bytes of 2-bit values laid out as in Q2_K), 12 bytes of 6-bit scales, d (f16).
// value = d * (scale - 32) * (q - (high bit ? 0 : 4)).
void block_q3_K(const std::byte* b, float* y) {
  const std::byte* hmask = b;
  const std::byte* qs = b + 32;
  const std::byte* packed = b + 96;
  const float d = half_at(b, 108);
  // Scale s: its low 4 bits are a nibble of bytes 0..7 (low nibbles for s < 8, high
  // nibbles for s >= 8), its high 2 bits are bits 2*(s/4).. of byte 8 + s % 4.
  std::array<int, 16> scales{};
  for (size_t s = 0; s < 16; ++s) {
    const uint32_t low = s < 8 ? byte_at(packed, s) & 0x0fu : byte_at(packed, s - 8) >> 4;
    const uint32_t high = (byte_at(packed, 8 + s % 4) >> (2 * (s / 4))) & 3u;
    scales[s] = static_cast<int>(low | (high << 4)) - 32;
  }
  for (size_t e = 0; e < kSuperBlock; ++e) {
    const int q = (byte_at(qs, (e / 128) * 32 + e % 32) >> (2 * ((e % 128) / 32))) & 3;
    const bool high = ((byte_at(hmask, e % 32) >> (e / 32)) & 1u) != 0;
    const float step = d * static_cast<float>(scales[e / 16]);
    y[e] = step * static_cast<float>(high ? q : q - 4);
  }
}

// The 6-bit scale and min of sub-block j (0..7) of Q4_K and Q5_K, packed in 12 bytes:
// sub-blocks 0..3 in the low 6 bits of bytes 0..3 (scales) and 4..7 (mins); 4..7 in the
// nibbles of bytes 8..11 (low: scale, high: min) topped by the 2 high bits of bytes 0..7.
struct ScaleMin {
  uint8_t scale;
  uint8_t min;
};
ScaleMin k_scale_min(const std::byte* packed, size_t j) {
  if (j < 4) return {static_cast<uint8_t>(byte_at(packed, j) & 63), static_cast<uint8_t>(byte_at(packed, j + 4) & 63)};
  return {static_cast<uint8_t>((byte_at(packed, j + 4) & 0x0f) | ((byte_at(packed, j - 4) >> 6) << 4)),
          static_cast<uint8_t>((byte_at(packed, j + 4) >> 4) | ((byte_at(packed, j) >> 6) << 4))};
}

// block_q4_K: d and dmin (f16), 12 bytes of scales and mins, 128 bytes of nibbles: each
// 32 bytes hold 64 values, the low nibbles the first 32. value = d*scale*q - dmin*min.
void block_q4_K(const std::byte* b, float* y) {
  const float d = half_at(b, 0);
  const float dmin = half_at(b, 2);
  const std::byte* packed = b + 4;
  const std::byte* qs = b + 16;
  for (size_t sub = 0; sub < 8; ++sub) {
    const ScaleMin sm = k_scale_min(packed, sub);
    const float step = d * static_cast<float>(sm.scale);
    const float offset = dmin * static_cast<float>(sm.min);
    const std::byte* q = qs + (sub / 2) * 32;
    const unsigned shift = (sub % 2) * 4;
    for (size_t l = 0; l < 32; ++l) {
      const float scaled = step * static_cast<float>((byte_at(q, l) >> shift) & 0x0f);
      y[sub * 32 + l] = scaled - offset;
    }
  }
}

// block_q5_K: as Q4_K with qh (32 bytes) before the nibbles: bit `sub` of qh[l] is the
// fifth bit of value l of sub-block `sub`.
void block_q5_K(const std::byte* b, float* y) {
  const float d = half_at(b, 0);
  const float dmin = half_at(b, 2);
  const std::byte* packed = b + 4;
  const std::byte* qh = b + 16;
  const std::byte* qs = b + 48;
  for (size_t sub = 0; sub < 8; ++sub) {
    const ScaleMin sm = k_scale_min(packed, sub);
    const float step = d * static_cast<float>(sm.scale);
    const float offset = dmin * static_cast<float>(sm.min);
    const std::byte* q = qs + (sub / 2) * 32;
    const unsigned shift = (sub % 2) * 4;
    for (size_t l = 0; l < 32; ++l) {
      const uint32_t value = ((byte_at(q, l) >> shift) & 0x0fu) | (((byte_at(qh, l) >> sub) & 1u) << 4);
      const float scaled = step * static_cast<float>(value);
      y[sub * 32 + l] = scaled - offset;
    }
  }
}

// block_q6_K: ql (128 bytes of low nibbles), qh (64 bytes of 2-bit high parts), 16
// signed 8-bit scales, d (f16). Each half of 128 values uses 64 bytes of ql and 32 of
// qh: value l + 32k takes the low nibble (k = 0, 1) or high nibble (k = 2, 3) of
// ql[l + 32 * (k % 2)] and bits 2k..2k+1 of qh[l]. value = d * scale * (q - 32).
void block_q6_K(const std::byte* b, float* y) {
  const std::byte* ql = b;
  const std::byte* qh = b + 128;
  const std::byte* scales = b + 192;
  const float d = half_at(b, 208);
  for (size_t e = 0; e < kSuperBlock; ++e) {
    const size_t half = e / 128, k = (e % 128) / 32, l = e % 32;
    const uint32_t low = (byte_at(ql, half * 64 + l + 32 * (k % 2)) >> (4 * (k / 2))) & 0x0fu;
    const uint32_t high = (byte_at(qh, half * 32 + l) >> (2 * k)) & 3u;
    const int q = static_cast<int>(low | (high << 4)) - 32;
    const float step = d * static_cast<float>(signed_at(scales, e / 16));
    y[e] = step * static_cast<float>(q);
  }
}

void block_f32(const std::byte* b, float* y) { std::memcpy(y, b, sizeof(float)); }
void block_f16(const std::byte* b, float* y) { *y = half_at(b, 0); }
void block_bf16(const std::byte* b, float* y) {
  *y = bf16_to_fp32(static_cast<uint16_t>(byte_at(b, 0) | (byte_at(b, 1) << 8)));
}

struct Codec {
  uint32_t type;
  GgmlTypeInfo info;
  void (*block)(const std::byte*, float*);
};

constexpr Codec kCodecs[] = {
    {kGgmlF32, {"F32", 1, 4}, block_f32},
    {kGgmlF16, {"F16", 1, 2}, block_f16},
    {kGgmlBF16, {"BF16", 1, 2}, block_bf16},
    {kGgmlQ4_0, {"Q4_0", 32, 18}, block_q4_0},
    {kGgmlQ4_1, {"Q4_1", 32, 20}, block_q4_1},
    {kGgmlQ5_0, {"Q5_0", 32, 22}, block_q5_0},
    {kGgmlQ5_1, {"Q5_1", 32, 24}, block_q5_1},
    {kGgmlQ8_0, {"Q8_0", 32, 34}, block_q8_0},
    {kGgmlQ2_K, {"Q2_K", 256, 84}, block_q2_K},
    {kGgmlQ3_K, {"Q3_K", 256, 110}, block_q3_K},
    {kGgmlQ4_K, {"Q4_K", 256, 144}, block_q4_K},
    {kGgmlQ5_K, {"Q5_K", 256, 176}, block_q5_K},
    {kGgmlQ6_K, {"Q6_K", 256, 210}, block_q6_K},
};

const Codec* find_codec(uint32_t type) {
  for (const Codec& codec : kCodecs) {
    if (codec.type == type) return &codec;
  }
  return nullptr;
}

const Codec& require_codec(uint32_t type) {
  const Codec* codec = find_codec(type);
  if (codec == nullptr) {
    const char* name = ggml_type_name(type);
    throw Error(fmt::format("ggml type {} ({}) is not supported", type, name != nullptr ? name : "unknown"));
  }
  return *codec;
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t type) {
  const Codec* codec = find_codec(type);
  return codec == nullptr ? nullptr : &codec->info;
}

const char* ggml_type_name(uint32_t type) {
  static constexpr const char* kNames[] = {
      "F32",     "F16",    "Q4_0",   "Q4_1",  "Q4_2", "Q4_3",   "Q5_0",    "Q5_1",    "Q8_0",    "Q8_1",
      "Q2_K",    "Q3_K",   "Q4_K",   "Q5_K",  "Q6_K", "Q8_K",   "IQ2_XXS", "IQ2_XS",  "IQ3_XXS", "IQ1_S",
      "IQ4_NL",  "IQ3_S",  "IQ2_S",  "IQ4_XS", "I8",  "I16",    "I32",     "I64",     "F64",     "IQ1_M",
      "BF16",    "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8",
      "MXFP4"};
  return type < std::size(kNames) ? kNames[type] : nullptr;
}

uint64_t ggml_bytes(uint32_t type, uint64_t elements) {
  const GgmlTypeInfo& info = require_codec(type).info;
  if (elements % info.block_elements != 0) {
    throw Error(fmt::format("{} values of ggml type {} are not a whole number of its {}-value blocks", elements,
                            info.name, info.block_elements));
  }
  const uint64_t blocks = elements / info.block_elements;
  if (blocks > UINT64_MAX / info.block_bytes) {
    throw Error(fmt::format("{} values of ggml type {} take more bytes than a 64-bit size holds", elements, info.name));
  }
  return blocks * info.block_bytes;
}

void dequantize_ggml(uint32_t type, const std::byte* data, uint64_t elements, float* out) {
  const Codec& codec = require_codec(type);
  const uint64_t blocks = ggml_bytes(type, elements) / codec.info.block_bytes;
  for (uint64_t i = 0; i < blocks; ++i) {
    codec.block(data + i * codec.info.block_bytes, out + i * codec.info.block_elements);
  }
}

}  // namespace rwkv::convert
