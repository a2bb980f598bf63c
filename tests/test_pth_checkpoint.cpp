#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "convert/pth_checkpoint.hpp"
#include "kernels/half.hpp"
#include "rwkv/error.hpp"
#include "pth_writer.hpp"
#include "test_support.hpp"

namespace {

using namespace rwkv_test;  // NOLINT: the checkpoint writer
using rwkv::bf16_to_fp32;
using rwkv::fp16_to_fp32;
using rwkv::fp32_to_bf16;
using rwkv::fp32_to_fp16;
using rwkv::convert::PthCheckpoint;
using rwkv::convert::PthDType;
using rwkv::convert::PthTensor;

float from_bits(uint32_t bits) { return std::bit_cast<float>(bits); }
uint32_t to_bits(float value) { return std::bit_cast<uint32_t>(value); }

TEST(PthHalf, Fp16ToFp32KnownPatterns) {
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(fp16_to_fp32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(to_bits(fp16_to_fp32(0x8000)), 0x80000000u);
  EXPECT_EQ(to_bits(fp16_to_fp32(0x0000)), 0u);
  EXPECT_EQ(fp16_to_fp32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(to_bits(fp16_to_fp32(0x7e00)), 0x7fc00000u);
  EXPECT_EQ(to_bits(fp16_to_fp32(0x7c01)), 0x7f802000u);  // signalling NaN keeps its payload
}

TEST(PthHalf, Fp32ToFp16KnownPatterns) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7bff);  // just below the midpoint to inf
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);    // the midpoint rounds to even: inf
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-1e10f), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7c00);
  const uint16_t nan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_NE(fp32_to_fp16(from_bits(0x7f800001u)) & 0x03ff, 0);  // payload only in dropped bits: still NaN
  // Ties to even in the normal range: 1 + 2^-11 is halfway between 0x3c00 and 0x3c01.
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(fp32_to_fp16(from_bits(to_bits(1.0f + std::ldexp(1.0f, -11)) + 1)), 0x3c01);
  // Mantissa overflow carries into the exponent.
  EXPECT_EQ(fp32_to_fp16(2.0f - std::ldexp(1.0f, -12)), 0x4000);
  // Subnormals, in units of 2^-24.
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie: rounds to even zero
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25) * 1.0001f), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 units: tie to even 2
  EXPECT_EQ(fp32_to_fp16(std::ldexp(5.0f, -25)), 0x0002);  // 2.5 units: tie to even 2
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14) * (1.0f - std::ldexp(1.0f, -12))), 0x0400);  // rounds up to normal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -30)), 0x0000);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-std::ldexp(1.0f, -24)), 0x8001);
}

TEST(PthHalf, Fp16RoundTripsEveryPattern) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_EQ(fp32_to_fp16(f) & 0x7c00, 0x7c00) << h;
      EXPECT_NE(fp32_to_fp16(f) & 0x03ff, 0) << h;
    } else {
      ASSERT_EQ(fp32_to_fp16(f), h) << h;
    }
  }
}

#if defined(__FLT16_MAX__)
// The compiler's own _Float16 conversion is correctly rounded: compare on random floats.
TEST(PthHalf, Fp32ToFp16MatchesCompiler) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    // Bias towards the exponents where half lives, while still covering everything.
    uint32_t pattern = bits(rng);
    if (i % 2 == 0) pattern = (pattern & 0x807fffffu) | ((100u + pattern % 45u) << 23);
    const float f = from_bits(pattern);
    if (std::isnan(f)) continue;
    const auto expected = std::bit_cast<uint16_t>(static_cast<_Float16>(f));
    ASSERT_EQ(fp32_to_fp16(f), expected) << std::hex << pattern;
  }
}
#endif

TEST(PthHalf, Bf16KnownPatterns) {
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(bf16_to_fp32(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(to_bits(bf16_to_fp32(0x0001)), 0x00010000u);  // subnormal
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808001u)), 0x3f81);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f807fffu)), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f7fffffu)), 0x7f80);  // max float rounds to inf
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00008000u)), 0x0000);  // subnormal tie to even
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00018000u)), 0x0002);
  const uint16_t nan = fp32_to_bf16(from_bits(0x7f800001u));  // payload only in dropped bits
  EXPECT_TRUE(std::isnan(bf16_to_fp32(nan)));
  EXPECT_EQ(fp32_to_bf16(from_bits(0xffc12345u)) & 0xffc0, 0xffc0);
}

std::vector<float> first_values() { return {1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f}; }
std::vector<float> second_values() { return {0.5f, 0.25f, -0.125f, 100.0f}; }

// Two small float32 tensors: a.weight [2,3] and b.bias [4].
CheckpointSpec two_tensor_spec() {
  CheckpointSpec spec;
  spec.storages["0"] = StorageSpec{"FloatStorage", 6, float_bytes(first_values())};
  spec.storages["1"] = StorageSpec{"FloatStorage", 4, float_bytes(second_values())};
  spec.tensors = {{"a.weight", "0", {2, 3}, {3, 1}, 0}, {"b.bias", "1", {4}, {1}, 0}};
  return spec;
}

// The message of the rwkv::Error that opening `bytes` (written to a scratch file) throws.
std::string open_error(const std::string& bytes) {
  rwkv_test::ScratchDir dir;
  const auto path = dir / "model.pth";
  rwkv_test::write_file(path, bytes);
  try {
    PthCheckpoint::open(path.string());
  } catch (const rwkv::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "opening did not throw";
  return {};
}

std::vector<uint32_t> bits_of(const std::vector<float>& values) {
  std::vector<uint32_t> out;
  for (float v : values) out.push_back(to_bits(v));
  return out;
}

TEST(PthCheckpoint, OpensHandMadeCheckpoint) {
  for (bool zip64 : {false, true}) {
    SCOPED_TRACE(zip64 ? "zip64" : "zip32");
    rwkv_test::ScratchDir dir;
    CheckpointSpec spec = two_tensor_spec();
    spec.zip64 = zip64;
    rwkv_test::write_file(dir / "model.pth", make_checkpoint(spec));
    const PthCheckpoint checkpoint = PthCheckpoint::open((dir / "model.pth").string());
    ASSERT_EQ(checkpoint.tensors().size(), 2u);
    EXPECT_EQ(checkpoint.tensors()[0].name, "a.weight");
    EXPECT_EQ(checkpoint.tensors()[1].name, "b.bias");
    const PthTensor* a = checkpoint.find("a.weight");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->dtype, PthDType::Float32);
    EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a->stride, (std::vector<int64_t>{3, 1}));
    EXPECT_EQ(a->numel(), 6);
    EXPECT_TRUE(a->is_contiguous());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a->data) % 64, 0u) << "storages are used in place, aligned as written";
    EXPECT_EQ(bits_of(a->to_float()), bits_of(first_values()));
    EXPECT_EQ(bits_of(checkpoint.find("b.bias")->to_float()), bits_of(second_values()));
    EXPECT_EQ(checkpoint.find("missing"), nullptr);
    EXPECT_EQ(checkpoint.path(), (dir / "model.pth").string());
  }
}

TEST(PthCheckpoint, ViewsWithStridesAndOffsets) {
  CheckpointSpec spec = two_tensor_spec();
  // The transpose of a.weight, and a slice starting at element 4.
  spec.tensors.push_back({"a.transposed", "0", {3, 2}, {1, 3}, 0});
  spec.tensors.push_back({"a.tail", "0", {2}, {1}, 4});
  spec.tensors.push_back({"a.every_other", "0", {3}, {2}, 0});
  spec.tensors.push_back({"a.empty", "0", {0, 3}, {3, 1}, 6});
  rwkv_test::ScratchDir dir;
  rwkv_test::write_file(dir / "views.pth", make_checkpoint(spec));
  const PthCheckpoint checkpoint = PthCheckpoint::open((dir / "views.pth").string());
  const auto v = first_values();
  const PthTensor* transposed = checkpoint.find("a.transposed");
  ASSERT_NE(transposed, nullptr);
  EXPECT_FALSE(transposed->is_contiguous());
  EXPECT_EQ(transposed->to_float(), (std::vector<float>{v[0], v[3], v[1], v[4], v[2], v[5]}));
  EXPECT_EQ(checkpoint.find("a.tail")->to_float(), (std::vector<float>{v[4], v[5]}));
  EXPECT_EQ(checkpoint.find("a.every_other")->to_float(), (std::vector<float>{v[0], v[2], v[4]}));
  EXPECT_TRUE(checkpoint.find("a.empty")->to_float().empty());
}

TEST(PthCheckpoint, HalfAndBfloat16Storages) {
  const std::vector<uint16_t> halves = {0x3c00, 0xc000, 0x0001, 0x7bff};
  std::string bytes(halves.size() * 2, '\0');
  std::memcpy(bytes.data(), halves.data(), bytes.size());
  for (const auto& [type, dtype] : {std::pair{"HalfStorage", PthDType::Float16}, std::pair{"BFloat16Storage", PthDType::BFloat16}}) {
    SCOPED_TRACE(type);
    CheckpointSpec spec;
    spec.storages["7"] = StorageSpec{type, 4, bytes};
    spec.tensors = {{"w", "7", {2, 2}, {2, 1}, 0}};
    rwkv_test::ScratchDir dir;
    rwkv_test::write_file(dir / "half.pth", make_checkpoint(spec));
    const PthCheckpoint checkpoint = PthCheckpoint::open((dir / "half.pth").string());
    const PthTensor& w = checkpoint.tensors().at(0);
    EXPECT_EQ(w.dtype, dtype);
    std::vector<float> expected;
    for (uint16_t h : halves) expected.push_back(dtype == PthDType::Float16 ? fp16_to_fp32(h) : bf16_to_fp32(h));
    EXPECT_EQ(bits_of(w.to_float()), bits_of(expected));
  }
}

TEST(PthCheckpoint, IntegerTensorsOpenButDoNotConvert) {
  CheckpointSpec spec;
  spec.storages["0"] = StorageSpec{"LongStorage", 2, std::string(16, '\1')};
  spec.tensors = {{"steps", "0", {2}, {1}, 0}};
  rwkv_test::ScratchDir dir;
  rwkv_test::write_file(dir / "ints.pth", make_checkpoint(spec));
  const PthCheckpoint checkpoint = PthCheckpoint::open((dir / "ints.pth").string());
  EXPECT_EQ(checkpoint.tensors().at(0).dtype, PthDType::Int64);
  EXPECT_THROW(checkpoint.tensors().at(0).to_float(), rwkv::Error);
}

TEST(PthCheckpoint, DescendsIntoWrappedStateDict) {
  CheckpointSpec spec = two_tensor_spec();
  // {'epoch': 3, 'state_dict': <the usual OrderedDict>}
  std::string inner = state_dict_pickle(spec.tensors, spec.storages);
  inner = inner.substr(2, inner.size() - 3);  // without PROTO and STOP
  PickleWriter w;
  w.op("}").op("(").str("epoch").integer(3).str("state_dict");
  spec.pickle = w.bytes() + inner + "u.";
  // The inner pickle memoizes from index 0, which overwrites nothing the outer part needs.
  rwkv_test::ScratchDir dir;
  rwkv_test::write_file(dir / "wrapped.pth", make_checkpoint(spec));
  const PthCheckpoint checkpoint = PthCheckpoint::open((dir / "wrapped.pth").string());
  ASSERT_EQ(checkpoint.tensors().size(), 2u);
  EXPECT_EQ(checkpoint.tensors()[0].name, "a.weight");
}

TEST(PthCheckpoint, RepeatedKeyKeepsFirstPositionAndLastValue) {
  CheckpointSpec spec = two_tensor_spec();
  spec.tensors.push_back({"a.weight", "1", {4}, {1}, 0});
  rwkv_test::ScratchDir dir;
  rwkv_test::write_file(dir / "repeated.pth", make_checkpoint(spec));
  const PthCheckpoint checkpoint = PthCheckpoint::open((dir / "repeated.pth").string());
  ASSERT_EQ(checkpoint.tensors().size(), 2u);
  EXPECT_EQ(checkpoint.tensors()[0].name, "a.weight");
  EXPECT_EQ(checkpoint.tensors()[0].to_float(), second_values());
}

// Random byte changes anywhere in a valid checkpoint either still open or throw rwkv::Error;
// under the sanitizers this also shows that no read strays outside the file.
TEST(PthCheckpointErrors, RandomCorruptionsNeverCrash) {
  const std::string valid = make_checkpoint(two_tensor_spec());
  const size_t pickle_start = valid.find("\x80\x02" "c");  // PROTO 2, then GLOBAL
  const size_t pickle_size = state_dict_pickle(two_tensor_spec().tensors, two_tensor_spec().storages).size();
  std::mt19937 rng(42);
  rwkv_test::ScratchDir dir;
  const auto path = dir / "fuzzed.pth";
  int opened = 0;
  for (int round = 0; round < 400; ++round) {
    std::string damaged = valid;
    const int changes = 1 + round % 4;
    for (int c = 0; c < changes; ++c) {
      // Mostly hit the pickle, where the interesting structure is.
      const size_t at = round % 3 == 0 ? rng() % damaged.size() : pickle_start + rng() % pickle_size;
      damaged[at] = static_cast<char>(rng() % 256);
    }
    rwkv_test::write_file(path, damaged);
    try {
      const PthCheckpoint checkpoint = PthCheckpoint::open(path.string());
      ++opened;
      for (const PthTensor& tensor : checkpoint.tensors()) {
        if (tensor.numel() < (1 << 20) && tensor.dtype == PthDType::Float32) tensor.to_float();
      }
    } catch (const rwkv::Error&) {
    }
  }
  EXPECT_GT(opened, 0) << "some changes (in names, values, padding) leave a loadable checkpoint";
}

TEST(PthCheckpointErrors, MissingFile) {
  rwkv_test::ScratchDir dir;
  const std::string path = (dir / "nope.pth").string();
  try {
    PthCheckpoint::open(path);
    FAIL() << "no error";
  } catch (const rwkv::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

// The writer's members carry the zip format's CRC-32 of their bytes in the local and the
// central headers (Python's zipfile rejects a member whose CRC-32 differs): the check
// value, every length from 0 to 300 against a bit-at-a-time definition (the eight-byte
// steps and their tail), and both headers of a written zip.
TEST(PthWriter, ZipMembersCarryTheirCrc32) {
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(crc32(""), 0u);
  std::string bytes;
  for (uint32_t i = 0; i < 300; ++i) bytes.push_back(static_cast<char>(i * 37 + 11));
  for (size_t n = 0; n <= bytes.size(); ++n) {
    uint32_t definition = 0xffffffffu;
    for (size_t i = 0; i < n; ++i) {
      definition ^= static_cast<unsigned char>(bytes[i]);
      for (int k = 0; k < 8; ++k) {
        definition = (definition & 1u) != 0 ? 0xEDB88320u ^ (definition >> 1) : definition >> 1;
      }
    }
    ASSERT_EQ(crc32(std::string_view(bytes).substr(0, n)), ~definition) << n << " bytes";
  }
  for (bool zip64 : {false, true}) {
    const std::string zip = make_zip({{"archive/data/0", "123456789"}, {"archive/version", "3\n"}}, zip64);
    const auto le32 = [&](size_t at) {
      uint32_t v = 0;
      for (int i = 0; i < 4; ++i) v |= uint32_t(static_cast<unsigned char>(zip[at + i])) << (8 * i);
      return v;
    };
    ASSERT_EQ(le32(0), 0x04034b50u);
    EXPECT_EQ(le32(14), 0xCBF43926u) << "local header, zip64 " << zip64;
    const size_t central = zip.find("PK\x01\x02");
    ASSERT_NE(central, std::string::npos);
    EXPECT_EQ(le32(central + 16), 0xCBF43926u) << "central header, zip64 " << zip64;
    const size_t second = zip.find("PK\x01\x02", central + 4);
    ASSERT_NE(second, std::string::npos);
    EXPECT_EQ(le32(second + 16), crc32("3\n")) << "central header, zip64 " << zip64;
  }
}

TEST(PthCheckpointErrors, EmptyFile) {
  const std::string message = open_error("");
  EXPECT_NE(message.find("model.pth"), std::string::npos) << message;
  EXPECT_NE(message.find("empty"), std::string::npos) << message;
}

TEST(PthCheckpointErrors, NotAZip) {
  EXPECT_NE(open_error("hello, this is not a checkpoint").find("not a PyTorch zip checkpoint"), std::string::npos);
  EXPECT_NE(open_error("P").find("not a PyTorch zip checkpoint"), std::string::npos);
}

TEST(PthCheckpointErrors, LegacyFormat) {
  // PROTO 2, then the legacy magic number 0x1950a86a20f9469cfc6c as LONG1.
  const std::string legacy("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
  const std::string message = open_error(legacy);
  EXPECT_NE(message.find("legacy (pre-PyTorch-1.6) checkpoint format is not supported"), std::string::npos) << message;
}

TEST(PthCheckpointErrors, EveryTruncationThrows) {
  for (bool zip64 : {false, true}) {
    CheckpointSpec spec = two_tensor_spec();
    spec.zip64 = zip64;
    const std::string whole = make_checkpoint(spec);
    rwkv_test::ScratchDir dir;
    const auto path = dir / "cut.pth";
    // Cut points inside local headers, data.pkl and storages (every few bytes, to keep the test quick),
    // and at every byte from the end of the last entry through the central directory and end records.
    const size_t dense_from = whole.find("PK\x01\x02") - 100;
    for (size_t length = 0; length < whole.size(); length += length < dense_from ? 5 : 1) {
      rwkv_test::write_file(path, whole.substr(0, length));
      EXPECT_THROW(PthCheckpoint::open(path.string()), rwkv::Error) << "cut at " << length;
    }
  }
  EXPECT_NE(open_error(make_checkpoint(two_tensor_spec()).substr(0, 300)).find("truncated"), std::string::npos);
}

// Bytes lost in the middle of the last storage while the directory survives:
// the entry now runs into the central directory.
TEST(PthCheckpointErrors, StorageCutShortBeforeIntactDirectory) {
  CheckpointSpec spec = two_tensor_spec();
  const std::string storage = spec.storages["1"].bytes;
  const std::string whole = make_zip({{"archive/data.pkl", state_dict_pickle(spec.tensors, spec.storages)},
                                      {"archive/data/0", spec.storages["0"].bytes},
                                      {"archive/data/1", storage}});
  const size_t storage_at = whole.find(storage);
  ASSERT_NE(storage_at, std::string::npos);
  std::string damaged = whole;
  damaged.erase(storage_at + 4, 8);
  // Shift the recorded directory offset to where the directory now starts.
  const size_t eocd = damaged.size() - 22;
  uint32_t directory_offset = 0;
  std::memcpy(&directory_offset, damaged.data() + eocd + 16, 4);
  directory_offset -= 8;
  std::memcpy(damaged.data() + eocd + 16, &directory_offset, 4);
  const std::string message = open_error(damaged);
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  EXPECT_NE(message.find("archive/data/1"), std::string::npos) << message;
}

TEST(PthCheckpointErrors, CompressedEntry) {
  CheckpointSpec spec = two_tensor_spec();
  spec.storage_method = 8;
  const std::string message = open_error(make_checkpoint(spec));
  EXPECT_NE(message.find("compressed"), std::string::npos) << message;
  EXPECT_NE(message.find("archive/data/0"), std::string::npos) << message;
}

TEST(PthCheckpointErrors, NoDataPickle) {
  const std::string message = open_error(make_zip({{"archive/version", "3\n"}}));
  EXPECT_NE(message.find("data.pkl"), std::string::npos) << message;
}

TEST(PthCheckpointErrors, UnknownGlobalIsRefused) {
  CheckpointSpec spec = two_tensor_spec();
  spec.pickle = PickleWriter().global("os", "system").str("echo pwned").op("\x85R.").bytes();
  const std::string message = open_error(make_checkpoint(spec));
  EXPECT_NE(message.find("os.system"), std::string::npos) << message;
  EXPECT_NE(message.find("at byte 2"), std::string::npos) << message;
}

TEST(PthCheckpointErrors, TensorLargerThanItsStorage) {
  CheckpointSpec spec = two_tensor_spec();
  spec.tensors.push_back({"too.big", "0", {4, 3}, {3, 1}, 0});
  std::string message = open_error(make_checkpoint(spec));
  EXPECT_NE(message.find("too.big"), std::string::npos) << message;

  spec = two_tensor_spec();
  spec.tensors.push_back({"past.the.end", "1", {2}, {1}, 3});
  message = open_error(make_checkpoint(spec));
  EXPECT_NE(message.find("past.the.end"), std::string::npos) << message;

  spec = two_tensor_spec();
  spec.tensors.push_back({"huge.stride", "1", {2, 2}, {int64_t{1} << 62, 1}, 0});
  message = open_error(make_checkpoint(spec));
  EXPECT_NE(message.find("huge.stride"), std::string::npos) << message;
}

TEST(PthCheckpointErrors, StorageEntrySmallerThanDeclared) {
  CheckpointSpec spec = two_tensor_spec();
  spec.storages["1"].numel = 100;
  const std::string message = open_error(make_checkpoint(spec));
  EXPECT_NE(message.find("storage '1'"), std::string::npos) << message;
}

TEST(PthCheckpointErrors, MalformedPickles) {
  const std::string valid = state_dict_pickle(two_tensor_spec().tensors, two_tensor_spec().storages);
  const std::map<std::string, std::pair<std::string, std::string>> cases = {
      {"unknown opcode", {std::string("\x80\x02\xff", 3), "opcode 0xff"}},
      {"stack underflow", {"\x80\x02.", "stack underflow"}},
      {"bad memo index", {"\x80\x02h\x09.", "memo index 9"}},
      {"no STOP", {"\x80\x02}", "without STOP"}},
      {"truncated operand", {std::string("\x80\x02X\xff\x00\x00\x00" "abc", 10), "truncated"}},
      {"truncated state dict", {valid.substr(0, valid.size() / 2), "truncated"}},
      {"setitem on a list", {"\x80\x02]K\x01K\x02s.", "SETITEM on a list"}},
      {"size is not a tuple",
       {PickleWriter()
            .op("}(")
            .str("w")
            .global("torch._utils", "_rebuild_tensor_v2")
            .mark()
            .mark()
            .str("storage")
            .global("torch", "FloatStorage")
            .str("0")
            .str("cpu")
            .integer(6)
            .op("tQ")
            .integer(0)
            .integer(6)
            .int_tuple({1})
            .op("\x89}tRu.")
            .bytes(),
        "size is a int"}},
      {"call of a storage type", {PickleWriter().global("torch", "FloatStorage").op(")R.").bytes(), "cannot be called"}},
      {"rebuild without storage",
       {PickleWriter().global("torch._utils", "_rebuild_tensor_v2").mark().integer(1).integer(0).op(")))\x89}tR.").bytes(),
        "expects a storage"}},
  };
  for (const auto& [what, pickle_and_message] : cases) {
    SCOPED_TRACE(what);
    CheckpointSpec spec = two_tensor_spec();
    spec.pickle = pickle_and_message.first;
    const std::string message = open_error(make_checkpoint(spec));
    EXPECT_NE(message.find(pickle_and_message.second), std::string::npos) << message;
    EXPECT_NE(message.find("archive/data.pkl: at byte"), std::string::npos) << message;
  }
}

TEST(PthCheckpointErrors, PickleOfSomethingElseThanADict) {
  CheckpointSpec spec = two_tensor_spec();
  spec.pickle = "\x80\x02K\x05.";
  const std::string message = open_error(make_checkpoint(spec));
  EXPECT_NE(message.find("holds a int, not a state dict"), std::string::npos) << message;
}

struct SharedModel {
  const char* file;
  int64_t n_embd;
};

constexpr SharedModel kSharedModels[] = {
    {"tiny-rwkv-4v0-660K.pth", 128},      {"tiny-rwkv-4v0-660K-fp16.pth", 128}, {"tiny-rwkv-4v0-660K-bf16.pth", 128},
    {"tiny-rwkv-5v1-730K.pth", 64},       {"tiny-rwkv-5v2-730K.pth", 64},       {"tiny-rwkv-6v0-1m.pth", 64},
    {"tiny-rwkv-6v0-3m.pth", 128},        {"tiny-rwkv-7v0-834K.pth", 64},       {"tiny-rwkv-7v0-834K-fp16.pth", 64},
    {"tiny-rwkv-7v0-834K-bf16.pth", 64},
};

TEST(PthShared, EveryCheckpointOpens) {
  RWKV_SKIP_WITHOUT_SHARED();
  const auto folder = *rwkv_test::shared_dir() / "models" / "pth";
  size_t files_in_folder = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) files_in_folder += entry.path().extension() == ".pth";
  EXPECT_EQ(files_in_folder, std::size(kSharedModels)) << "a new shared checkpoint needs an entry here";
  for (const SharedModel& model : kSharedModels) {
    SCOPED_TRACE(model.file);
    const PthCheckpoint checkpoint = PthCheckpoint::open((folder / model.file).string());
    EXPECT_GT(checkpoint.tensors().size(), 10u);
    const PthTensor* emb = checkpoint.find("emb.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->shape, (std::vector<int64_t>{256, model.n_embd}));
    const PthTensor* head = checkpoint.find("head.weight");
    ASSERT_NE(head, nullptr);
    EXPECT_EQ(head->shape, (std::vector<int64_t>{256, model.n_embd}));
    EXPECT_NE(checkpoint.find("blocks.0.ln1.weight"), nullptr);
    for (const PthTensor& tensor : checkpoint.tensors()) {
      EXPECT_TRUE(tensor.is_contiguous()) << tensor.name;
      const std::vector<float> values = tensor.to_float();
      EXPECT_EQ(static_cast<int64_t>(values.size()), tensor.numel()) << tensor.name;
      for (float v : values) ASSERT_TRUE(std::isfinite(v)) << tensor.name;
    }
  }
}

TEST(PthShared, HalfVariantsAreTheFloat32WeightsRounded) {
  RWKV_SKIP_WITHOUT_SHARED();
  const auto folder = *rwkv_test::shared_dir() / "models" / "pth";
  for (const std::string stem : {"tiny-rwkv-4v0-660K", "tiny-rwkv-7v0-834K"}) {
    const PthCheckpoint reference = PthCheckpoint::open((folder / (stem + ".pth")).string());
    for (const auto& [suffix, dtype] : {std::pair{"-fp16", PthDType::Float16}, std::pair{"-bf16", PthDType::BFloat16}}) {
      SCOPED_TRACE(stem + suffix);
      const PthCheckpoint rounded = PthCheckpoint::open((folder / (stem + suffix + ".pth")).string());
      ASSERT_EQ(rounded.tensors().size(), reference.tensors().size());
      for (size_t i = 0; i < reference.tensors().size(); ++i) {
        const PthTensor& want = reference.tensors()[i];
        const PthTensor& got = rounded.tensors()[i];
        ASSERT_EQ(got.name, want.name);
        ASSERT_EQ(got.shape, want.shape) << got.name;
        ASSERT_EQ(got.dtype, dtype) << got.name;
        ASSERT_EQ(want.dtype, PthDType::Float32) << want.name;
        const std::vector<float> exact = want.to_float();
        const std::vector<float> converted = got.to_float();
        ASSERT_EQ(converted.size(), exact.size());
        for (size_t j = 0; j < exact.size(); ++j) {
          const float expected = dtype == PthDType::Float16 ? fp16_to_fp32(fp32_to_fp16(exact[j]))
                                                            : bf16_to_fp32(fp32_to_bf16(exact[j]));
          ASSERT_EQ(to_bits(converted[j]), to_bits(expected)) << got.name << "[" << j << "]";
        }
      }
    }
  }
}

}  // namespace
