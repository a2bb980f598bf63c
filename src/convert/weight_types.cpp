#include "convert/weight_types.hpp"

namespace rwkv::convert {

WeightTypes WeightTypes::for_type(DType matrices, std::optional<DType> embedding, std::optional<DType> head) {
  WeightTypes types;
  types.matrices = matrices;
  types.embedding = embedding.value_or(dtype_is_blocked(matrices) ? DType::F16 : matrices);
  types.head = head.value_or(matrices == DType::Q4_S ? DType::Q8_0 : matrices);
  return types;
}

DType stored_type(const std::string& name, size_t rank, const WeightTypes& types) {
  if (name == "emb.weight") return types.embedding;
  if (name == "head.weight") return types.head;
  // LoRA matrices are named without ".weight" (att.w1, time_maa_w1, ...), norms are rank 1.
  const std::string suffix = ".weight";
  const bool large_matrix =
      rank == 2 && name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  return large_matrix ? types.matrices : DType::F32;
}

}  // namespace rwkv::convert
