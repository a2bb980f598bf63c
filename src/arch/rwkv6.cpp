// Follows the official RNN-mode code: ChatRWKV rwkv/model.py `att_one_v6_0` and
// `ffn_one_v6`, and RWKV_v6_demo.py.
#include "arch/rwkv6.hpp"

#include <algorithm>
#include <cmath>

#include "arch/rwkv5.hpp"
#include "kernels/dtype.hpp"
#include "kernels/vector_math.hpp"

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
    l.bonus = w.f32(layer_tensor(i, "att.bonus"), {info.n_head, info.head_size});
    l.key = w.matrix(layer_tensor(i, "att.key.weight"), C, C);
    l.value = w.matrix(layer_tensor(i, "att.value.weight"), C, C);
    l.receptance = w.matrix(layer_tensor(i, "att.receptance.weight"), C, C);
    l.gate = w.matrix(layer_tensor(i, "att.gate.weight"), C, C);
    l.output = w.matrix(layer_tensor(i, "att.output.weight"), C, C);
    l.ffn = bind_channel_mix(w, i, C, info.n_ffn);
    out.layers.push_back(l);
  }
  return out;
}

uint32_t state_floats_per_layer(const V6Weights&, const ModelInfo& info) {
  return 2 * info.n_embd + info.n_head * info.head_size * info.head_size;
}

void init_state(const V6Weights&, const ModelInfo&, State& state) { std::fill(state.data.begin(), state.data.end(), 0.0f); }

namespace {

void time_mix(const V6Layer& p, const ModelInfo& info, const float* xx, uint32_t T, float* s, float* x,
              Scratch& scratch) {
  const uint32_t C = info.n_embd;
  const uint32_t D = p.maa_w2_part.cols;
  const size_t TC = size_t(T) * C;
  float* shift = s;
  float* S = s + C;
  float* delta = scratch.take(TC);
  float* xxx = scratch.take(TC);
  each_token(xx, shift, T, C, [&](uint32_t t, const float* cur, const float* prev) {
    for (uint32_t c = 0; c < C; ++c) {
      const size_t i = size_t(t) * C + c;
      delta[i] = prev[c] - cur[c];
      xxx[i] = cur[c] + delta[i] * p.maa_x[c];
    }
  });
  std::copy(xx + TC - C, xx + TC, shift);
  float* lora = scratch.take(size_t(T) * 5 * D);
  matmat(p.maa_w1, xxx, lora, T);
  tanh_inplace(lora, uint32_t(size_t(T) * 5 * D));
  // The five data-dependent mix offsets, in the official order w, k, v, r, g.
  const float* maa[5] = {p.maa_w, p.maa_k, p.maa_v, p.maa_r, p.maa_g};
  float* mixed[5];
  float* part_input = scratch.take(size_t(T) * D);
  float* offset = scratch.take(TC);
  const size_t part_bytes = size_t(C) * dtype_row_bytes(p.maa_w2_part.dtype, D);
  for (int m = 0; m < 5; ++m) {
    MatrixRef part = p.maa_w2_part;
    part.data = static_cast<const std::byte*>(p.maa_w2) + m * part_bytes;
    for (uint32_t t = 0; t < T; ++t) {
      std::copy_n(lora + (size_t(t) * 5 + m) * D, D, part_input + size_t(t) * D);
    }
    matmat(part, part_input, offset, T);
    mixed[m] = scratch.take(TC);
    for (size_t i = 0; i < TC; ++i) mixed[m][i] = xx[i] + delta[i] * (maa[m][i % C] + offset[i]);
  }
  const float *wx = mixed[0], *kx = mixed[1], *vx = mixed[2], *rx = mixed[3], *gx = mixed[4];

  float* r = scratch.take(TC);
  float* k = scratch.take(TC);
  float* v = scratch.take(TC);
  float* g = scratch.take(TC);
  matmat(p.receptance, rx, r, T);
  matmat(p.key, kx, k, T);
  matmat(p.value, vx, v, T);
  matmat(p.gate, gx, g, T);

  float* decay_lora = scratch.take(size_t(T) * p.decay_w1.rows);
  matmat(p.decay_w1, wx, decay_lora, T);
  tanh_inplace(decay_lora, uint32_t(size_t(T) * p.decay_w1.rows));
  float* w = scratch.take(TC);
  matmat(p.decay_w2, decay_lora, w, T);
  for (size_t i = 0; i < TC; ++i) w[i] = std::exp(-std::exp(p.time_decay[i % C] + w[i]));

  float* y = scratch.take(TC);
  wkv5_tokens(r, k, v, w, C, p.bonus, S, y, T, info, p.ln_x);
  for (size_t i = 0; i < TC; ++i) y[i] *= silu(g[i]);
  float* out = scratch.take(TC);
  matmat(p.output, y, out, T);
  add_rows(x, out, T, C);
}

}  // namespace

void run_blocks(const V6Weights& w, const ModelInfo& info, float* x, uint32_t T, State& state) {
  const uint32_t C = info.n_embd;
  const uint32_t ffn_shift = C + info.n_head * info.head_size * info.head_size;
  run_layers(
      w.layers, C, x, T, state,
      [&](const V6Layer& p) { return 32 * C + 2 * info.n_ffn + 6 * p.maa_w2_part.cols + p.decay_w1.rows; },
      [&](uint32_t, const V6Layer& p, const float* xx, float* s, Scratch& scratch) {
        time_mix(p, info, xx, T, s, x, scratch);
      },
      [&](const V6Layer& p, const float* xx, float* s, Scratch& scratch) {
        channel_mix(p.ffn, xx, T, s + ffn_shift, x, C, scratch);
      });
}

}  // namespace rwkv::arch
