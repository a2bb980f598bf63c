// RWKV-6: data-dependent token shift (a LoRA per mix) and data-dependent decay,
// over the RWKV-5.2 recurrence.
#pragma once

#include <vector>

#include "arch/blocks.hpp"
#include "rwkv/model_info.hpp"

namespace rwkv::arch {

struct V6Layer {
  Sizes sizes;
  Norm ln1, ln2, ln_x;
  const float* maa_x = nullptr;  // [C] time_maa_x
  const float* maa_w = nullptr;  // [C]
  const float* maa_k = nullptr;  // [C]
  const float* maa_v = nullptr;  // [C]
  const float* maa_r = nullptr;  // [C]
  const float* maa_g = nullptr;  // [C]
  MatrixRef maa_w1;              // [5 * D_mix, C] (checkpoint's time_maa_w1, transposed)
  const void* maa_w2 = nullptr;  // [5, C, D_mix]: five [C, D_mix] matrices (time_maa_w2, each transposed)
  MatrixRef maa_w2_part;         // shape and type of one of those five
  const float* time_decay = nullptr;  // [C]
  MatrixRef decay_w1;                 // [D_decay, C]
  MatrixRef decay_w2;                 // [C, D_decay]
  const float* bonus = nullptr;       // [C] u = time_faaaa
  MatrixRef key, value, receptance, gate, output;  // [C, C]
  // Channel mix.
  ChannelMix ffn;
};

struct V6Weights {
  StateLayout state;
  uint32_t att_shift = 0, wkv = 0, ffn_shift = 0;  // state offsets
  std::vector<V6Layer> layers;
};

V6Weights bind_v6(const WeightBinder& w, const ModelInfo& info);
// Runs every block on the residual stream x [T, C] of the pass\'s rows, advancing each run\'s state.
void run_blocks(const V6Weights& w, const ModelInfo& info, float* x, const Pass& pass);

}  // namespace rwkv::arch
