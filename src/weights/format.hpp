// The native model file: what `rwkv-cli convert` writes and Model::load maps.
// The layout is documented in docs/format.md; this header is its definition.
//
// All integers little-endian. A fixed 128-byte header, a tensor table, then the
// tensor data, each tensor at an offset that is a multiple of 64 so that it can
// be used in place from the mapped file with aligned SIMD loads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/dtype.hpp"
#include "kernels/matvec.hpp"
#include "rwkv/model_info.hpp"
#include "weights/mapped_file.hpp"

namespace rwkv {

inline constexpr char kNativeMagic[8] = {'R', 'W', 'K', 'V', 'N', 'A', 'T', 'V'};
// Version 2 stores per-head tensors with their [n_head, head_size] shape (version 1
// stored them flat, so a header with the heads re-split could not be told apart).
inline constexpr uint32_t kNativeFormatVersion = 2;
inline constexpr uint32_t kNativeHeaderBytes = 128;
inline constexpr uint64_t kTensorAlignment = 64;


// One tensor as the native file describes it; `data` points into the mapping.
struct NativeTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<uint64_t> shape;  // row-major, outermost first
  uint64_t offset = 0;
  uint64_t bytes = 0;
  const std::byte* data = nullptr;
  // How `data`'s bytes are arranged: the file's rows, or a packed copy (pack_for_kernels).
  WeightLayout layout = WeightLayout::Rows;

  uint64_t numel() const;
};

// A mapped, validated native file.
struct NativeFile {
  MappedFile file;
  ModelInfo info;
  std::vector<NativeTensor> tensors;
  // An embedded World vocabulary (the text of a vocabulary file), empty if none.
  std::string_view vocabulary;
  // The packed copies of tensors that pack_for_kernels made, which their `data` point into.
  AnonymousMemory packed;

  const NativeTensor* find(const std::string& name) const;
};

// Maps `path` and validates the header and every table entry against the file.
NativeFile read_native_file(const std::string& path);

// A tensor to be written: its name, type and shape are known before its values,
// so that the writer can lay out the file and then stream one tensor at a time.
struct TensorPlan {
  std::string name;
  DType dtype = DType::F32;
  std::vector<uint64_t> shape;
  uint64_t bytes() const;
};

// Produces the stored bytes of tensor `index` (exactly plan[index].bytes() of them).
using TensorProducer = std::function<std::vector<std::byte>(size_t index)>;

// Writes to a temporary name next to `path` and renames it into place when complete,
// so that a failed or interrupted write never leaves a partial model at `path`.
// `vocabulary`, when not empty, is stored after the tensors (the text of a World
// vocabulary file, from an import that carries its tokenizer).
void write_native_file(const std::string& path, const ModelInfo& info, const std::vector<TensorPlan>& plan,
                       const TensorProducer& produce, std::string_view vocabulary = {});

}  // namespace rwkv
