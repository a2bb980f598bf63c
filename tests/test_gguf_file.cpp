// The GGUF reader on files built byte by byte here: a valid one read back, and one
// damaged copy per check, each refused with a message naming what is wrong.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "convert/ggml_types.hpp"
#include "convert/gguf_file.hpp"
#include "rwkv/error.hpp"
#include "test_support.hpp"

namespace {

using rwkv::convert::GgufFile;
using rwkv::convert::GgufTensor;
using rwkv::convert::GgufValueType;
using rwkv::convert::kGgmlF16;
using rwkv::convert::kGgmlF32;
using rwkv::convert::kGgmlQ8_0;
using rwkv_test::ScratchDir;

// Little-endian encoders for the writer.
struct Bytes {
  std::string s;
  Bytes& u8(uint8_t v) {
    s += static_cast<char>(v);
    return *this;
  }
  Bytes& u16(uint16_t v) { return u8(static_cast<uint8_t>(v)).u8(static_cast<uint8_t>(v >> 8)); }
  Bytes& u32(uint32_t v) { return u16(static_cast<uint16_t>(v)).u16(static_cast<uint16_t>(v >> 16)); }
  Bytes& u64(uint64_t v) { return u32(static_cast<uint32_t>(v)).u32(static_cast<uint32_t>(v >> 32)); }
  Bytes& f32(float v) { return u32(std::bit_cast<uint32_t>(v)); }
  Bytes& str(const std::string& text) {
    u64(text.size());
    s += text;
    return *this;
  }
};

uint32_t type_number(GgufValueType t) { return static_cast<uint32_t>(t); }

// One encoded metadata entry: key, type and the already encoded value.
std::string kv(const std::string& key, GgufValueType type, const Bytes& value) {
  Bytes b;
  b.str(key).u32(type_number(type));
  b.s += value.s;
  return b.s;
}
std::string kv_u32(const std::string& key, uint32_t v) { return kv(key, GgufValueType::UInt32, Bytes().u32(v)); }
std::string kv_string(const std::string& key, const std::string& v) {
  return kv(key, GgufValueType::String, Bytes().str(v));
}

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type = kGgmlF32;
  uint64_t offset = 0;
  std::string data;  // placed at `offset` in the data section
};

struct GgufSpec {
  std::string magic = "GGUF";
  uint32_t version = 3;
  std::vector<std::string> kvs;
  std::vector<TensorSpec> tensors;
  uint64_t alignment = 32;  // the padding before the data section
  std::optional<uint64_t> kv_count, tensor_count;
};

std::string build(const GgufSpec& spec) {
  Bytes b;
  b.s = spec.magic;
  b.u32(spec.version).u64(spec.tensor_count.value_or(spec.tensors.size())).u64(spec.kv_count.value_or(spec.kvs.size()));
  for (const std::string& entry : spec.kvs) b.s += entry;
  for (const TensorSpec& t : spec.tensors) {
    b.str(t.name).u32(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) b.u64(d);
    b.u32(t.type).u64(t.offset);
  }
  while (b.s.size() % spec.alignment != 0) b.s += '\0';
  std::string data;
  for (const TensorSpec& t : spec.tensors) {
    if (t.data.empty()) continue;
    if (data.size() < t.offset + t.data.size()) data.resize(t.offset + t.data.size());
    std::copy(t.data.begin(), t.data.end(), data.begin() + static_cast<std::ptrdiff_t>(t.offset));
  }
  return b.s + data;
}

std::string f32_data(std::initializer_list<float> values) {
  Bytes b;
  for (float v : values) b.f32(v);
  return b.s;
}

// Q8_0 rows of 32: d = 0.5 (0x3800) then quants -16..15 (row 0) and 15..-16 (row 1).
std::string q8_0_data() {
  Bytes b;
  for (int row = 0; row < 2; ++row) {
    b.u16(0x3800);
    for (int j = 0; j < 32; ++j) b.u8(static_cast<uint8_t>(static_cast<int8_t>(row == 0 ? j - 16 : 15 - j)));
  }
  return b.s;
}

GgufSpec valid_spec() {
  GgufSpec spec;
  spec.kvs = {
      kv_string("general.architecture", "rwkv7"),
      kv_u32("rwkv7.block_count", 2),
      kv("general.alignment", GgufValueType::UInt32, Bytes().u32(32)),
      kv("test.i8", GgufValueType::Int8, Bytes().u8(0xfe)),
      kv("test.u64", GgufValueType::UInt64, Bytes().u64(uint64_t{1} << 63)),
      kv("test.f32", GgufValueType::Float32, Bytes().f32(0.25f)),
      kv("test.f64", GgufValueType::Float64, Bytes().u64(std::bit_cast<uint64_t>(-1.5))),
      kv("test.bool", GgufValueType::Bool, Bytes().u8(1)),
      kv("tokenizer.ggml.tokens", GgufValueType::Array,
         Bytes().u32(type_number(GgufValueType::String)).u64(3).str("a").str("").str("\xe4\xb8\xad")),
      kv("tokenizer.ggml.token_type", GgufValueType::Array,
         Bytes().u32(type_number(GgufValueType::Int32)).u64(3).u32(1).u32(0xffffffffu).u32(3)),
      kv("test.floats", GgufValueType::Array, Bytes().u32(type_number(GgufValueType::Float32)).u64(2).f32(1.5f).f32(-2)),
      // An array of two arrays of u8: [[7], []].
      kv("test.nested", GgufValueType::Array,
         Bytes().u32(type_number(GgufValueType::Array)).u64(2).u32(0).u64(1).u8(7).u32(0).u64(0)),
  };
  Bytes f16;
  f16.u16(0x3c00).u16(0xc000).u16(0x3555);  // 1, -2, 0.333251953125
  spec.tensors = {
      {"blk.0.weight", {32, 2}, kGgmlQ8_0, 0, q8_0_data()},
      {"blk.0.bias", {3}, kGgmlF16, 96, f16.s},
      {"output_norm.weight", {2, 1, 1, 1}, kGgmlF32, 128, f32_data({4.0f, -8.0f})},
  };
  return spec;
}

class GgufTest : public ::testing::Test {
 protected:
  std::string write(const std::string& bytes, const std::string& name = "model.gguf") {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // Opening `bytes` fails with a message holding the path and every one of `parts`.
  void expect_refused(const std::string& bytes, std::initializer_list<std::string> parts) {
    const std::string path = write(bytes);
    try {
      GgufFile::open(path);
      ADD_FAILURE() << "expected an error containing '" << *parts.begin() << "'";
    } catch (const rwkv::Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(path), std::string::npos) << message;
      for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
    }
  }

  ScratchDir dir_;
};

TEST_F(GgufTest, ReadsMetadataOfEveryType) {
  const GgufFile gguf = GgufFile::open(write(build(valid_spec())));
  EXPECT_EQ(gguf.version(), 3u);
  EXPECT_EQ(gguf.alignment(), 32u);
  EXPECT_EQ(gguf.metadata().size(), 12u);
  EXPECT_EQ(gguf.get_string("general.architecture"), "rwkv7");
  EXPECT_EQ(gguf.get_uint("rwkv7.block_count"), 2u);
  EXPECT_EQ(gguf.get_int("test.i8"), -2);
  EXPECT_EQ(gguf.get_uint("test.u64"), uint64_t{1} << 63);
  EXPECT_EQ(gguf.get_float("test.f32"), 0.25);
  EXPECT_EQ(gguf.get_float("test.f64"), -1.5);
  EXPECT_TRUE(gguf.get_bool("test.bool"));
  EXPECT_EQ(gguf.get_string_array("tokenizer.ggml.tokens"), (std::vector<std::string>{"a", "", "\xe4\xb8\xad"}));
  EXPECT_EQ(gguf.get_int_array("tokenizer.ggml.token_type"), (std::vector<int64_t>{1, -1, 3}));
  EXPECT_EQ(gguf.get_float_array("test.floats"), (std::vector<double>{1.5, -2.0}));
  const auto* nested = gguf.find_metadata("test.nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->type, GgufValueType::Array);
  EXPECT_EQ(nested->element_type, GgufValueType::Array);
  EXPECT_EQ(nested->count, 2u);
  EXPECT_TRUE(gguf.has("test.bool"));
  EXPECT_FALSE(gguf.has("test.absent"));
}

TEST_F(GgufTest, GettersNameTheKeyAndTheTypes) {
  const std::string path = write(build(valid_spec()));
  const GgufFile gguf = GgufFile::open(path);
  const auto message = [](auto&& call) {
    try {
      call();
    } catch (const rwkv::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([&] { gguf.get_string("nope"); }), path + ": metadata key 'nope' is missing");
  EXPECT_EQ(message([&] { gguf.get_string("rwkv7.block_count"); }),
            path + ": metadata key 'rwkv7.block_count' has type u32, expected string");
  EXPECT_EQ(message([&] { gguf.get_uint("tokenizer.ggml.tokens"); }),
            path + ": metadata key 'tokenizer.ggml.tokens' has type array of string, expected an unsigned integer");
  EXPECT_EQ(message([&] { gguf.get_uint("test.i8"); }),
            path + ": metadata key 'test.i8' is -2, expected a non-negative integer");
  EXPECT_NE(message([&] { gguf.get_int("test.u64"); }).find("more than a signed 64-bit integer holds"),
            std::string::npos);
  EXPECT_NE(message([&] { gguf.get_float("test.i8"); }).find("has type i8, expected f32 or f64"), std::string::npos);
  EXPECT_NE(message([&] { gguf.get_string_array("test.floats"); }).find("has type array of f32, expected array of string"),
            std::string::npos);
  EXPECT_NE(message([&] { gguf.get_int_array("test.nested"); }).find("array of array"), std::string::npos);
}

TEST_F(GgufTest, ReadsTensorsAndDequantizesThem) {
  const GgufFile gguf = GgufFile::open(write(build(valid_spec())));
  ASSERT_EQ(gguf.tensors().size(), 3u);
  const GgufTensor* q8 = gguf.find("blk.0.weight");
  ASSERT_NE(q8, nullptr);
  EXPECT_EQ(q8->dims, (std::vector<uint64_t>{32, 2}));
  EXPECT_EQ(q8->type, kGgmlQ8_0);
  EXPECT_EQ(q8->elements, 64u);
  EXPECT_EQ(q8->bytes, 68u);
  EXPECT_EQ(q8->data, gguf.tensors()[0].data);
  const std::vector<float> q8_values = gguf.to_float(*q8);
  ASSERT_EQ(q8_values.size(), 64u);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(q8_values[j], 0.5f * static_cast<float>(j - 16)) << j;
    EXPECT_EQ(q8_values[32 + j], 0.5f * static_cast<float>(15 - j)) << j;
  }
  const GgufTensor* f16 = gguf.find("blk.0.bias");
  ASSERT_NE(f16, nullptr);
  EXPECT_EQ(gguf.to_float(*f16), (std::vector<float>{1.0f, -2.0f, 0.333251953125f}));
  EXPECT_EQ(f16->data - q8->data, 96);
  const GgufTensor* f32 = gguf.find("output_norm.weight");
  ASSERT_NE(f32, nullptr);
  EXPECT_EQ(f32->dims.size(), 4u);
  EXPECT_EQ(gguf.to_float(*f32), (std::vector<float>{4.0f, -8.0f}));
  EXPECT_EQ(gguf.find("missing"), nullptr);
  EXPECT_EQ(gguf.data_offset() % 32, 0u);
}

TEST_F(GgufTest, AcceptsVersion2AndAnotherAlignment) {
  GgufSpec spec = valid_spec();
  spec.version = 2;
  spec.kvs[2] = kv("general.alignment", GgufValueType::UInt32, Bytes().u32(64));
  spec.alignment = 64;
  spec.tensors[1].offset = 128;
  spec.tensors[2].offset = 192;
  const GgufFile gguf = GgufFile::open(write(build(spec)));
  EXPECT_EQ(gguf.version(), 2u);
  EXPECT_EQ(gguf.alignment(), 64u);
  EXPECT_EQ(gguf.data_offset() % 64, 0u);
  EXPECT_EQ(gguf.to_float(*gguf.find("output_norm.weight")), (std::vector<float>{4.0f, -8.0f}));
}

TEST_F(GgufTest, AFileWithoutTensorsOrMetadataIsValid) {
  GgufSpec spec;
  const GgufFile gguf = GgufFile::open(write(build(spec)));
  EXPECT_TRUE(gguf.tensors().empty());
  EXPECT_TRUE(gguf.metadata().empty());
}

TEST_F(GgufTest, RefusesABadMagic) {
  GgufSpec spec = valid_spec();
  spec.magic = "GGML";
  expect_refused(build(spec), {"not a GGUF file", "'GGML'"});
  expect_refused("GG", {"not a GGUF file"});
  expect_refused("", {"not a GGUF file"});
}

TEST_F(GgufTest, RefusesOtherVersions) {
  GgufSpec spec = valid_spec();
  spec.version = 1;
  expect_refused(build(spec), {"GGUF version 1, expected 2 or 3"});
  spec.version = 4;
  expect_refused(build(spec), {"GGUF version 4, expected 2 or 3"});
  spec.version = 0x03000000;
  expect_refused(build(spec), {"big-endian"});
  expect_refused("GGUF\x03", {"truncated GGUF file", "version"});
}

TEST_F(GgufTest, RefusesAMetadataTableRunningPastTheEnd) {
  const std::string whole = build(valid_spec());
  // Cut inside the token array (the 9th entry).
  const size_t cut = whole.find("tokenizer.ggml.tokens") + 30;
  expect_refused(whole.substr(0, cut), {"truncated GGUF file", "metadata key 'tokenizer.ggml.tokens'"});
  GgufSpec spec = valid_spec();
  spec.kv_count = 13;  // one more than there are: the tensor infos are read as an entry
  expect_refused(build(spec), {""});
  spec.kv_count = uint64_t{1} << 60;
  expect_refused(build(spec), {"metadata entries cannot fit"});
}

TEST_F(GgufTest, RefusesATensorTableRunningPastTheEnd) {
  const std::string whole = build(valid_spec());
  const size_t cut = whole.find("output_norm.weight") + 20;
  expect_refused(whole.substr(0, cut), {"truncated GGUF file", "tensor info 2 of 3 ('output_norm.weight')"});
  GgufSpec spec = valid_spec();
  spec.tensor_count = uint64_t{1} << 61;
  expect_refused(build(spec), {"tensor infos cannot fit"});
}

TEST_F(GgufTest, RefusesATensorOutsideTheFile) {
  GgufSpec spec = valid_spec();
  const std::string whole = build(spec);
  expect_refused(whole.substr(0, whole.size() - 1), {"tensor 'output_norm.weight'", "runs past the end"});
  // The last tensor's offset field (u64 right before the padding) set far beyond the file.
  spec.tensors[2].offset = uint64_t{1} << 40;
  spec.tensors[2].data.clear();
  expect_refused(build(spec), {"tensor 'output_norm.weight'", "8 bytes at data offset 1099511627776"});
  spec.tensors[2].offset = UINT64_MAX - 31;  // offset + bytes overflows
  expect_refused(build(spec), {"tensor 'output_norm.weight'", "runs past the end"});
}

TEST_F(GgufTest, RefusesAMisalignedTensor) {
  GgufSpec spec = valid_spec();
  spec.tensors[2].offset = 136;
  expect_refused(build(spec), {"tensor 'output_norm.weight' starts at data offset 136, not a multiple of the "
                               "alignment 32"});
}

TEST_F(GgufTest, RefusesAnAlignmentThatIsNoPowerOfTwo) {
  GgufSpec spec = valid_spec();
  spec.kvs[2] = kv("general.alignment", GgufValueType::UInt32, Bytes().u32(48));
  expect_refused(build(spec), {"general.alignment is 48, expected a power of two"});
  spec.kvs[2] = kv("general.alignment", GgufValueType::UInt32, Bytes().u32(0));
  expect_refused(build(spec), {"general.alignment is 0"});
  spec.kvs[2] = kv_string("general.alignment", "32");
  expect_refused(build(spec), {"metadata key 'general.alignment' has type string"});
}

TEST_F(GgufTest, RefusesAnUnknownGgmlType) {
  GgufSpec spec = valid_spec();
  spec.tensors[1].type = 16;
  expect_refused(build(spec), {"tensor 'blk.0.bias' has ggml type 16 (IQ2_XXS), which is not supported"});
  spec.tensors[1].type = 99;
  expect_refused(build(spec), {"tensor 'blk.0.bias' has ggml type 99 (not a ggml type)"});
}

TEST_F(GgufTest, RefusesADuplicateTensorName) {
  GgufSpec spec = valid_spec();
  spec.tensors[2].name = "blk.0.weight";
  expect_refused(build(spec), {"tensor 'blk.0.weight' appears twice"});
}

TEST_F(GgufTest, RefusesADuplicateKey) {
  GgufSpec spec = valid_spec();
  spec.kvs.push_back(kv_u32("rwkv7.block_count", 3));
  expect_refused(build(spec), {"metadata key 'rwkv7.block_count' appears twice"});
}

TEST_F(GgufTest, RefusesHugeStringLengths) {
  GgufSpec spec = valid_spec();
  Bytes huge_key;
  huge_key.u64(uint64_t{1} << 62);
  spec.kvs.insert(spec.kvs.begin() + 1, huge_key.s);
  expect_refused(build(spec), {"metadata entry 1 of 13", "key of 4611686018427387904 bytes", "65535 bytes allowed"});
  spec = valid_spec();
  spec.kvs[0] = kv("general.architecture", GgufValueType::String, Bytes().u64(uint64_t{1} << 62).u32(0));
  expect_refused(build(spec), {"truncated GGUF file", "metadata key 'general.architecture'", "4611686018427387904 bytes"});
  spec = valid_spec();
  spec.kvs[8] = kv("tokenizer.ggml.tokens", GgufValueType::Array,
                   Bytes().u32(type_number(GgufValueType::String)).u64(1).u64(UINT64_MAX));
  expect_refused(build(spec), {"truncated GGUF file", "tokenizer.ggml.tokens"});
  spec = valid_spec();
  spec.tensors[0].name = std::string(70000, 'x');
  expect_refused(build(spec), {"tensor info 0 of 3", "name of 70000 bytes"});
}

TEST_F(GgufTest, RefusesHugeOrDeepArrays) {
  GgufSpec spec = valid_spec();
  spec.kvs[9] = kv("tokenizer.ggml.token_type", GgufValueType::Array,
                   Bytes().u32(type_number(GgufValueType::Int32)).u64(uint64_t{1} << 62));
  expect_refused(build(spec), {"array of 4611686018427387904 i32 values cannot fit"});
  Bytes deep;
  for (int i = 0; i < 9; ++i) deep.u32(type_number(GgufValueType::Array)).u64(1);
  deep.u32(0).u64(0);
  spec = valid_spec();
  spec.kvs[11] = kv("test.nested", GgufValueType::Array, deep);
  expect_refused(build(spec), {"metadata key 'test.nested'", "nested more than 8 deep"});
  spec.kvs[11] = kv("test.nested", GgufValueType::Array, Bytes().u32(13).u64(0));
  expect_refused(build(spec), {"unknown array element type 13"});
  spec.kvs[11] = kv("test.nested", static_cast<GgufValueType>(13), Bytes());
  expect_refused(build(spec), {"metadata key 'test.nested' has unknown value type 13"});
}

TEST_F(GgufTest, RefusesOverlappingTensors) {
  GgufSpec spec = valid_spec();
  spec.tensors[1].offset = 64;  // inside the 68 bytes of blk.0.weight
  expect_refused(build(spec), {"tensors 'blk.0.weight' (data bytes 0 to 68) and 'blk.0.bias' (data bytes 64 to 70) "
                               "overlap"});
  spec = valid_spec();
  spec.tensors[2].offset = 0;  // the same start, listed last
  expect_refused(build(spec), {"overlap", "'output_norm.weight'"});
}

TEST_F(GgufTest, RefusesBadShapes) {
  GgufSpec spec = valid_spec();
  spec.tensors[2].dims = {2, 1, 1, 1, 1};
  expect_refused(build(spec), {"tensor 'output_norm.weight' has 5 dimensions, at most 4"});
  spec = valid_spec();
  spec.tensors[2].dims = {uint64_t{1} << 32, uint64_t{1} << 32};
  expect_refused(build(spec), {"tensor 'output_norm.weight' has dimensions [4294967296, 4294967296] whose product "
                               "overflows"});
  spec = valid_spec();
  spec.tensors[0].dims = {16, 4};
  expect_refused(build(spec), {"tensor 'blk.0.weight' has rows of 16 values, not a whole number of the 32-value "
                               "blocks of Q8_0"});
}

TEST_F(GgufTest, RefusesNamesWithControlCharactersEscaped) {
  GgufSpec spec = valid_spec();
  spec.tensors[1].name = "bad\x1b[2Jname";
  spec.tensors[2].name = "bad\x1b[2Jname";
  expect_refused(build(spec), {"tensor 'bad\\x1b[2Jname' appears twice"});
}

TEST_F(GgufTest, RefusesADirectory) {
  try {
    GgufFile::open(dir_.path().string());
    FAIL() << "expected an error";
  } catch (const rwkv::Error& e) {
    EXPECT_NE(std::string(e.what()).find("directory"), std::string::npos) << e.what();
  }
}

// llama.cpp's own files (tests/fixtures, written by tools/fixtures/make_gguf_fixtures.sh):
// every quantized tensor stays near the reference file's, so the block layouts are
// llama.cpp's. `require_type`: the file must hold a tensor of that type (the tiny
// models' rows of 64 are too short for K-quant super-blocks: llama.cpp falls back).
void expect_close_to(const GgufFile& reference, const std::filesystem::path& path, const std::string& type,
                     double tolerance, bool require_type) {
  if (!std::filesystem::exists(path)) return;
  const GgufFile quantized = GgufFile::open(path.string());
  ASSERT_EQ(quantized.tensors().size(), reference.tensors().size()) << path;
  bool saw_type = false;
  for (const GgufTensor& t : quantized.tensors()) {
    const GgufTensor* r = reference.find(t.name);
    ASSERT_NE(r, nullptr) << t.name;
    ASSERT_EQ(t.dims, r->dims) << t.name;
    saw_type = saw_type || rwkv::convert::ggml_type_info(t.type)->name == type;
    const std::vector<float> a = quantized.to_float(t), b = reference.to_float(*r);
    double max_abs = 0, max_diff = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      max_abs = std::max(max_abs, std::abs(double(b[i])));
      max_diff = std::max(max_diff, std::abs(double(a[i]) - double(b[i])));
    }
    EXPECT_LE(max_diff, tolerance * std::max(max_abs, 1e-6)) << path << ": " << t.name;
  }
  if (require_type) {
    EXPECT_TRUE(saw_type) << path << " holds no tensor of type " << type;
  }
}

TEST(GgufFixtures, QuantizedFilesMatchTheF32File) {
  const std::filesystem::path fixtures = rwkv_test::fixtures_dir();
  const std::filesystem::path f32_path = fixtures / "tiny-v7.0.F32.gguf";
  if (!std::filesystem::exists(f32_path)) GTEST_SKIP() << f32_path << " not found";
  const GgufFile reference = GgufFile::open(f32_path.string());
  const std::tuple<const char*, double, bool> types[] = {
      {"F16", 1e-3, true},  {"BF16", 1e-2, true}, {"Q8_0", 1e-2, true},  {"Q6_K", 3e-2, false},
      {"Q5_0", 6e-2, true}, {"Q5_1", 6e-2, true}, {"Q5_K", 6e-2, false}, {"Q4_0", 0.12, true},
      {"Q4_1", 0.12, true}, {"Q4_K", 0.12, false}};
  for (const auto& [type, tolerance, require_type] : types) {
    expect_close_to(reference, fixtures / (std::string("tiny-v7.0.") + type + ".gguf"), type, tolerance, require_type);
  }
}

// The one fixture with rows of 256: real K-quant blocks, against its Q8_0 file.
TEST(GgufFixtures, KQuantBlocksMatchTheQ8_0File) {
  const std::filesystem::path fixtures = rwkv_test::fixtures_dir();
  const std::filesystem::path q8_path = fixtures / "tiny-v7.0-c256.Q8_0.gguf";
  if (!std::filesystem::exists(q8_path)) GTEST_SKIP() << q8_path << " not found";
  const GgufFile reference = GgufFile::open(q8_path.string());
  const std::pair<const char*, double> types[] = {{"Q6_K", 4e-2}, {"Q5_K", 7e-2}, {"Q4_K", 0.13}};
  for (const auto& [type, tolerance] : types) {
    expect_close_to(reference, fixtures / (std::string("tiny-v7.0-c256.") + type + ".gguf"), type, tolerance, true);
  }
}

}  // namespace
