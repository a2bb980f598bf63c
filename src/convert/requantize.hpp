// Native file → native file with other weight types: each tensor whose type changes is
// widened to float32 and encoded again; the rest is copied byte for byte.
#pragma once

#include <functional>
#include <string>

#include "convert/weight_types.hpp"
#include "rwkv/model.hpp"

namespace rwkv::convert {

struct RequantizeOptions {
  WeightTypes types;
  // Going from one lossy type to a different lossy one rounds values that were already
  // rounded, and the two errors add up: refused unless this is set.
  bool allow_requantize = false;
  std::function<void(size_t, size_t)> progress;  // (tensors done, tensors in all)
};

struct RequantizeResult {
  ModelInfo info;
  size_t converted_tensors = 0;  // tensors whose type changed
};

RequantizeResult requantize_native(const std::string& input, const std::string& output,
                                   const RequantizeOptions& options);

}  // namespace rwkv::convert
