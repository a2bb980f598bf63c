// Follows the official RNN-mode code: BlinkDL/RWKV-LM RWKV-v7/rwkv_v7_numpy.py and
// ChatRWKV rwkv/model.py `RWKV_x070_TMix_one` / `RWKV_x070_CMix_one`.
// The state S [H, N(value), N(key)] is updated as
//   S ← S·diag(w) − (S kk)(kk ⊙ a)ᵀ + v kᵀ,   y = S r.
#include "arch/rwkv7.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/thread_pool.hpp"
#include "kernels/vector_math.hpp"
#include "kernels/wkv.hpp"

namespace rwkv::arch {

namespace {

// The official code writes exp(-0.606531 * sigmoid(.)); 0.606531 is e^-0.5 rounded.
constexpr float kDecayScale = 0.606531f;
constexpr float kNormalizeEps = 1e-12f;

}  // namespace

V7Weights bind_v7(const WeightBinder& w, const ModelInfo& info) {
  const uint32_t C = info.n_embd;
  V7Weights out;
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    V7Layer l;
    l.ln1 = bind_norm(w, layer_tensor(i, "ln1"), C);
    l.ln2 = bind_norm(w, layer_tensor(i, "ln2"), C);
    l.ln_x = bind_norm(w, layer_tensor(i, "att.ln_x"), C);
    l.x_r = w.vec(layer_tensor(i, "att.x_r"), C);
    l.x_w = w.vec(layer_tensor(i, "att.x_w"), C);
    l.x_k = w.vec(layer_tensor(i, "att.x_k"), C);
    l.x_v = w.vec(layer_tensor(i, "att.x_v"), C);
    l.x_a = w.vec(layer_tensor(i, "att.x_a"), C);
    l.x_g = w.vec(layer_tensor(i, "att.x_g"), C);
    l.w0 = w.vec(layer_tensor(i, "att.w0"), C);
    l.w1 = w.matrix(layer_tensor(i, "att.w1"), 0, C);
    l.w2 = w.matrix(layer_tensor(i, "att.w2"), C, l.w1.rows);
    l.a0 = w.vec(layer_tensor(i, "att.a0"), C);
    l.a1 = w.matrix(layer_tensor(i, "att.a1"), 0, C);
    l.a2 = w.matrix(layer_tensor(i, "att.a2"), C, l.a1.rows);
    if (i > 0) {
      l.v0 = w.vec(layer_tensor(i, "att.v0"), C);
      l.v1 = w.matrix(layer_tensor(i, "att.v1"), 0, C);
      l.v2 = w.matrix(layer_tensor(i, "att.v2"), C, l.v1.rows);
    }
    l.g1 = w.matrix(layer_tensor(i, "att.g1"), 0, C);
    l.g2 = w.matrix(layer_tensor(i, "att.g2"), C, l.g1.rows);
    l.k_k = w.vec(layer_tensor(i, "att.k_k"), C);
    l.k_a = w.vec(layer_tensor(i, "att.k_a"), C);
    l.r_k = w.f32(layer_tensor(i, "att.r_k"), {info.n_head, info.head_size});
    l.key = w.matrix(layer_tensor(i, "att.key.weight"), C, C);
    l.value = w.matrix(layer_tensor(i, "att.value.weight"), C, C);
    l.receptance = w.matrix(layer_tensor(i, "att.receptance.weight"), C, C);
    l.output = w.matrix(layer_tensor(i, "att.output.weight"), C, C);
    l.ffn_x_k = w.vec(layer_tensor(i, "ffn.x_k"), C);
    l.ffn_key = w.matrix(layer_tensor(i, "ffn.key.weight"), info.n_ffn, C);
    l.ffn_value = w.matrix(layer_tensor(i, "ffn.value.weight"), C, info.n_ffn);
    out.layers.push_back(l);
  }
  return out;
}

uint32_t state_floats_per_layer(const V7Weights&, const ModelInfo& info) {
  return 2 * info.n_embd + info.n_head * info.head_size * info.head_size;
}

void init_state(const V7Weights&, const ModelInfo&, State& state) { std::fill(state.data.begin(), state.data.end(), 0.0f); }

namespace {

void time_mix(const V7Layer& p, const ModelInfo& info, bool first_layer, float* v_first, const float* xx, uint32_t T,
              float* s, float* x, Scratch& scratch) {
  const uint32_t C = info.n_embd;
  const uint32_t H = info.n_head;
  const uint32_t N = info.head_size;
  const size_t TC = size_t(T) * C;
  float* shift = s;
  float* S = s + C;
  float* xr = scratch.take(TC);
  float* xw = scratch.take(TC);
  float* xk = scratch.take(TC);
  float* xv = scratch.take(TC);
  float* xa = scratch.take(TC);
  float* xg = scratch.take(TC);
  each_token(xx, shift, T, C, [&](uint32_t t, const float* cur, const float* prev) {
    for (uint32_t c = 0; c < C; ++c) {
      const size_t i = size_t(t) * C + c;
      const float delta = prev[c] - cur[c];
      xr[i] = cur[c] + delta * p.x_r[c];
      xw[i] = cur[c] + delta * p.x_w[c];
      xk[i] = cur[c] + delta * p.x_k[c];
      xv[i] = cur[c] + delta * p.x_v[c];
      xa[i] = cur[c] + delta * p.x_a[c];
      xg[i] = cur[c] + delta * p.x_g[c];
    }
  });
  std::copy(xx + TC - C, xx + TC, shift);

  float* r = scratch.take(TC);
  float* k = scratch.take(TC);
  float* v = scratch.take(TC);
  float* w = scratch.take(TC);
  float* a = scratch.take(TC);
  float* g = scratch.take(TC);
  // r, k, v and the low-rank projections w = W2 tanh(W1 xw), a = A2 (A1 xa),
  // g = G2 σ(G1 xg) and the value-residual mix V2 (V1 xv): each stage's products in one batch.
  float* w_hidden = scratch.take(size_t(T) * p.w1.rows);
  float* a_hidden = scratch.take(size_t(T) * p.a1.rows);
  float* g_hidden = scratch.take(size_t(T) * p.g1.rows);
  float* v_hidden = first_layer ? nullptr : scratch.take(size_t(T) * p.v1.rows);
  float* mix = first_layer ? nullptr : scratch.take(TC);
  if (first_layer) {
    matmat_each({{p.receptance, xr, r}, {p.key, xk, k}, {p.value, xv, v}, {p.w1, xw, w_hidden}, {p.a1, xa, a_hidden},
                 {p.g1, xg, g_hidden}},
                T);
  } else {
    matmat_each({{p.receptance, xr, r}, {p.key, xk, k}, {p.value, xv, v}, {p.w1, xw, w_hidden}, {p.a1, xa, a_hidden},
                 {p.g1, xg, g_hidden}, {p.v1, xv, v_hidden}},
                T);
  }
  tanh_inplace(w_hidden, T * p.w1.rows);
  sigmoid_inplace(g_hidden, T * p.g1.rows);
  if (first_layer) {
    matmat_each({{p.w2, w_hidden, w}, {p.a2, a_hidden, a}, {p.g2, g_hidden, g}}, T);
  } else {
    matmat_each({{p.w2, w_hidden, w}, {p.a2, a_hidden, a}, {p.g2, g_hidden, g}, {p.v2, v_hidden, mix}}, T);
  }
  float* kk = scratch.take(TC);
  float* y = scratch.take(TC);
  // Per token and head: decay, in-context learning rate, removal key, value residual.
  const auto prepare = [&](uint32_t t, uint32_t h) {
    const uint32_t o = h * N;
    const size_t at = size_t(t) * C + o;  // the head's values of this token
    float* at_a = a + at;
    float* at_w = w + at;
    for (uint32_t j = 0; j < N; ++j) {
      at_a[j] += p.a0[o + j];
      at_w[j] += p.w0[o + j];
    }
    sigmoid_inplace(at_a, N);
    sigmoid_inplace(at_w, N);
    for (uint32_t j = 0; j < N; ++j) at_w[j] *= -kDecayScale;
    exp_inplace(at_w, N);
    // kk: the removal key, k ⊙ k_k normalised per head.
    float norm2 = 0.0f;
    for (uint32_t j = 0; j < N; ++j) {
      kk[at + j] = k[at + j] * p.k_k[o + j];
      norm2 += kk[at + j] * kk[at + j];
    }
    const float inv = 1.0f / std::max(std::sqrt(norm2), kNormalizeEps);
    for (uint32_t j = 0; j < N; ++j) {
      kk[at + j] *= inv;
      k[at + j] *= 1.0f + (at_a[j] - 1.0f) * p.k_a[o + j];
    }
    if (first_layer) {
      std::copy_n(v + at, N, v_first + at);
    } else {
      float* at_mix = mix + at;
      for (uint32_t j = 0; j < N; ++j) at_mix[j] += p.v0[o + j];
      sigmoid_inplace(at_mix, N);
      for (uint32_t j = 0; j < N; ++j) v[at + j] += (v_first[at + j] - v[at + j]) * at_mix[j];
    }
  };
  // The recurrence of head h through tokens [0, T), in order.
  const auto recur = [&](uint32_t h) {
    const uint32_t o = h * N;
    for (uint32_t t = 0; t < T; ++t) {
      const size_t at = size_t(t) * C + o;
      wkv7_head_step(r + at, w + at, k + at, v + at, kk + at, a + at, S + size_t(h) * N * N, y + at, N);
    }
  };
  // Per token and head again: group norm, the r·k bonus, the gate.
  const auto finish = [&](uint32_t t, uint32_t h) {
    const uint32_t o = h * N;
    const size_t at = size_t(t) * C + o;
    group_norm(y + at, p.ln_x.weight + o, p.ln_x.bias + o, 1, N, kGroupNormEps);
    float bonus = 0.0f;
    for (uint32_t j = 0; j < N; ++j) bonus += r[at + j] * k[at + j] * p.r_k[o + j];
    for (uint32_t j = 0; j < N; ++j) y[at + j] = (y[at + j] + bonus * v[at + j]) * g[at + j];
  };
  if (T == 1) {
    // Decoding: one hand-off to the pool for all three.
    parallel_for(H, 1, [&](uint32_t h_begin, uint32_t h_end) {
      for (uint32_t h = h_begin; h < h_end; ++h) {
        prepare(0, h);
        recur(h);
        finish(0, h);
      }
    });
  } else {
    // Sequence mode: the per-token work spread over tokens and heads, the recurrence over heads.
    const auto each_unit = [&](const auto& fn) {
      parallel_for(T * H, 1, [&](uint32_t begin, uint32_t end) {
        for (uint32_t unit = begin; unit < end; ++unit) fn(unit / H, unit % H);
      });
    };
    each_unit(prepare);
    parallel_for(H, 1, [&](uint32_t h_begin, uint32_t h_end) {
      for (uint32_t h = h_begin; h < h_end; ++h) recur(h);
    });
    each_unit(finish);
  }
  float* out = scratch.take(TC);
  matmat(p.output, y, out, T);
  add_rows(x, out, T, C);
}

void channel_mix(const V7Layer& p, const ModelInfo& info, const float* xx, uint32_t T, float* shift, float* x,
                 Scratch& scratch) {
  const uint32_t C = info.n_embd;
  const uint32_t F = p.ffn_key.rows;
  const size_t TC = size_t(T) * C;
  float* kx = scratch.take(TC);
  each_token(xx, shift, T, C, [&](uint32_t t, const float* cur, const float* prev) {
    for (uint32_t c = 0; c < C; ++c) {
      const size_t i = size_t(t) * C + c;
      kx[i] = cur[c] + (prev[c] - cur[c]) * p.ffn_x_k[c];
    }
  });
  std::copy(xx + TC - C, xx + TC, shift);
  float* k = scratch.take(size_t(T) * F);
  matmat_squared_relu(p.ffn_key, kx, k, T);
  float* v = scratch.take(TC);
  matmat(p.ffn_value, k, v, T);
  add_rows(x, v, T, C);
}

}  // namespace

void run_blocks(const V7Weights& w, const ModelInfo& info, float* x, uint32_t T, State& state) {
  const uint32_t C = info.n_embd;
  const uint32_t ffn_shift = C + info.n_head * info.head_size * info.head_size;
  thread_local std::vector<float> v_first;
  v_first.resize(size_t(T) * C);
  run_layers(
      w.layers, C, x, T, state,
      [&](const V7Layer& p) { return 32 * C + 2 * info.n_ffn + p.w1.rows + p.a1.rows + p.g1.rows + p.v1.rows; },
      [&](uint32_t i, const V7Layer& p, const float* xx, float* s, Scratch& scratch) {
        time_mix(p, info, i == 0, v_first.data(), xx, T, s, x, scratch);
      },
      [&](const V7Layer& p, const float* xx, float* s, Scratch& scratch) {
        channel_mix(p, info, xx, T, s + ffn_shift, x, scratch);
      });
}

}  // namespace rwkv::arch
