// ggml's block types: each test picks the values of a block (scales, mins, quants),
// packs them the way ggml's quantize_row_*_ref functions lay them out (the inverse of
// the reader's unpacking, written separately here), and checks every dequantized value
// bit for bit against the format's formula, evaluated in ggml's order of operations.
#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "convert/ggml_types.hpp"
#include "kernels/half.hpp"
#include "rwkv/error.hpp"

namespace {

using namespace rwkv::convert;  // NOLINT: the ggml type constants
using rwkv::fp16_to_fp32;

using Block = std::vector<uint8_t>;

// A finite half with a random sign, mantissa and an exponent in [2^-10, 2^5).
uint16_t random_half(std::mt19937& rng) {
  const uint32_t sign = rng() & 1u;
  const uint32_t exponent = 5 + rng() % 16;
  const uint32_t mantissa = rng() & 0x3ffu;
  return static_cast<uint16_t>(sign << 15 | exponent << 10 | mantissa);
}

// A half in [1, 2) or (-2, -1]: scales of one magnitude, so that a flipped low bit of
// one cannot vanish in the rounding of a sum dominated by another.
uint16_t unit_half(std::mt19937& rng) {
  return static_cast<uint16_t>((rng() & 1u) << 15 | 15u << 10 | (rng() & 0x3ffu));
}

void put_half(Block& b, size_t at, uint16_t h) {
  b[at] = static_cast<uint8_t>(h & 0xff);
  b[at + 1] = static_cast<uint8_t>(h >> 8);
}

std::vector<float> dequantize(uint32_t type, const std::vector<uint8_t>& bytes) {
  const GgmlTypeInfo* info = ggml_type_info(type);
  EXPECT_NE(info, nullptr);
  const uint64_t blocks = bytes.size() / info->block_bytes;
  EXPECT_EQ(blocks * info->block_bytes, bytes.size());
  std::vector<float> out(blocks * info->block_elements, -12345.0f);
  dequantize_ggml(type, reinterpret_cast<const std::byte*>(bytes.data()), out.size(), out.data());
  return out;
}

// Bit-for-bit equality, printing the first few differences.
void expect_same_bits(const std::vector<float>& actual, const std::vector<float>& expected, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int shown = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (std::bit_cast<uint32_t>(actual[i]) != std::bit_cast<uint32_t>(expected[i])) {
      ADD_FAILURE() << what << ": value " << i << " is " << actual[i] << ", expected " << expected[i];
      if (++shown == 5) return;
    }
  }
}

// Every bit of a block must matter: flipping any one changes some dequantized value.
void expect_every_bit_read(uint32_t type, const Block& block) {
  const std::vector<float> original = dequantize(type, block);
  for (size_t byte = 0; byte < block.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      Block flipped = block;
      flipped[byte] ^= static_cast<uint8_t>(1u << bit);
      const std::vector<float> changed = dequantize(type, flipped);
      bool differs = false;
      for (size_t i = 0; i < original.size() && !differs; ++i) {
        differs = std::bit_cast<uint32_t>(original[i]) != std::bit_cast<uint32_t>(changed[i]);
      }
      EXPECT_TRUE(differs) << ggml_type_info(type)->name << ": flipping bit " << bit << " of byte " << byte
                           << " changed nothing";
    }
  }
}

// ---- 32-value blocks ------------------------------------------------------------

struct Simple {
  uint16_t d = 0, m = 0;
  std::array<int, 32> q{};  // the stored unsigned quant (signed for Q8_0)
};

// block_q4_0 / q4_1: [d][m]? then qs[j] = q[j] | q[j + 16] << 4.
Block pack_q4(const Simple& s, bool with_min) {
  Block b(with_min ? 20 : 18);
  put_half(b, 0, s.d);
  if (with_min) put_half(b, 2, s.m);
  const size_t qs = with_min ? 4 : 2;
  for (size_t j = 0; j < 16; ++j) b[qs + j] = static_cast<uint8_t>(s.q[j] | s.q[j + 16] << 4);
  return b;
}

// block_q5_0 / q5_1: [d][m]? qh (u32, bit j = fifth bit of value j), then the nibbles.
Block pack_q5(const Simple& s, bool with_min) {
  Block b(with_min ? 24 : 22);
  put_half(b, 0, s.d);
  if (with_min) put_half(b, 2, s.m);
  const size_t qh = with_min ? 4 : 2;
  uint32_t high = 0;
  for (size_t j = 0; j < 32; ++j) high |= static_cast<uint32_t>(s.q[j] >> 4) << j;
  for (size_t k = 0; k < 4; ++k) b[qh + k] = static_cast<uint8_t>(high >> (8 * k));
  for (size_t j = 0; j < 16; ++j) b[qh + 4 + j] = static_cast<uint8_t>((s.q[j] & 15) | (s.q[j + 16] & 15) << 4);
  return b;
}

Block pack_q8_0(const Simple& s) {
  Block b(34);
  put_half(b, 0, s.d);
  for (size_t j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(s.q[j]));
  return b;
}

// value = (q - offset) * d, plus m where the type has one (two roundings, as ggml).
std::vector<float> expected_simple(const Simple& s, int offset, bool with_min) {
  std::vector<float> out(32);
  const float d = fp16_to_fp32(s.d);
  const float m = fp16_to_fp32(s.m);
  for (size_t j = 0; j < 32; ++j) {
    const float scaled = static_cast<float>(s.q[j] - offset) * d;
    out[j] = with_min ? scaled + m : scaled;
  }
  return out;
}

template <typename Params>
Params unit_scaled(Params p, std::mt19937& rng) {
  p.d = unit_half(rng);
  if constexpr (requires { p.m; }) p.m = unit_half(rng);
  if constexpr (requires { p.dmin; }) p.dmin = unit_half(rng);
  return p;
}

Simple random_simple(std::mt19937& rng, int levels, int offset = 0) {
  Simple s;
  s.d = random_half(rng);
  s.m = random_half(rng);
  for (int& q : s.q) q = static_cast<int>(rng() % levels) - offset;
  return s;
}

TEST(GgmlTypes, Q4_0KnownValues) {
  Simple s;
  s.d = 0x3800;  // 0.5
  for (size_t j = 0; j < 32; ++j) s.q[j] = static_cast<int>(j % 16);
  const std::vector<float> v = dequantize(kGgmlQ4_0, pack_q4(s, false));
  EXPECT_EQ(v[0], -4.0f);    // (0 - 8) * 0.5
  EXPECT_EQ(v[8], 0.0f);     // the middle quant is zero
  EXPECT_EQ(v[15], 3.5f);    // (15 - 8) * 0.5
  EXPECT_EQ(v[16], -4.0f);   // value 16 is the high nibble of byte 0
  EXPECT_EQ(v[31], 3.5f);
}

TEST(GgmlTypes, Q4_0AndQ4_1MatchTheFormula) {
  std::mt19937 rng(1);
  for (int round = 0; round < 50; ++round) {
    const Simple s = random_simple(rng, 16);
    expect_same_bits(dequantize(kGgmlQ4_0, pack_q4(s, false)), expected_simple(s, 8, false), "Q4_0");
    expect_same_bits(dequantize(kGgmlQ4_1, pack_q4(s, true)), expected_simple(s, 0, true), "Q4_1");
  }
  Simple edge;
  edge.d = 0xbc00;  // -1: a negative scale flips the signs
  edge.m = 0x4000;  // 2
  for (size_t j = 0; j < 32; ++j) edge.q[j] = j % 2 == 0 ? 0 : 15;
  const std::vector<float> v0 = dequantize(kGgmlQ4_0, pack_q4(edge, false));
  EXPECT_EQ(v0[0], 8.0f);
  EXPECT_EQ(v0[1], -7.0f);
  const std::vector<float> v1 = dequantize(kGgmlQ4_1, pack_q4(edge, true));
  EXPECT_EQ(v1[0], 2.0f);
  EXPECT_EQ(v1[17], -13.0f);  // 15 * -1 + 2
  expect_every_bit_read(kGgmlQ4_0, pack_q4(unit_scaled(random_simple(rng, 16), rng), false));
  expect_every_bit_read(kGgmlQ4_1, pack_q4(unit_scaled(random_simple(rng, 16), rng), true));
}

TEST(GgmlTypes, Q5_0AndQ5_1MatchTheFormulaWithTheHighBits) {
  std::mt19937 rng(2);
  for (int round = 0; round < 50; ++round) {
    const Simple s = random_simple(rng, 32);
    expect_same_bits(dequantize(kGgmlQ5_0, pack_q5(s, false)), expected_simple(s, 16, false), "Q5_0");
    expect_same_bits(dequantize(kGgmlQ5_1, pack_q5(s, true)), expected_simple(s, 0, true), "Q5_1");
  }
  // Only the fifth bits set: each value's own bit, from both halves of qh.
  Simple high;
  high.d = 0x3c00;  // 1
  high.m = 0;
  for (size_t j = 0; j < 32; ++j) high.q[j] = j == 3 || j == 20 || j == 31 ? 16 : 0;
  const std::vector<float> v0 = dequantize(kGgmlQ5_0, pack_q5(high, false));
  const std::vector<float> v1 = dequantize(kGgmlQ5_1, pack_q5(high, true));
  for (size_t j = 0; j < 32; ++j) {
    const bool set = j == 3 || j == 20 || j == 31;
    EXPECT_EQ(v0[j], set ? 0.0f : -16.0f) << j;
    EXPECT_EQ(v1[j], set ? 16.0f : 0.0f) << j;
  }
  Simple top;  // the largest quant
  top.d = 0xc000;  // -2
  top.m = 0x3c00;
  top.q.fill(31);
  EXPECT_EQ(dequantize(kGgmlQ5_0, pack_q5(top, false))[7], -30.0f);
  EXPECT_EQ(dequantize(kGgmlQ5_1, pack_q5(top, true))[25], -61.0f);
  expect_every_bit_read(kGgmlQ5_0, pack_q5(unit_scaled(random_simple(rng, 32), rng), false));
  expect_every_bit_read(kGgmlQ5_1, pack_q5(unit_scaled(random_simple(rng, 32), rng), true));
}

TEST(GgmlTypes, Q8_0MatchesTheFormula) {
  std::mt19937 rng(3);
  for (int round = 0; round < 50; ++round) {
    const Simple s = random_simple(rng, 256, 128);
    expect_same_bits(dequantize(kGgmlQ8_0, pack_q8_0(s)), expected_simple(s, 0, false), "Q8_0");
  }
  Simple edge;
  edge.d = 0x3800;  // 0.5
  edge.q[0] = -128;
  edge.q[1] = 127;
  edge.q[2] = -1;
  const std::vector<float> v = dequantize(kGgmlQ8_0, pack_q8_0(edge));
  EXPECT_EQ(v[0], -64.0f);
  EXPECT_EQ(v[1], 63.5f);
  EXPECT_EQ(v[2], -0.5f);
  expect_every_bit_read(kGgmlQ8_0, pack_q8_0(unit_scaled(random_simple(rng, 256, 128), rng)));
}

// ---- 256-value super-blocks --------------------------------------------------------

// The 2-bit planes of Q2_K and Q3_K: qs[j/4 + l] = L[j+l] | L[j+l+32] << 2 | L[j+l+64] << 4
// | L[j+l+96] << 6 for j = 0, 128 (quantize_row_q2_K_ref).
void pack_two_bit(const std::array<int, 256>& L, uint8_t* qs) {
  for (size_t j = 0; j < 256; j += 128) {
    for (size_t l = 0; l < 32; ++l) {
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6);
    }
  }
}

struct Q2K {
  uint16_t d = 0, dmin = 0;
  std::array<int, 16> scale{}, min{};  // 4 bits each, per 16 values
  std::array<int, 256> q{};            // 0..3
};

Block pack_q2_K(const Q2K& s) {
  Block b(84);
  for (size_t j = 0; j < 16; ++j) b[j] = static_cast<uint8_t>(s.scale[j] | s.min[j] << 4);
  pack_two_bit(s.q, b.data() + 16);
  put_half(b, 80, s.d);
  put_half(b, 82, s.dmin);
  return b;
}

std::vector<float> expected_q2_K(const Q2K& s) {
  std::vector<float> out(256);
  for (size_t e = 0; e < 256; ++e) {
    const float step = fp16_to_fp32(s.d) * static_cast<float>(s.scale[e / 16]);
    const float offset = fp16_to_fp32(s.dmin) * static_cast<float>(s.min[e / 16]);
    const float scaled = step * static_cast<float>(s.q[e]);
    out[e] = scaled - offset;
  }
  return out;
}

Q2K random_q2_K(std::mt19937& rng) {
  Q2K s;
  s.d = random_half(rng);
  s.dmin = random_half(rng);
  for (int& v : s.scale) v = static_cast<int>(rng() % 16);
  for (int& v : s.min) v = 1 + static_cast<int>(rng() % 15);
  for (int& v : s.q) v = static_cast<int>(rng() % 4);
  return s;
}

TEST(GgmlTypes, Q2_KMatchesTheFormula) {
  std::mt19937 rng(4);
  for (int round = 0; round < 20; ++round) {
    const Q2K s = random_q2_K(rng);
    expect_same_bits(dequantize(kGgmlQ2_K, pack_q2_K(s)), expected_q2_K(s), "Q2_K");
  }
  Q2K edge;
  edge.d = 0x3c00;     // 1
  edge.dmin = 0xbc00;  // -1: a negative min adds
  edge.scale.fill(15);
  edge.min.fill(15);
  edge.q.fill(3);
  edge.q[200] = 0;
  const std::vector<float> v = dequantize(kGgmlQ2_K, pack_q2_K(edge));
  EXPECT_EQ(v[0], 60.0f);    // 1 * 15 * 3 + 15
  EXPECT_EQ(v[200], 15.0f);  // 0 + 15
  Q2K bits = random_q2_K(rng);
  for (int& v2 : bits.scale) v2 = 1 + v2 % 15;  // every quant bit must reach the output
  bits = unit_scaled(bits, rng);
  expect_every_bit_read(kGgmlQ2_K, pack_q2_K(bits));
}

struct Q3K {
  uint16_t d = 0;
  std::array<int, 16> scale{};  // 6 bits, stored with +32: value scale - 32
  std::array<int, 256> L{};     // 0..7: the 2 low bits in qs, bit 2 in hmask; value L - 4
};

// quantize_row_q3_K_ref: scales, then hmask (bit `m / 32` of hmask[m % 32]), then qs.
Block pack_q3_K(const Q3K& s) {
  Block b(110, 0);
  uint8_t* hmask = b.data();
  uint8_t* qs = b.data() + 32;
  uint8_t* scales = b.data() + 96;
  for (size_t j = 0; j < 16; ++j) {
    int l = s.scale[j];
    if (j < 8) {
      scales[j] = static_cast<uint8_t>(l & 0xf);
    } else {
      scales[j - 8] = static_cast<uint8_t>(scales[j - 8] | (l & 0xf) << 4);
    }
    l >>= 4;
    scales[j % 4 + 8] = static_cast<uint8_t>(scales[j % 4 + 8] | l << (2 * (j / 4)));
  }
  std::array<int, 256> low = s.L;
  size_t m = 0;
  uint8_t hm = 1;
  for (size_t j = 0; j < 256; ++j) {
    if (low[j] > 3) {
      hmask[m] = static_cast<uint8_t>(hmask[m] | hm);
      low[j] -= 4;
    }
    if (++m == 32) {
      m = 0;
      hm = static_cast<uint8_t>(hm << 1);
    }
  }
  pack_two_bit(low, qs);
  put_half(b, 108, s.d);
  return b;
}

std::vector<float> expected_q3_K(const Q3K& s) {
  std::vector<float> out(256);
  for (size_t e = 0; e < 256; ++e) {
    const float step = fp16_to_fp32(s.d) * static_cast<float>(s.scale[e / 16] - 32);
    out[e] = step * static_cast<float>(s.L[e] - 4);
  }
  return out;
}

Q3K random_q3_K(std::mt19937& rng) {
  Q3K s;
  s.d = random_half(rng);
  for (int& v : s.scale) v = static_cast<int>(rng() % 64);
  for (int& v : s.L) v = static_cast<int>(rng() % 8);
  return s;
}

TEST(GgmlTypes, Q3_KMatchesTheFormula) {
  std::mt19937 rng(5);
  for (int round = 0; round < 20; ++round) {
    const Q3K s = random_q3_K(rng);
    expect_same_bits(dequantize(kGgmlQ3_K, pack_q3_K(s)), expected_q3_K(s), "Q3_K");
  }
  Q3K edge;
  edge.d = 0x3c00;
  for (size_t j = 0; j < 16; ++j) edge.scale[j] = j % 2 == 0 ? 0 : 63;  // scales -32 and 31
  edge.L.fill(0);
  edge.L[16] = 7;
  edge.L[255] = 4;  // high bit set, low bits zero: value 0
  const std::vector<float> v = dequantize(kGgmlQ3_K, pack_q3_K(edge));
  EXPECT_EQ(v[0], 128.0f);   // -32 * (0 - 4)
  EXPECT_EQ(v[16], 93.0f);   // 31 * (7 - 4)
  EXPECT_EQ(v[17], -124.0f);
  EXPECT_EQ(v[255], 0.0f);
  Q3K bits = random_q3_K(rng);
  for (int& v3 : bits.scale) v3 = v3 == 32 ? 33 : v3;  // a zero scale would hide its quants
  bits.d = unit_half(rng);
  expect_every_bit_read(kGgmlQ3_K, pack_q3_K(bits));
}

struct Q456K {
  uint16_t d = 0, dmin = 0;
  std::array<int, 8> scale{}, min{};  // 6 bits each, per 32 values
  std::array<int, 256> q{};           // 0..15 (Q4_K) or 0..31 (Q5_K)
};

// quantize_row_q4_K_ref's packing of the eight 6-bit scales and mins into 12 bytes.
void pack_k_scales(const Q456K& s, uint8_t* scales) {
  for (size_t j = 0; j < 8; ++j) {
    const int ls = s.scale[j], lm = s.min[j];
    if (j < 4) {
      scales[j] = static_cast<uint8_t>(ls);
      scales[j + 4] = static_cast<uint8_t>(lm);
    } else {
      scales[j + 4] = static_cast<uint8_t>((ls & 0xf) | (lm & 0xf) << 4);
      scales[j - 4] = static_cast<uint8_t>(scales[j - 4] | (ls >> 4) << 6);
      scales[j] = static_cast<uint8_t>(scales[j] | (lm >> 4) << 6);
    }
  }
}

Block pack_q4_K(const Q456K& s) {
  Block b(144, 0);
  put_half(b, 0, s.d);
  put_half(b, 2, s.dmin);
  pack_k_scales(s, b.data() + 4);
  uint8_t* q = b.data() + 16;
  for (size_t j = 0; j < 256; j += 64) {
    for (size_t l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(s.q[j + l] | s.q[j + l + 32] << 4);
    q += 32;
  }
  return b;
}

// quantize_row_q5_K_ref: the fifth bits of each 64 values in bits 2k and 2k + 1 of qh.
Block pack_q5_K(const Q456K& s) {
  Block b(176, 0);
  put_half(b, 0, s.d);
  put_half(b, 2, s.dmin);
  pack_k_scales(s, b.data() + 4);
  uint8_t* qh = b.data() + 16;
  uint8_t* ql = b.data() + 48;
  uint8_t m1 = 1, m2 = 2;
  for (size_t n = 0; n < 256; n += 64) {
    for (size_t j = 0; j < 32; ++j) {
      int l1 = s.q[n + j];
      if (l1 > 15) {
        l1 -= 16;
        qh[j] = static_cast<uint8_t>(qh[j] | m1);
      }
      int l2 = s.q[n + j + 32];
      if (l2 > 15) {
        l2 -= 16;
        qh[j] = static_cast<uint8_t>(qh[j] | m2);
      }
      ql[j] = static_cast<uint8_t>(l1 | l2 << 4);
    }
    m1 = static_cast<uint8_t>(m1 << 2);
    m2 = static_cast<uint8_t>(m2 << 2);
    ql += 32;
  }
  return b;
}

std::vector<float> expected_q45_K(const Q456K& s) {
  std::vector<float> out(256);
  for (size_t e = 0; e < 256; ++e) {
    const float step = fp16_to_fp32(s.d) * static_cast<float>(s.scale[e / 32]);
    const float offset = fp16_to_fp32(s.dmin) * static_cast<float>(s.min[e / 32]);
    const float scaled = step * static_cast<float>(s.q[e]);
    out[e] = scaled - offset;
  }
  return out;
}

Q456K random_q45_K(std::mt19937& rng, int levels) {
  Q456K s;
  s.d = random_half(rng);
  s.dmin = random_half(rng);
  for (int& v : s.scale) v = 1 + static_cast<int>(rng() % 63);
  for (int& v : s.min) v = 1 + static_cast<int>(rng() % 63);
  for (int& v : s.q) v = static_cast<int>(rng() % levels);
  return s;
}

TEST(GgmlTypes, Q4_KMatchesTheFormula) {
  std::mt19937 rng(6);
  for (int round = 0; round < 20; ++round) {
    const Q456K s = random_q45_K(rng, 16);
    expect_same_bits(dequantize(kGgmlQ4_K, pack_q4_K(s)), expected_q45_K(s), "Q4_K");
  }
  // The 6-bit fields at their extremes, in both halves of the scale packing.
  Q456K edge;
  edge.d = 0x3c00;     // 1
  edge.dmin = 0xb800;  // -0.5
  edge.scale = {63, 0, 1, 32, 63, 0, 33, 62};
  edge.min = {0, 63, 2, 31, 0, 63, 48, 16};
  edge.q.fill(15);
  const std::vector<float> v = dequantize(kGgmlQ4_K, pack_q4_K(edge));
  EXPECT_EQ(v[0], 945.0f);          // 63 * 15 - (-0.5 * 0)
  EXPECT_EQ(v[32], 31.5f);          // 0 * 15 + 0.5 * 63
  EXPECT_EQ(v[4 * 32], 945.0f);     // sub-block 4: scale 63 from the high bits
  EXPECT_EQ(v[5 * 32 + 7], 31.5f);  // sub-block 5: min 63 from the high bits
  EXPECT_EQ(v[6 * 32], 519.0f);     // 33 * 15 + 24
  EXPECT_EQ(v[7 * 32], 938.0f);     // 62 * 15 + 8
  expect_every_bit_read(kGgmlQ4_K, pack_q4_K(unit_scaled(random_q45_K(rng, 16), rng)));
}

TEST(GgmlTypes, Q5_KMatchesTheFormulaWithTheHighBits) {
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    const Q456K s = random_q45_K(rng, 32);
    expect_same_bits(dequantize(kGgmlQ5_K, pack_q5_K(s)), expected_q45_K(s), "Q5_K");
  }
  Q456K edge;
  edge.d = 0x3c00;
  edge.dmin = 0;
  edge.scale.fill(1);
  edge.min.fill(0);
  for (size_t e = 0; e < 256; ++e) edge.q[e] = e % 33 == 0 ? 16 : (e % 7 == 0 ? 31 : 15);
  const std::vector<float> v = dequantize(kGgmlQ5_K, pack_q5_K(edge));
  for (size_t e = 0; e < 256; ++e) EXPECT_EQ(v[e], static_cast<float>(edge.q[e])) << e;
  expect_every_bit_read(kGgmlQ5_K, pack_q5_K(unit_scaled(random_q45_K(rng, 32), rng)));
}

struct Q6K {
  uint16_t d = 0;
  std::array<int, 16> scale{};  // signed 8 bits, per 16 values
  std::array<int, 256> L{};     // 0..63: value L - 32
};

// quantize_row_q6_K_ref: low nibbles in ql (values l and l + 64 share a byte, as do
// l + 32 and l + 96), the 2 high bits of values l, l + 32, l + 64, l + 96 in qh[l].
Block pack_q6_K(const Q6K& s) {
  Block b(210, 0);
  uint8_t* ql = b.data();
  uint8_t* qh = b.data() + 128;
  for (size_t j = 0; j < 256; j += 128) {
    for (size_t l = 0; l < 32; ++l) {
      const int q1 = s.L[j + l] & 0xf, q2 = s.L[j + l + 32] & 0xf;
      const int q3 = s.L[j + l + 64] & 0xf, q4 = s.L[j + l + 96] & 0xf;
      ql[l] = static_cast<uint8_t>(q1 | q3 << 4);
      ql[l + 32] = static_cast<uint8_t>(q2 | q4 << 4);
      qh[l] = static_cast<uint8_t>(s.L[j + l] >> 4 | (s.L[j + l + 32] >> 4) << 2 | (s.L[j + l + 64] >> 4) << 4 |
                                   (s.L[j + l + 96] >> 4) << 6);
    }
    ql += 64;
    qh += 32;
  }
  for (size_t j = 0; j < 16; ++j) b[192 + j] = static_cast<uint8_t>(static_cast<int8_t>(s.scale[j]));
  put_half(b, 208, s.d);
  return b;
}

std::vector<float> expected_q6_K(const Q6K& s) {
  std::vector<float> out(256);
  for (size_t e = 0; e < 256; ++e) {
    const float step = fp16_to_fp32(s.d) * static_cast<float>(s.scale[e / 16]);
    out[e] = step * static_cast<float>(s.L[e] - 32);
  }
  return out;
}

Q6K random_q6_K(std::mt19937& rng) {
  Q6K s;
  s.d = random_half(rng);
  for (int& v : s.scale) v = static_cast<int>(rng() % 255) - 127;
  for (int& v : s.L) v = static_cast<int>(rng() % 64);
  return s;
}

TEST(GgmlTypes, Q6_KMatchesTheFormula) {
  std::mt19937 rng(8);
  for (int round = 0; round < 20; ++round) {
    const Q6K s = random_q6_K(rng);
    expect_same_bits(dequantize(kGgmlQ6_K, pack_q6_K(s)), expected_q6_K(s), "Q6_K");
  }
  Q6K edge;
  edge.d = 0x3c00;
  for (size_t j = 0; j < 16; ++j) edge.scale[j] = j % 2 == 0 ? -128 : 127;
  edge.L.fill(0);
  edge.L[16] = 63;
  edge.L[100] = 32;
  const std::vector<float> v = dequantize(kGgmlQ6_K, pack_q6_K(edge));
  EXPECT_EQ(v[0], 4096.0f);   // -128 * (0 - 32)
  EXPECT_EQ(v[16], 3937.0f);  // 127 * 31
  EXPECT_EQ(v[100], 0.0f);
  Q6K bits = random_q6_K(rng);
  for (int& v6 : bits.scale) v6 = v6 == 0 ? 1 : v6;
  bits.d = unit_half(rng);
  expect_every_bit_read(kGgmlQ6_K, pack_q6_K(bits));
}

TEST(GgmlTypes, FloatTypesAreExact) {
  const std::vector<uint8_t> f32 = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0};  // 1, -2
  const std::vector<float> a = dequantize(kGgmlF32, f32);
  EXPECT_EQ(a, (std::vector<float>{1.0f, -2.0f}));
  const std::vector<uint8_t> f16 = {0x00, 0x3c, 0x01, 0x00, 0x00, 0xfc};  // 1, smallest subnormal, -inf
  const std::vector<float> b = dequantize(kGgmlF16, f16);
  EXPECT_EQ(b[0], 1.0f);
  EXPECT_EQ(b[1], std::ldexp(1.0f, -24));
  EXPECT_EQ(b[2], -INFINITY);
  const std::vector<uint8_t> bf16 = {0x80, 0x3f, 0x49, 0x40};  // 1, 3.140625
  const std::vector<float> c = dequantize(kGgmlBF16, bf16);
  EXPECT_EQ(c[0], 1.0f);
  EXPECT_EQ(c[1], 3.140625f);
}

TEST(GgmlTypes, TypeNumbersAndLayoutsAreGgmls) {
  struct Expected {
    uint32_t type;
    const char* name;
    uint32_t elements, bytes;
  };
  const Expected table[] = {{0, "F32", 1, 4},       {1, "F16", 1, 2},       {2, "Q4_0", 32, 18},
                            {3, "Q4_1", 32, 20},    {6, "Q5_0", 32, 22},    {7, "Q5_1", 32, 24},
                            {8, "Q8_0", 32, 34},    {10, "Q2_K", 256, 84},  {11, "Q3_K", 256, 110},
                            {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176}, {14, "Q6_K", 256, 210},
                            {30, "BF16", 1, 2}};
  for (const Expected& e : table) {
    const GgmlTypeInfo* info = ggml_type_info(e.type);
    ASSERT_NE(info, nullptr) << e.name;
    EXPECT_STREQ(info->name, e.name);
    EXPECT_STREQ(ggml_type_name(e.type), e.name);
    EXPECT_EQ(info->block_elements, e.elements) << e.name;
    EXPECT_EQ(info->block_bytes, e.bytes) << e.name;
  }
  for (uint32_t unsupported : {4u, 5u, 9u, 15u, 16u, 24u, 28u, 31u, 39u, 40u, 1000u}) {
    EXPECT_EQ(ggml_type_info(unsupported), nullptr) << unsupported;
  }
  EXPECT_STREQ(ggml_type_name(16), "IQ2_XXS");
  EXPECT_STREQ(ggml_type_name(26), "I32");
  EXPECT_EQ(ggml_type_name(1000), nullptr);
}

TEST(GgmlTypes, BytesCheckBlocksTypesAndOverflow) {
  EXPECT_EQ(ggml_bytes(kGgmlQ4_K, 512), 288u);
  EXPECT_EQ(ggml_bytes(kGgmlQ8_0, 64), 68u);
  EXPECT_EQ(ggml_bytes(kGgmlF16, 3), 6u);
  EXPECT_EQ(ggml_bytes(kGgmlQ6_K, 0), 0u);
  try {
    ggml_bytes(kGgmlQ4_0, 100);
    FAIL() << "expected an error";
  } catch (const rwkv::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a whole number of its 32-value blocks"), std::string::npos) << e.what();
  }
  try {
    ggml_bytes(16, 256);
    FAIL() << "expected an error";
  } catch (const rwkv::Error& e) {
    EXPECT_NE(std::string(e.what()).find("ggml type 16 (IQ2_XXS) is not supported"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ggml_bytes(kGgmlF32, uint64_t{1} << 62), rwkv::Error);
  float out[32];
  const std::byte block[34] = {};
  EXPECT_THROW(dequantize_ggml(kGgmlQ8_0, block, 31, out), rwkv::Error);
  EXPECT_THROW(dequantize_ggml(9, block, 32, out), rwkv::Error);
}

TEST(GgmlTypes, SeveralBlocksInARowAreEachTheirOwn) {
  std::mt19937 rng(9);
  const Q456K first = random_q45_K(rng, 16), second = random_q45_K(rng, 16);
  Block both = pack_q4_K(first);
  const Block tail = pack_q4_K(second);
  both.insert(both.end(), tail.begin(), tail.end());
  std::vector<float> expected = expected_q45_K(first);
  const std::vector<float> more = expected_q45_K(second);
  expected.insert(expected.end(), more.begin(), more.end());
  expect_same_bits(dequantize(kGgmlQ4_K, both), expected, "two Q4_K blocks");
}

}  // namespace
