// Readers for safetensors files, as Hugging Face repositories store weights, over a
// read-only map of each file. Every tensor's range is checked at open: afterwards each
// lies inside the data section, apart from the others, of the size its shape and dtype
// call for.
//
//   const SafetensorsModel model = SafetensorsModel::open("path/to/repository");
//   for (const SafetensorsTensor& t : model.tensors()) use(t.name, t.shape, t.to_float());
//
// Layout: a little-endian u64 N, N bytes of JSON {"name": {"dtype": "F16", "shape": [2, 3],
// "data_offsets": [begin, end]}, ..., "__metadata__": {"key": "value"}}, then the data
// section, to which the offsets are relative.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "weights/mapped_file.hpp"

namespace rwkv::convert {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // as the header writes it: "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;  // row-major, as PyTorch's
  const std::byte* data = nullptr;  // into the map: valid while its file lives
  uint64_t bytes = 0;
  std::string path;            // the file it lives in, for messages

  uint64_t elements() const;
  // The values as float32 (F32, F16 and BF16 exactly). Throws rwkv::Error naming the
  // file, the tensor and its dtype for any other dtype.
  std::vector<float> to_float() const;
};

class SafetensorsFile {
 public:
  // Maps and checks the file. Throws rwkv::Error naming the path and the tensor or
  // field at fault and what was expected.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // by data offset
  const SafetensorsTensor* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"

 private:
  SafetensorsFile() = default;

  MappedFile file_;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A model's weights in one or several safetensors files: a single .safetensors file; a
// directory with model.safetensors; or a directory with model.safetensors.index.json,
// whose "weight_map" names the shard (a file in the same directory) of each tensor.
class SafetensorsModel {
 public:
  // Throws rwkv::Error naming the file at fault: a missing shard, a shard name that is
  // not a plain file name, a tensor in two shards or absent from the shard its index
  // names.
  static SafetensorsModel open(const std::string& dir_or_file);

  const std::vector<SafetensorsFile>& files() const { return files_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // all shards, shard by shard
  const SafetensorsTensor* find(const std::string& name) const;

 private:
  std::vector<SafetensorsFile> files_;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace rwkv::convert
