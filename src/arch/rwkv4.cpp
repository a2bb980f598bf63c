// Follows the official RNN-mode code: ChatRWKV rwkv/model.py `att_one` / `ffn_one`
// and RWKV_in_150_lines.py. The WKV state (aa, bb, pp) keeps the numerator and
// denominator scaled by exp(-pp), so no exponential overflows.
#include "arch/rwkv4.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/wkv.hpp"

namespace rwkv::arch {

V4Weights bind_v4(const WeightBinder& w, const ModelInfo& info) {
  const uint32_t C = info.n_embd;
  V4Weights out;
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    V4Layer l;
    l.ln1 = bind_norm(w, layer_tensor(i, "ln1"), C);
    l.ln2 = bind_norm(w, layer_tensor(i, "ln2"), C);
    l.time_mix_k = w.vec(layer_tensor(i, "att.time_mix_k"), C);
    l.time_mix_v = w.vec(layer_tensor(i, "att.time_mix_v"), C);
    l.time_mix_r = w.vec(layer_tensor(i, "att.time_mix_r"), C);
    l.log_decay = w.vec(layer_tensor(i, "att.log_decay"), C);
    l.bonus = w.vec(layer_tensor(i, "att.bonus"), C);
    l.key = w.matrix(layer_tensor(i, "att.key.weight"), C, C);
    l.value = w.matrix(layer_tensor(i, "att.value.weight"), C, C);
    l.receptance = w.matrix(layer_tensor(i, "att.receptance.weight"), C, C);
    l.output = w.matrix(layer_tensor(i, "att.output.weight"), C, C);
    l.ffn = bind_channel_mix(w, i, C, info.n_ffn);
    out.layers.push_back(l);
  }
  return out;
}

uint32_t state_floats_per_layer(const V4Weights&, const ModelInfo& info) { return 5 * info.n_embd; }

void init_state(const V4Weights&, const ModelInfo& info, State& state) {
  const uint32_t C = info.n_embd;
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    auto s = state.layer(i);
    std::fill(s.begin(), s.end(), 0.0f);
    // pp starts at -1e30: the "previous maximum" of an empty sum; 0 would bias the first token.
    std::fill(s.begin() + 3 * C, s.begin() + 4 * C, -1e30f);
  }
}

namespace {

void time_mix(const V4Layer& p, const float* xx, uint32_t T, float* s, float* x, uint32_t C, Scratch& scratch) {
  float* shift = s;
  float* aa = s + C;
  float* bb = s + 2 * C;
  float* pp = s + 3 * C;
  const size_t TC = size_t(T) * C;
  float* kx = scratch.take(TC);
  float* vx = scratch.take(TC);
  float* rx = scratch.take(TC);
  each_token(xx, shift, T, C, [&](uint32_t t, const float* cur, const float* prev) {
    for (uint32_t c = 0; c < C; ++c) {
      kx[t * C + c] = cur[c] * p.time_mix_k[c] + prev[c] * (1.0f - p.time_mix_k[c]);
      vx[t * C + c] = cur[c] * p.time_mix_v[c] + prev[c] * (1.0f - p.time_mix_v[c]);
      rx[t * C + c] = cur[c] * p.time_mix_r[c] + prev[c] * (1.0f - p.time_mix_r[c]);
    }
  });
  std::copy(xx + TC - C, xx + TC, shift);
  float* r = scratch.take(TC);
  float* k = scratch.take(TC);
  float* v = scratch.take(TC);
  matmat(p.receptance, rx, r, T);
  matmat(p.key, kx, k, T);
  matmat(p.value, vx, v, T);
  float* y = scratch.take(TC);
  for (uint32_t t = 0; t < T; ++t) {
    const size_t at = size_t(t) * C;
    wkv4_step(k + at, v + at, p.log_decay, p.bonus, aa, bb, pp, y + at, C);
    for (uint32_t c = 0; c < C; ++c) y[at + c] *= sigmoid(r[at + c]);
  }
  float* out = scratch.take(TC);
  matmat(p.output, y, out, T);
  for (size_t i = 0; i < TC; ++i) x[i] += out[i];
}

}  // namespace

void run_blocks(const V4Weights& w, const ModelInfo& info, float* x, uint32_t T, State& state) {
  const uint32_t C = info.n_embd;
  run_layers(
      w.layers, C, x, T, state, [&](const V4Layer&) { return 16 * C + 2 * info.n_ffn; },
      [&](uint32_t, const V4Layer& p, const float* xx, float* s, Scratch& scratch) {
        time_mix(p, xx, T, s, x, C, scratch);
      },
      [&](const V4Layer& p, const float* xx, float* s, Scratch& scratch) {
        channel_mix(p.ffn, xx, T, s + 4 * C, x, C, scratch);
      });
}

}  // namespace rwkv::arch
