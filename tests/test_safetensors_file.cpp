// The safetensors readers on files written here: valid single files and sharded
// repositories read back, and one damaged copy per check, refused with a message that
// names the file and what is wrong.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "convert/safetensors_file.hpp"
#include "rwkv/error.hpp"
#include "test_support.hpp"

namespace {

using rwkv::convert::SafetensorsFile;
using rwkv::convert::SafetensorsModel;
using rwkv::convert::SafetensorsTensor;
using rwkv_test::ScratchDir;

std::string u64_le(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

std::string f32_bytes(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) {
    const uint32_t bits = std::bit_cast<uint32_t>(v);
    for (int i = 0; i < 4; ++i) s += static_cast<char>((bits >> (8 * i)) & 0xff);
  }
  return s;
}

std::string u16_bytes(std::initializer_list<uint16_t> values) {
  std::string s;
  for (uint16_t v : values) {
    s += static_cast<char>(v & 0xff);
    s += static_cast<char>(v >> 8);
  }
  return s;
}

// The length, the header (padded with spaces to a multiple of 8, as the library writes
// it), the data.
std::string safetensors(std::string header, const std::string& data) {
  while (header.size() % 8 != 0) header += ' ';
  return u64_le(header.size()) + header + data;
}

// a: F32 [2, 2] at 0..16; b: F16 [3] at 16..22; c: BF16 [1] at 22..24; ids: I64 [1] at 24..32.
const char* kHeader =
    R"({"__metadata__":{"format":"pt"},)"
    R"("b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},)"
    R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("c":{"dtype":"BF16","shape":[1],"data_offsets":[22,24]},)"
    R"("ids":{"dtype":"I64","shape":[1],"data_offsets":[24,32]}})";

std::string valid_data() {
  return f32_bytes({1.0f, -2.0f, 0.5f, 3.0f}) + u16_bytes({0x3c00, 0xc000, 0x0001}) + u16_bytes({0x4049}) + u64_le(7);
}

class SafetensorsTest : public ::testing::Test {
 protected:
  std::string write(const std::string& bytes, const std::string& name = "model.safetensors") {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // Opening `bytes` as a file fails with a message holding the path and each of `parts`.
  void expect_refused(const std::string& bytes, std::initializer_list<std::string> parts) {
    const std::string path = write(bytes);
    try {
      SafetensorsFile::open(path);
      ADD_FAILURE() << "expected an error containing '" << *parts.begin() << "'";
    } catch (const rwkv::Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(path), std::string::npos) << message;
      for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
    }
  }

  // Opening the directory as a model fails with a message holding each of `parts`.
  void expect_model_refused(const std::filesystem::path& where, std::initializer_list<std::string> parts) {
    try {
      SafetensorsModel::open(where.string());
      ADD_FAILURE() << "expected an error containing '" << *parts.begin() << "'";
    } catch (const rwkv::Error& e) {
      const std::string message = e.what();
      for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
    }
  }

  ScratchDir dir_;
};

TEST_F(SafetensorsTest, ReadsASingleFile) {
  const SafetensorsFile st = SafetensorsFile::open(write(safetensors(kHeader, valid_data())));
  ASSERT_EQ(st.tensors().size(), 4u);
  // In the order of their data.
  EXPECT_EQ(st.tensors()[0].name, "a");
  EXPECT_EQ(st.tensors()[1].name, "b");
  EXPECT_EQ(st.tensors()[3].name, "ids");
  const SafetensorsTensor* a = st.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, "F32");
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a->bytes, 16u);
  EXPECT_EQ(a->elements(), 4u);
  EXPECT_EQ(a->to_float(), (std::vector<float>{1.0f, -2.0f, 0.5f, 3.0f}));
  EXPECT_EQ(st.find("b")->to_float(), (std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(st.find("c")->to_float(), (std::vector<float>{3.140625f}));
  EXPECT_EQ(st.find("b")->data - a->data, 16);
  EXPECT_EQ(st.find("nope"), nullptr);
  EXPECT_EQ(st.metadata().at("format"), "pt");
  try {
    st.find("ids")->to_float();
    FAIL() << "expected an error";
  } catch (const rwkv::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'ids' has dtype I64; only F32, F16, BF16"), std::string::npos)
        << e.what();
  }
}

TEST_F(SafetensorsTest, ReadsEmptyAndScalarTensors) {
  const std::string header = R"({"empty":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},)"
                             R"("scalar":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})";
  const SafetensorsFile st = SafetensorsFile::open(write(safetensors(header, f32_bytes({2.5f}))));
  EXPECT_TRUE(st.find("empty")->to_float().empty());
  EXPECT_EQ(st.find("scalar")->to_float(), (std::vector<float>{2.5f}));
  EXPECT_TRUE(st.find("scalar")->shape.empty());
}

TEST_F(SafetensorsTest, RefusesAHeaderLengthBeyondTheFile) {
  expect_refused("abc", {"truncated safetensors file", "too short"});
  expect_refused(u64_le(100) + "{}", {"truncated safetensors file", "header of 100 bytes runs past the end of the 10-byte file"});
  expect_refused(u64_le(uint64_t{1} << 62) + "{}", {"header length 4611686018427387904 is more than the 100000000 bytes allowed"});
  expect_refused(u64_le(UINT64_MAX) + "{}", {"more than the 100000000 bytes allowed"});
}

TEST_F(SafetensorsTest, RefusesAHeaderThatIsNotAJsonObject) {
  expect_refused(safetensors("{\"a\": ", ""), {"the safetensors header is not valid JSON"});
  expect_refused(safetensors("[1, 2]", ""), {"the safetensors header is a JSON array, expected an object"});
  expect_refused(safetensors(R"({"a": 5})", ""), {"tensor 'a' is described by a JSON number"});
  expect_refused(safetensors(R"({"__metadata__": {"k": 1}})", ""), {"__metadata__ key 'k' is a JSON number"});
  expect_refused(safetensors(R"({"__metadata__": []})", ""), {"__metadata__ is a JSON array"});
  expect_refused(safetensors(R"({"a": {"shape": [1], "data_offsets": [0, 4]}})", f32_bytes({1})),
                 {"tensor 'a' has no dtype string"});
}

TEST_F(SafetensorsTest, RefusesAnUnknownDtype) {
  expect_refused(safetensors(R"({"w":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}})", "x"),
                 {"tensor 'w' has unknown dtype 'F7'"});
  expect_refused(safetensors(R"({"w\u001b[2J":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", "xxxx"),
                 {"tensor 'w\\x1b[2J' has unknown dtype 'f32'"});
}

TEST_F(SafetensorsTest, RefusesADtypeThatDoesNotMatchTheBytes) {
  expect_refused(safetensors(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,12]}})", std::string(24, '\0')),
                 {"tensor 'w': dtype F32 and shape [2,3] take 24 bytes, but data_offsets [0, 12] hold 12",
                  "the dtype does not match the bytes"});
  expect_refused(safetensors(R"({"w":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}})", std::string(16, '\0')),
                 {"the dtype does not match the bytes"});
}

TEST_F(SafetensorsTest, RefusesRangesOutsideTheDataSection) {
  expect_refused(safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(8, '\0')),
                 {"tensor 'w' has data_offsets [4, 12], outside the 8-byte data section"});
  expect_refused(safetensors(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", std::string(8, '\0')),
                 {"data_offsets [8, 4], outside"});
  expect_refused(safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551615,3]}})", ""),
                 {"tensor 'w' has data_offsets [18446744073709551615,3], expected [begin, end]"});
  expect_refused(safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "xxxx"),
                 {"expected [begin, end]"});
  expect_refused(safetensors(R"({"w":{"dtype":"F32","shape":[1]}})", "xxxx"), {"data_offsets missing"});
}

TEST_F(SafetensorsTest, RefusesBadShapes) {
  expect_refused(safetensors(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "xxxx"),
                 {"tensor 'w' has shape [-1], expected non-negative integers"});
  expect_refused(safetensors(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "xxxx"),
                 {"expected non-negative integers"});
  expect_refused(safetensors(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", "xxxx"),
                 {"whose element count overflows"});
  expect_refused(safetensors(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}})", "xxxx"),
                 {"takes more bytes than a 64-bit size holds"});
  expect_refused(safetensors(R"({"w":{"dtype":"F32","shape":"3","data_offsets":[0,4]}})", "xxxx"),
                 {"tensor 'w' has no shape array"});
}

TEST_F(SafetensorsTest, RefusesOverlappingRanges) {
  expect_refused(safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                             std::string(8, '\0')),
                 {"tensors 'a' (data bytes 0 to 8) and 'b' (data bytes 4 to 8) overlap"});
  // A long tensor around a short one that starts after it.
  expect_refused(safetensors(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                             R"("c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                             std::string(16, '\0')),
                 {"overlap"});
}

TEST_F(SafetensorsTest, RefusesADirectoryAsAFile) {
  try {
    SafetensorsFile::open(dir_.path().string());
    FAIL() << "expected an error";
  } catch (const rwkv::Error& e) {
    EXPECT_NE(std::string(e.what()).find("directory"), std::string::npos) << e.what();
  }
}

TEST_F(SafetensorsTest, ModelOpensAFileOrADirectoryWithModelSafetensors) {
  const std::string path = write(safetensors(kHeader, valid_data()));
  const SafetensorsModel from_file = SafetensorsModel::open(path);
  EXPECT_EQ(from_file.tensors().size(), 4u);
  const SafetensorsModel from_dir = SafetensorsModel::open(dir_.path().string());
  EXPECT_EQ(from_dir.tensors().size(), 4u);
  ASSERT_NE(from_dir.find("a"), nullptr);
  EXPECT_EQ(from_dir.find("a")->to_float(), (std::vector<float>{1.0f, -2.0f, 0.5f, 3.0f}));
  EXPECT_EQ(from_dir.find("a")->path, path);
}

// Two shards and their index, as transformers' save_pretrained writes them.
void write_sharded(const ScratchDir& dir, const std::string& index) {
  std::ofstream(dir / "model-00001-of-00002.safetensors", std::ios::binary)
      << safetensors(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("y":{"dtype":"BF16","shape":[1],"data_offsets":[8,10]}})",
                     f32_bytes({1.0f, 2.0f}) + u16_bytes({0xbf80}));
  std::ofstream(dir / "model-00002-of-00002.safetensors", std::ios::binary)
      << safetensors(R"({"z":{"dtype":"F16","shape":[1,1],"data_offsets":[0,2]}})", u16_bytes({0x4400}));
  std::ofstream(dir / "model.safetensors.index.json") << index;
}

const char* kIndex = R"({"metadata":{"total_size":12},"weight_map":{
  "x":"model-00001-of-00002.safetensors","y":"model-00001-of-00002.safetensors",
  "z":"model-00002-of-00002.safetensors"}})";

TEST_F(SafetensorsTest, ModelReadsAShardedDirectory) {
  write_sharded(dir_, kIndex);
  const SafetensorsModel model = SafetensorsModel::open(dir_.path().string());
  EXPECT_EQ(model.files().size(), 2u);
  ASSERT_EQ(model.tensors().size(), 3u);
  EXPECT_EQ(model.find("x")->to_float(), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(model.find("y")->to_float(), (std::vector<float>{-1.0f}));
  EXPECT_EQ(model.find("z")->to_float(), (std::vector<float>{4.0f}));
  EXPECT_EQ(model.find("z")->shape, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(std::filesystem::path(model.find("z")->path).filename(), "model-00002-of-00002.safetensors");
}

TEST_F(SafetensorsTest, ModelRefusesAMissingShard) {
  write_sharded(dir_, kIndex);
  std::filesystem::remove(dir_ / "model-00002-of-00002.safetensors");
  expect_model_refused(dir_.path(), {"model.safetensors.index.json", "missing shard 'model-00002-of-00002.safetensors'",
                                     "named for tensor 'z'"});
}

TEST_F(SafetensorsTest, ModelRefusesShardNamesOutsideTheDirectory) {
  for (const char* shard : {"../model-00001-of-00002.safetensors", "sub/model.safetensors", "..", "/etc/passwd", ""}) {
    write_sharded(dir_, std::string(R"({"weight_map":{"x":")") + shard + "\"}}");
    expect_model_refused(dir_.path(), {"weight_map names shard", "for tensor 'x': expected a file name inside the directory"});
  }
}

TEST_F(SafetensorsTest, ModelRefusesATensorInTwoShards) {
  write_sharded(dir_, kIndex);
  std::ofstream(dir_ / "model-00002-of-00002.safetensors", std::ios::binary)
      << safetensors(R"({"x":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})", u16_bytes({0x4400}));
  expect_model_refused(dir_.path(), {"tensor 'x' is in two shards", "model-00001-of-00002.safetensors",
                                     "model-00002-of-00002.safetensors"});
}

TEST_F(SafetensorsTest, ModelRefusesAnIndexEntryItsShardLacks) {
  write_sharded(dir_, R"({"weight_map":{"x":"model-00002-of-00002.safetensors",
                                        "y":"model-00001-of-00002.safetensors"}})");
  expect_model_refused(dir_.path(), {"weight_map puts tensor 'x' in shard 'model-00002-of-00002.safetensors', which "
                                     "does not hold it"});
}

TEST_F(SafetensorsTest, ModelRefusesABadIndexOrAnEmptyDirectory) {
  expect_model_refused(dir_.path(), {"no model.safetensors or model.safetensors.index.json in the directory"});
  write_sharded(dir_, "{not json");
  expect_model_refused(dir_.path(), {"model.safetensors.index.json: the safetensors index is not valid JSON"});
  write_sharded(dir_, R"({"weight_map":["x"]})");
  expect_model_refused(dir_.path(), {"no weight_map object"});
  write_sharded(dir_, R"({"weight_map":{"x":3}})");
  expect_model_refused(dir_.path(), {"weight_map gives tensor 'x' a JSON number"});
  write_sharded(dir_, R"({"weight_map":{"x":"model-00001-of-00002.safetensors"}})");
  std::ofstream(dir_ / "model-00001-of-00002.safetensors", std::ios::binary) << "short";
  expect_model_refused(dir_.path(), {"model-00001-of-00002.safetensors: truncated safetensors file"});
}

}  // namespace
