// Follows the official RNN-mode code: ChatRWKV rwkv/model.py `att_one_v5` (5.0),
// `att_one_v5_1` (5.1 and 5.2) and RWKV_v5_demo.py, with the load-time transforms
// of its __init__ done by the converter.
#include "arch/rwkv5.hpp"

#include <algorithm>

#include "kernels/thread_pool.hpp"
#include "kernels/wkv.hpp"

namespace rwkv::arch {

V5Weights bind_v5(const WeightBinder& w, const ModelInfo& info) {
  const uint32_t C = info.n_embd;
  V5Weights out;
  out.has_gate = info.arch != Arch::V5_0;
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    V5Layer l;
    l.ln1 = bind_norm(w, layer_tensor(i, "ln1"), C);
    l.ln2 = bind_norm(w, layer_tensor(i, "ln2"), C);
    l.ln_x = bind_norm(w, layer_tensor(i, "att.ln_x"), C);
    l.time_mix_k = w.vec(layer_tensor(i, "att.time_mix_k"), C);
    l.time_mix_v = w.vec(layer_tensor(i, "att.time_mix_v"), C);
    l.time_mix_r = w.vec(layer_tensor(i, "att.time_mix_r"), C);
    l.decay = w.f32(layer_tensor(i, "att.decay"), {info.n_head, info.head_size});
    l.bonus = w.f32(layer_tensor(i, "att.bonus"), {info.n_head, info.head_size});
    l.key = w.matrix(layer_tensor(i, "att.key.weight"), C, C);
    l.value = w.matrix(layer_tensor(i, "att.value.weight"), C, C);
    l.receptance = w.matrix(layer_tensor(i, "att.receptance.weight"), C, C);
    l.output = w.matrix(layer_tensor(i, "att.output.weight"), C, C);
    if (out.has_gate) {
      l.time_mix_g = w.vec(layer_tensor(i, "att.time_mix_g"), C);
      l.gate = w.matrix(layer_tensor(i, "att.gate.weight"), C, C);
    }
    l.ffn = bind_channel_mix(w, i, C, info.n_ffn);
    out.layers.push_back(l);
  }
  return out;
}

uint32_t state_floats_per_layer(const V5Weights&, const ModelInfo& info) {
  return 2 * info.n_embd + info.n_head * info.head_size * info.head_size;
}

void init_state(const V5Weights&, const ModelInfo&, State& state) { std::fill(state.data.begin(), state.data.end(), 0.0f); }

void wkv5_tokens(const float* r, const float* k, const float* v, const float* w, size_t w_token_stride,
                 const float* u, float* S, float* y, uint32_t T, const ModelInfo& info, const Norm& ln_x) {
  const uint32_t C = info.n_embd;
  const uint32_t N = info.head_size;
  parallel_for(info.n_head, 1, [&](uint32_t h_begin, uint32_t h_end) {
    for (uint32_t h = h_begin; h < h_end; ++h) {
      const uint32_t o = h * N;
      for (uint32_t t = 0; t < T; ++t) {
        const size_t at = size_t(t) * C + o;
        wkv5_head_step(r + at, k + at, v + at, w + t * w_token_stride + o, u + o, S + size_t(h) * N * N, y + at, N);
        group_norm(y + at, ln_x.weight + o, ln_x.bias + o, 1, N, kGroupNormEps);
      }
    }
  });
}

namespace {

void time_mix(const V5Layer& p, bool has_gate, const ModelInfo& info, const float* xx, uint32_t T, float* s, float* x,
              Scratch& scratch) {
  const uint32_t C = info.n_embd;
  const size_t TC = size_t(T) * C;
  float* shift = s;
  float* S = s + C;
  float* kx = scratch.take(TC);
  float* vx = scratch.take(TC);
  float* rx = scratch.take(TC);
  float* gx = scratch.take(TC);
  each_token(xx, shift, T, C, [&](uint32_t t, const float* cur, const float* prev) {
    for (uint32_t c = 0; c < C; ++c) {
      const size_t i = size_t(t) * C + c;
      kx[i] = cur[c] * p.time_mix_k[c] + prev[c] * (1.0f - p.time_mix_k[c]);
      vx[i] = cur[c] * p.time_mix_v[c] + prev[c] * (1.0f - p.time_mix_v[c]);
      rx[i] = cur[c] * p.time_mix_r[c] + prev[c] * (1.0f - p.time_mix_r[c]);
      if (has_gate) gx[i] = cur[c] * p.time_mix_g[c] + prev[c] * (1.0f - p.time_mix_g[c]);
    }
  });
  std::copy(xx + TC - C, xx + TC, shift);
  float* r = scratch.take(TC);
  float* k = scratch.take(TC);
  float* v = scratch.take(TC);
  float* g = scratch.take(TC);
  matmat(p.receptance, rx, r, T);
  matmat(p.key, kx, k, T);
  matmat(p.value, vx, v, T);
  if (has_gate) matmat(p.gate, gx, g, T);
  float* y = scratch.take(TC);
  wkv5_tokens(r, k, v, p.decay, 0, p.bonus, S, y, T, info, p.ln_x);
  if (has_gate) {
    for (size_t i = 0; i < TC; ++i) y[i] *= silu(g[i]);
  }
  float* out = scratch.take(TC);
  matmat(p.output, y, out, T);
  add_rows(x, out, T, C);
}

}  // namespace

void run_blocks(const V5Weights& w, const ModelInfo& info, float* x, uint32_t T, State& state) {
  const uint32_t C = info.n_embd;
  const uint32_t ffn_shift = C + info.n_head * info.head_size * info.head_size;
  run_layers(
      w.layers, C, x, T, state, [&](const V5Layer&) { return 20 * C + 2 * info.n_ffn; },
      [&](uint32_t, const V5Layer& p, const float* xx, float* s, Scratch& scratch) {
        time_mix(p, w.has_gate, info, xx, T, s, x, scratch);
      },
      [&](const V5Layer& p, const float* xx, float* s, Scratch& scratch) {
        channel_mix(p.ffn, xx, T, s + ffn_shift, x, C, scratch);
      });
}

}  // namespace rwkv::arch
