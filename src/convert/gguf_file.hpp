// A reader for GGUF (versions 2 and 3), llama.cpp's model file format, over a read-only
// map of the whole file. Every size and offset is checked against the file at open:
// afterwards each tensor's bytes lie inside the file, aligned, apart from every other
// tensor's, and of the size its shape and type call for.
//
//   const GgufFile gguf = GgufFile::open("model.gguf");
//   const uint64_t n_layer = gguf.get_uint("rwkv7.block_count");
//   const GgufTensor* emb = gguf.find("token_embd.weight");
//   std::vector<float> values = gguf.to_float(*emb);  // dims[0] varies fastest
//
// Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 key/value count;
// the key/values (key: u64 length + bytes; u32 value type; value); the tensor infos
// (name; u32 n_dims; u64 dims[n_dims]; u32 ggml type; u64 offset into the data
// section); padding to general.alignment (default 32); the data section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "weights/mapped_file.hpp"

namespace rwkv::convert {

// GGUF's metadata value types, numbered as in the file.
enum class GgufValueType : uint32_t {
  UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6,
  Bool = 7, String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
};
const char* gguf_value_type_name(GgufValueType type);  // "u32", "string", "array", ...

// One metadata entry; the value stays in the file and is read by GgufFile's getters.
struct GgufMetadata {
  std::string key;
  GgufValueType type;
  GgufValueType element_type = GgufValueType::UInt8;  // arrays only
  uint64_t count = 0;                                  // arrays only: number of elements
  uint64_t value_offset = 0;                           // where the value starts in the file
};

struct GgufTensor {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the length of a row (fastest-varying)
  uint32_t type = 0;           // a ggml type number that ggml_type_info supports
  uint64_t offset = 0;         // from the start of the data section
  uint64_t elements = 0;       // product of dims
  uint64_t bytes = 0;          // ggml_bytes(type, elements)
  const std::byte* data = nullptr;  // into the map: valid while the GgufFile lives
};

class GgufFile {
 public:
  // Maps and checks the whole file. Throws rwkv::Error naming the path and the field,
  // key or tensor at fault and what was expected.
  static GgufFile open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section in the file

  const std::vector<GgufMetadata>& metadata() const { return metadata_; }  // in file order
  bool has(const std::string& key) const { return find_metadata(key) != nullptr; }
  const GgufMetadata* find_metadata(const std::string& key) const;

  // Typed reads of one key. Each throws "PATH: metadata key 'K' is missing" or
  // "... has type T, expected ..." (or is out of range).
  std::string get_string(const std::string& key) const;
  uint64_t get_uint(const std::string& key) const;  // any integer type, if not negative
  int64_t get_int(const std::string& key) const;    // any integer type that fits int64
  double get_float(const std::string& key) const;   // f32 or f64
  bool get_bool(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;  // arrays of any integer type
  std::vector<double> get_float_array(const std::string& key) const;  // arrays of f32 or f64

  const std::vector<GgufTensor>& tensors() const { return tensors_; }  // in file order
  const GgufTensor* find(const std::string& name) const;
  // The tensor's values dequantized, dims[0] fastest (row-major in reversed dims).
  std::vector<float> to_float(const GgufTensor& tensor) const;

 private:
  GgufFile() = default;
  const GgufMetadata& require(const std::string& key) const;
  [[noreturn]] void wrong_type(const GgufMetadata& entry, const char* expected) const;

  MappedFile file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufMetadata> metadata_;
  std::unordered_map<std::string, size_t> metadata_index_;
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace rwkv::convert
