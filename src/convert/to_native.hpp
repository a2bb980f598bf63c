// Converts a checkpoint (any source format, seen as the official checkpoint it stands
// for) into the native model format: detects the architecture as the official code
// does, and through the version's table (arch/spec.hpp) checks every tensor's shape,
// applies the official load-time transforms once (decays exponentiated, per-head values
// broadcast, LoRA matrices transposed to [out, in]) and stores matrices in the
// requested type (vectors stay float32).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "convert/source_model.hpp"
#include "convert/weight_types.hpp"
#include "kernels/dtype.hpp"
#include "rwkv/model.hpp"

namespace rwkv::convert {

struct ConvertOptions {
  WeightTypes types;  // WeightTypes::for_type(t) gives the documented defaults for --type t
  std::optional<TokenizerKind> tokenizer;  // inferred from n_vocab when absent
  // Called after each tensor is written: (tensors done, tensors in all).
  std::function<void(size_t, size_t)> progress;
};

struct ConvertResult {
  ModelInfo info;
  std::vector<std::string> ignored_tensors;  // present in the checkpoint, unused by the architecture
};

// Architecture and sizes of a checkpoint, as the official code detects them.
// Throws rwkv::Error naming the file if it is not a recognisable RWKV checkpoint.
ModelInfo detect_model(const SourceModel& checkpoint, std::optional<TokenizerKind> tokenizer);

// The stored types that lose nothing more than the source already lost: for the large
// matrices the widest `lossless` type among them, for the embedding and head their own.
WeightTypes lossless_types(const SourceModel& source);

ConvertResult convert_source(const SourceModel& source, const std::string& output, const ConvertOptions& options);
// An official PyTorch checkpoint.
ConvertResult convert_pth(const std::string& input, const std::string& output, const ConvertOptions& options);

}  // namespace rwkv::convert
