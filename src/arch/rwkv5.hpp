// RWKV-5 (5.0, 5.1, 5.2): multi-head matrix-valued state with fixed decays.
// 5.1 and 5.2 add a SiLU gate; 5.2 has per-channel rather than per-head decays
// (the converter expands both to per-channel vectors).
#pragma once

#include <vector>

#include "arch/blocks.hpp"
#include "rwkv/model_info.hpp"

namespace rwkv::arch {

struct V5Layer {
  Sizes sizes;
  Norm ln1, ln2, ln_x;
  const float* time_mix_k = nullptr;  // [C]
  const float* time_mix_v = nullptr;  // [C]
  const float* time_mix_r = nullptr;  // [C]
  const float* time_mix_g = nullptr;  // [C], 5.1 and 5.2 only
  const float* decay = nullptr;       // [C] = exp(-exp(time_decay)), per key channel
  const float* bonus = nullptr;       // [C] u, per key channel (5.0: exp(time_first))
  MatrixRef key, value, receptance, output;  // [C, C]
  MatrixRef gate;                            // [C, C], 5.1 and 5.2 only
  ChannelMix ffn;
};

struct V5Weights {
  Arch arch = Arch::V5_2;
  bool has_gate = false;
  StateLayout state;
  uint32_t att_shift = 0, wkv = 0, ffn_shift = 0;  // state offsets
  std::vector<V5Layer> layers;
};

V5Weights bind_v5(const WeightBinder& w, const ModelInfo& info);
// Runs every block on the residual stream x [T, C] of the pass\'s rows, advancing each run\'s state.
void run_blocks(const V5Weights& w, const ModelInfo& info, float* x, const Pass& pass);

// The v5/v6 WKV recurrence over the pass's rows: per token and head, y = r·(u ⊙ kᵀv + S),
// S ← kᵀv + w ⊙ S, with S [H, N(key), N(value)] at `wkv_offset` in each run's state, w and u
// per key channel; then y's group norm. r, k, v, y are [T, C]; w advances by
// w_token_stride per token (0: one decay for all tokens, as in v5). Runs and heads run in
// parallel, each through its tokens in order.
void wkv5_tokens(const float* r, const float* k, const float* v, const float* w, size_t w_token_stride,
                 const float* u, const Pass& pass, LayerStates states, uint32_t wkv_offset, float* y,
                 const ModelInfo& info, const Norm& ln_x);

}  // namespace rwkv::arch
