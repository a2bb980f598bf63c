// Follows the official RNN-mode code: ChatRWKV rwkv/model.py `att_one_v6_0` and
// `ffn_one_v6`, and RWKV_v6_demo.py.
#include "arch/rwkv6.hpp"

#include <algorithm>
#include <cmath>

#include "arch/rwkv5.hpp"
#include "kernels/dtype.hpp"

namespace rwkv::arch {

V6Weights bind_v6(const WeightBinder& w, const ModelInfo& info) {
  const uint32_t C = info.n_embd;
  V6Weights out;
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    V6Layer l;
    l.ln1 = bind_norm(w, layer_tensor(i, "ln1"), C);
    l.ln2 = bind_norm(w, layer_tensor(i, "ln2"), C);
    l.ln_x = bind_norm(w, layer_tensor(i, "att.ln_x"), C);
    l.maa_x = w.vec(layer_tensor(i, "att.time_maa_x"), C);
    l.maa_w = w.vec(layer_tensor(i, "att.time_maa_w"), C);
    l.maa_k = w.vec(layer_tensor(i, "att.time_maa_k"), C);
    l.maa_v = w.vec(layer_tensor(i, "att.time_maa_v"), C);
    l.maa_r = w.vec(layer_tensor(i, "att.time_maa_r"), C);
    l.maa_g = w.vec(layer_tensor(i, "att.time_maa_g"), C);
    l.maa_w1 = w.matrix(layer_tensor(i, "att.time_maa_w1"), 0, C);
    if (l.maa_w1.rows % 5 != 0) {
      w.fail(layer_tensor(i, "att.time_maa_w1") + " has " + std::to_string(l.maa_w1.rows) +
             " rows, expected five LoRA blocks (a multiple of 5)");
    }
    const uint32_t d_mix = l.maa_w1.rows / 5;
    const auto w2 = w.tensor(layer_tensor(i, "att.time_maa_w2"), {5, C, d_mix});
    l.maa_w2 = w2.data;
    l.maa_w2_part = MatrixRef{w2.dtype, C, d_mix, nullptr};
    l.time_decay = w.vec(layer_tensor(i, "att.time_decay"), C);
    l.decay_w1 = w.matrix(layer_tensor(i, "att.time_decay_w1"), 0, C);
    l.decay_w2 = w.matrix(layer_tensor(i, "att.time_decay_w2"), C, l.decay_w1.rows);
    l.bonus = w.vec(layer_tensor(i, "att.bonus"), C);
    l.key = w.matrix(layer_tensor(i, "att.key.weight"), C, C);
    l.value = w.matrix(layer_tensor(i, "att.value.weight"), C, C);
    l.receptance = w.matrix(layer_tensor(i, "att.receptance.weight"), C, C);
    l.gate = w.matrix(layer_tensor(i, "att.gate.weight"), C, C);
    l.output = w.matrix(layer_tensor(i, "att.output.weight"), C, C);
    l.ffn_maa_k = w.vec(layer_tensor(i, "ffn.time_maa_k"), C);
    l.ffn_maa_r = w.vec(layer_tensor(i, "ffn.time_maa_r"), C);
    l.ffn_key = w.matrix(layer_tensor(i, "ffn.key.weight"), info.n_ffn, C);
    l.ffn_value = w.matrix(layer_tensor(i, "ffn.value.weight"), C, info.n_ffn);
    l.ffn_receptance = w.matrix(layer_tensor(i, "ffn.receptance.weight"), C, C);
    out.layers.push_back(l);
  }
  return out;
}

uint32_t state_floats_per_layer(const V6Weights&, const ModelInfo& info) {
  return 2 * info.n_embd + info.n_head * info.head_size * info.head_size;
}

void init_state(const V6Weights&, const ModelInfo&, State& state) { std::fill(state.data.begin(), state.data.end(), 0.0f); }

namespace {

void time_mix(const V6Layer& p, const ModelInfo& info, const float* xx, float* s, float* x, Scratch& scratch) {
  const uint32_t C = info.n_embd;
  const uint32_t D = p.maa_w2_part.cols;
  float* shift = s;
  float* S = s + C;
  float* delta = scratch.take(C);
  float* xxx = scratch.take(C);
  for (uint32_t c = 0; c < C; ++c) {
    delta[c] = shift[c] - xx[c];
    xxx[c] = xx[c] + delta[c] * p.maa_x[c];
  }
  std::copy(xx, xx + C, shift);
  float* lora = scratch.take(5 * D);
  matvec(p.maa_w1, xxx, lora);
  for (uint32_t i = 0; i < 5 * D; ++i) lora[i] = std::tanh(lora[i]);
  // The five data-dependent mix offsets, in the official order w, k, v, r, g.
  const float* maa[5] = {p.maa_w, p.maa_k, p.maa_v, p.maa_r, p.maa_g};
  float* mixed[5];
  float* offset = scratch.take(C);
  const size_t part_bytes = size_t(C) * dtype_row_bytes(p.maa_w2_part.dtype, D);
  for (int m = 0; m < 5; ++m) {
    MatrixRef part = p.maa_w2_part;
    part.data = static_cast<const std::byte*>(p.maa_w2) + m * part_bytes;
    matvec(part, lora + m * D, offset);
    mixed[m] = scratch.take(C);
    for (uint32_t c = 0; c < C; ++c) mixed[m][c] = xx[c] + delta[c] * (maa[m][c] + offset[c]);
  }
  const float *wx = mixed[0], *kx = mixed[1], *vx = mixed[2], *rx = mixed[3], *gx = mixed[4];

  float* r = scratch.take(C);
  float* k = scratch.take(C);
  float* v = scratch.take(C);
  float* g = scratch.take(C);
  matvec(p.receptance, rx, r);
  matvec(p.key, kx, k);
  matvec(p.value, vx, v);
  matvec(p.gate, gx, g);

  float* decay_lora = scratch.take(p.decay_w1.rows);
  matvec(p.decay_w1, wx, decay_lora);
  for (uint32_t i = 0; i < p.decay_w1.rows; ++i) decay_lora[i] = std::tanh(decay_lora[i]);
  float* w = scratch.take(C);
  matvec(p.decay_w2, decay_lora, w);
  for (uint32_t c = 0; c < C; ++c) w[c] = std::exp(-std::exp(p.time_decay[c] + w[c]));

  float* y = scratch.take(C);
  wkv5_step(r, k, v, w, p.bonus, S, y, info.n_head, info.head_size);
  group_norm(y, p.ln_x.weight, p.ln_x.bias, info.n_head, info.head_size, kGroupNormEps);
  for (uint32_t c = 0; c < C; ++c) y[c] *= silu(g[c]);
  float* out = scratch.take(C);
  matvec(p.output, y, out);
  for (uint32_t c = 0; c < C; ++c) x[c] += out[c];
}

void channel_mix(const V6Layer& p, const ModelInfo& info, const float* xx, float* shift, float* x, Scratch& scratch) {
  const uint32_t C = info.n_embd;
  const uint32_t F = p.ffn_key.rows;
  float* kx = scratch.take(C);
  float* rx = scratch.take(C);
  for (uint32_t c = 0; c < C; ++c) {
    const float delta = shift[c] - xx[c];
    kx[c] = xx[c] + delta * p.ffn_maa_k[c];
    rx[c] = xx[c] + delta * p.ffn_maa_r[c];
  }
  std::copy(xx, xx + C, shift);
  float* r = scratch.take(C);
  float* k = scratch.take(F);
  float* v = scratch.take(C);
  matvec(p.ffn_receptance, rx, r);
  matvec(p.ffn_key, kx, k);
  for (uint32_t i = 0; i < F; ++i) k[i] = k[i] > 0.0f ? k[i] * k[i] : 0.0f;
  matvec(p.ffn_value, k, v);
  for (uint32_t c = 0; c < C; ++c) x[c] += sigmoid(r[c]) * v[c];
}

}  // namespace

void run_blocks(const V6Weights& w, const ModelInfo& info, float* x, State& state) {
  const uint32_t C = info.n_embd;
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    const V6Layer& p = w.layers[i];
    float* s = state.layer(i).data();
    Scratch scratch(32 * C + 2 * info.n_ffn + 5 * p.maa_w2_part.cols + p.decay_w1.rows);
    float* xx = scratch.take(C);
    layer_norm(x, p.ln1.weight, p.ln1.bias, xx, C, kLayerNormEps);
    time_mix(p, info, xx, s, x, scratch);
    layer_norm(x, p.ln2.weight, p.ln2.bias, xx, C, kLayerNormEps);
    channel_mix(p, info, xx, s + C + info.n_head * info.head_size * info.head_size, x, scratch);
  }
}

}  // namespace rwkv::arch
