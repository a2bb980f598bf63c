// Reads official PyTorch checkpoints (.pth) as torch.save writes them since
// PyTorch 1.6: a zip archive of stored (uncompressed) entries holding
// `<archive>/data.pkl` (a pickle of the state dict) and one raw file per storage,
// `<archive>/data/<key>`. Tensors are views into the mapped file: nothing is copied
// until to_float() is called.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "weights/mapped_file.hpp"

namespace rwkv::convert {

enum class PthDType { Float32, Float16, BFloat16, Float64, Int64, Int32, Int8, UInt8, Bool };

const char* pth_dtype_name(PthDType t);
size_t pth_dtype_size(PthDType t);

struct PthTensor {
  std::string name;               // the state-dict key, e.g. "blocks.0.att.key.weight"
  PthDType dtype = PthDType::Float32;
  std::vector<int64_t> shape;     // as torch reports it
  std::vector<int64_t> stride;    // in elements
  const std::byte* data = nullptr;  // first element (storage start + storage_offset), in the mapped file
  int64_t numel() const;
  bool is_contiguous() const;
  // The values as float32 in row-major order of `shape`, honouring strides.
  // Throws rwkv::Error for non-floating dtypes.
  std::vector<float> to_float() const;
};

class PthCheckpoint {
 public:
  // Throws rwkv::Error naming `path` and the problem: missing file, not a zip
  // (the pre-1.6 legacy format gets its own message), truncated archive,
  // compressed entries, malformed pickle, storages too small for their tensors.
  static PthCheckpoint open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  // In the order the pickle lists them (the checkpoint's own order).
  const std::vector<PthTensor>& tensors() const { return tensors_; }
  const PthTensor* find(std::string_view name) const;

 private:
  MappedFile file_;
  std::vector<PthTensor> tensors_;
};

}  // namespace rwkv::convert
