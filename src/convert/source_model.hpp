// A checkpoint in any source format (official .pth, rwkv.cpp, GGUF, Hugging Face),
// presented as the official checkpoint it stands for: official tensor names, official
// shapes and values in the official order. Each importer is this mapping of names and
// transforms; the conversion to the native format (convert/to_native.hpp) is one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/dtype.hpp"
#include "rwkv/model.hpp"

namespace rwkv::convert {

struct SourceTensor {
  std::string name;             // official name, e.g. "blocks.0.att.key.weight"
  std::vector<int64_t> shape;   // official shape
  std::string type;             // the source's element type, e.g. "bf16", "Q5_1"
  std::function<std::vector<float>()> values;  // row-major in `shape`
  // The values already carry the version table's ValueMap (rwkv.cpp stores v4's
  // -exp(time_decay) as the official code computes it at load): taken as they are.
  bool mapped = false;
  // The narrowest native type that holds the values exactly as the source does (4/5-bit
  // and K-quant blocks: f16, by convention, lossless_by_convention set); a conversion's
  // default type.
  DType lossless = DType::F32;
  bool lossless_by_convention = false;
  // Set where the source holds a matrix as exactly the q8_0 blocks the native file
  // stores (ggml's Q8_0, rows as stored here): those bytes, kept bit for bit.
  std::function<std::vector<std::byte>()> q8_0_rows;

  int64_t numel() const;
};

struct SourceModel {
  std::string path;
  std::string format;  // "pth", "rwkv.cpp", "gguf", "safetensors"
  std::vector<SourceTensor> tensors;
  std::optional<TokenizerKind> tokenizer;  // where the source says
  // The World vocabulary the source carries (GGUF's tokens, a Hugging Face repository's
  // vocabulary file) as the text of a World vocabulary file, written into the native
  // file so that no vocabulary file is needed; empty if none.
  std::string vocabulary;
  std::shared_ptr<const void> owner;       // keeps what `tensors` read from alive

  const SourceTensor* find(std::string_view name) const;
};

// [rows, cols] values as [cols, rows]: importers turn stored [out, in] LoRA matrices
// back into the checkpoint's [in, out].
std::vector<float> transposed(const std::vector<float>& values, int64_t rows, int64_t cols);

// An official PyTorch checkpoint (torch.save zip).
SourceModel open_pth_source(const std::string& path);

// The model file formats told apart by their content (never by the file's name).
enum class SourceFormat { Native, Pth, RwkvCpp, Gguf, Safetensors, HuggingFaceDir, Unknown };
SourceFormat detect_source_format(const std::string& path);
const char* source_format_name(SourceFormat format);

// Any supported source, detected by content. Throws naming the file for a native model
// file (nothing to import) or an unknown format.
SourceModel open_source(const std::string& path);

}  // namespace rwkv::convert
