// Which stored type each tensor of a native file gets: shared by the converter and by
// requantization, so that both keep the same tensors float32.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "kernels/dtype.hpp"

namespace rwkv::convert {

struct WeightTypes {
  DType matrices = DType::F32;   // the C×C and FFN matrices
  DType embedding = DType::F32;  // emb.weight
  DType head = DType::F32;       // head.weight

  // The defaults for a --type: a block-quantized type keeps the embedding f16 (one row
  // is read per token, so its type costs file size, not speed, and f16 is near exact)
  // and gives q4_s a q8_0 head (the logits come straight out of it, and small models
  // spend a large share of their weights there). Otherwise both follow `matrices`.
  static WeightTypes for_type(DType matrices, std::optional<DType> embedding = std::nullopt,
                              std::optional<DType> head = std::nullopt);
};

// The stored type of the native tensor `name` of rank `rank`: the embedding and the
// head as chosen, the other rank-2 `*.weight` tensors (the large matrices) as
// `matrices`, everything else (vectors, decays, mixes, norms, LoRA matrices) float32.
DType stored_type(const std::string& name, size_t rank, const WeightTypes& types);

}  // namespace rwkv::convert
