// Converts an official PyTorch checkpoint into the native model format: detects the
// architecture as the official code does, checks every tensor's shape, applies the
// official load-time transforms once (decays exponentiated, per-head values
// broadcast, LoRA matrices transposed to [out, in]) and stores matrices in the
// requested type (vectors stay float32).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "convert/pth_checkpoint.hpp"
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
ModelInfo detect_model(const PthCheckpoint& checkpoint, std::optional<TokenizerKind> tokenizer);

ConvertResult convert_pth(const std::string& input, const std::string& output, const ConvertOptions& options);

}  // namespace rwkv::convert
