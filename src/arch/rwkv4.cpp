// Follows the official RNN-mode code: ChatRWKV rwkv/model.py `att_one` / `ffn_one`
// and RWKV_in_150_lines.py. The WKV state (aa, bb, pp) keeps the numerator and
// denominator scaled by exp(-pp), so no exponential overflows.
#include "arch/rwkv4.hpp"

#include <algorithm>
#include <cmath>

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
    l.ffn = bind_channel_mix_v4(w, i, C, info.n_ffn);
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

void time_mix(const V4Layer& p, const float* xx, float* s, float* x, uint32_t C, Scratch& scratch) {
  float* shift = s;
  float* aa = s + C;
  float* bb = s + 2 * C;
  float* pp = s + 3 * C;
  float* kx = scratch.take(C);
  float* vx = scratch.take(C);
  float* rx = scratch.take(C);
  for (uint32_t c = 0; c < C; ++c) {
    kx[c] = xx[c] * p.time_mix_k[c] + shift[c] * (1.0f - p.time_mix_k[c]);
    vx[c] = xx[c] * p.time_mix_v[c] + shift[c] * (1.0f - p.time_mix_v[c]);
    rx[c] = xx[c] * p.time_mix_r[c] + shift[c] * (1.0f - p.time_mix_r[c]);
  }
  std::copy(xx, xx + C, shift);
  float* r = scratch.take(C);
  float* k = scratch.take(C);
  float* v = scratch.take(C);
  matvec(p.receptance, rx, r);
  matvec(p.key, kx, k);
  matvec(p.value, vx, v);
  float* y = scratch.take(C);
  for (uint32_t c = 0; c < C; ++c) {
    float ww = p.bonus[c] + k[c];
    float q = std::max(pp[c], ww);
    float e1 = std::exp(pp[c] - q);
    float e2 = std::exp(ww - q);
    const float wkv = (e1 * aa[c] + e2 * v[c]) / (e1 * bb[c] + e2);
    ww = p.log_decay[c] + pp[c];
    q = std::max(ww, k[c]);
    e1 = std::exp(ww - q);
    e2 = std::exp(k[c] - q);
    aa[c] = e1 * aa[c] + e2 * v[c];
    bb[c] = e1 * bb[c] + e2;
    pp[c] = q;
    y[c] = sigmoid(r[c]) * wkv;
  }
  float* out = scratch.take(C);
  matvec(p.output, y, out);
  for (uint32_t c = 0; c < C; ++c) x[c] += out[c];
}

}  // namespace

void run_blocks(const V4Weights& w, const ModelInfo& info, float* x, State& state) {
  const uint32_t C = info.n_embd;
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    const V4Layer& p = w.layers[i];
    float* s = state.layer(i).data();
    Scratch scratch(32 * C + 2 * info.n_ffn);
    float* xx = scratch.take(C);
    layer_norm(x, p.ln1.weight, p.ln1.bias, xx, C, kLayerNormEps);
    time_mix(p, xx, s, x, C, scratch);
    layer_norm(x, p.ln2.weight, p.ln2.bias, xx, C, kLayerNormEps);
    channel_mix_v4(p.ffn, xx, s + 4 * C, x, C, scratch);
  }
}

}  // namespace rwkv::arch
