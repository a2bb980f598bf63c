// Looks tensors up in a native file by name and checks their type and shape, so
// that each architecture's binding code reads as its tensor table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/matvec.hpp"
#include "weights/format.hpp"

namespace rwkv {

class WeightBinder {
 public:
  explicit WeightBinder(const NativeFile& file) : file_(file), used_(file.tensors.size(), false) {}

  // A float32 tensor of exactly `shape` (its values, flattened).
  const float* f32(const std::string& name, const std::vector<uint64_t>& shape) const;
  // A float32 vector of `n` values.
  const float* vec(const std::string& name, uint64_t n) const { return f32(name, {n}); }
  // A [rows, cols] matrix of any weight type; rows == 0 accepts any row count.
  MatrixRef matrix(const std::string& name, uint32_t rows, uint32_t cols) const;
  // A tensor of exactly `shape` and any weight type.
  struct Typed {
    DType dtype;
    const void* data;
  };
  Typed tensor(const std::string& name, const std::vector<uint64_t>& shape) const;
  bool has(const std::string& name) const { return file_.find(name) != nullptr; }
  // Throws unless every tensor of the file was bound: a tensor the header's architecture
  // and sizes do not call for means the header and the table disagree (a lowered
  // n_layer, another version's tensors), which would otherwise be ignored silently.
  void require_all_bound() const;
  // The tensor `name` (marked bound); throws naming the file when it is missing.
  const NativeTensor& get(const std::string& name) const;
  // Throws rwkv::Error with the file's path in front of `message`.
  [[noreturn]] void fail(const std::string& message) const;

 private:
  const NativeFile& file_;
  mutable std::vector<bool> used_;  // (tensors) bound so far
};

// "blocks.{layer}.{suffix}"
std::string layer_tensor(uint32_t layer, const char* suffix);

}  // namespace rwkv
