// RWKV-4: the WKV recurrence with fixed decays, per channel.
#pragma once

#include <vector>

#include "arch/blocks.hpp"
#include "rwkv/model_info.hpp"

namespace rwkv::arch {

struct V4Layer {
  Sizes sizes;
  Norm ln1, ln2;
  const float* time_mix_k = nullptr;  // [C]
  const float* time_mix_v = nullptr;  // [C]
  const float* time_mix_r = nullptr;  // [C]
  const float* log_decay = nullptr;   // [C] = -exp(time_decay), folded at conversion
  const float* bonus = nullptr;       // [C] = time_first
  MatrixRef key, value, receptance, output;  // [C, C]
  ChannelMix ffn;
};

struct V4Weights {
  StateLayout state;
  uint32_t att_shift = 0, aa = 0, bb = 0, pp = 0, ffn_shift = 0;  // state offsets
  std::vector<V4Layer> layers;
};

V4Weights bind_v4(const WeightBinder& w, const ModelInfo& info);
// Runs every block on the residual stream x [T, C] of the pass\'s rows, advancing each run\'s state.
void run_blocks(const V4Weights& w, const ModelInfo& info, float* x, const Pass& pass);

}  // namespace rwkv::arch
