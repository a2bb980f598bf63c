// RWKV-7 "Goose": a generalized delta rule on a matrix-valued state, with
// data-dependent decay, in-context learning rate (a) and a value residual.
#pragma once

#include <vector>

#include "arch/blocks.hpp"
#include "rwkv/model_info.hpp"

namespace rwkv::arch {

struct V7Layer {
  Sizes sizes;
  Norm ln1, ln2, ln_x;
  const float* x_r = nullptr;  // [C] token-shift mixes
  const float* x_w = nullptr;
  const float* x_k = nullptr;
  const float* x_v = nullptr;
  const float* x_a = nullptr;
  const float* x_g = nullptr;
  const float* w0 = nullptr;  // [C]
  MatrixRef w1, w2;           // [D_w, C], [C, D_w]
  const float* a0 = nullptr;  // [C]
  MatrixRef a1, a2;           // [D_a, C], [C, D_a]
  const float* v0 = nullptr;  // [C], layers >= 1 (layer 0 defines v_first instead)
  MatrixRef v1, v2;           // [D_v, C], [C, D_v], layers >= 1
  MatrixRef g1, g2;           // [D_g, C], [C, D_g]
  const float* k_k = nullptr;  // [C]
  const float* k_a = nullptr;  // [C]
  const float* r_k = nullptr;  // [C] ([H, N] flattened)
  MatrixRef key, value, receptance, output;  // [C, C]
  const float* ffn_x_k = nullptr;  // [C]
  MatrixRef ffn_key;               // [F, C]
  MatrixRef ffn_value;             // [C, F]
};

struct V7Weights {
  StateLayout state;
  uint32_t att_shift = 0, wkv = 0, ffn_shift = 0;  // state offsets
  std::vector<V7Layer> layers;
};

V7Weights bind_v7(const WeightBinder& w, const ModelInfo& info);
// Runs every block on the residual stream x [T, C] of the pass\'s rows, advancing each run\'s state.
void run_blocks(const V7Weights& w, const ModelInfo& info, float* x, const Pass& pass);

}  // namespace rwkv::arch
