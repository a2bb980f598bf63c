// The recurrent state of an RWKV model: everything a model remembers of the tokens
// it has read. A plain value: copy it to clone, compare it, store it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace rwkv {

// Flat FP32 storage with a per-layer layout that follows the official code's state list:
//   v4:      att_x [C], att_aa [C], att_bb [C], att_pp [C], ffn_x [C]
//   v5, v6:  att_x [C], att_kv [H, N(key), N(value)], ffn_x [C]
//   v7:      att_x [C], att_kv [H, N(value), N(key)], ffn_x [C]
// where att_x / ffn_x are the layer-normed inputs of the previous token.
struct State {
  uint32_t n_layer = 0;
  uint32_t floats_per_layer = 0;
  std::vector<float> data;  // n_layer * floats_per_layer

  std::span<float> layer(uint32_t i) { return {data.data() + size_t(i) * floats_per_layer, floats_per_layer}; }
  std::span<const float> layer(uint32_t i) const {
    return {data.data() + size_t(i) * floats_per_layer, floats_per_layer};
  }
  bool operator==(const State&) const = default;
};

}  // namespace rwkv
