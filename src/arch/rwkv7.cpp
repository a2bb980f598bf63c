// Follows the official RNN-mode code: BlinkDL/RWKV-LM RWKV-v7/rwkv_v7_numpy.py and
// ChatRWKV rwkv/model.py `RWKV_x070_TMix_one` / `RWKV_x070_CMix_one`.
// The state S [H, N(value), N(key)] is updated as
//   S ← S·diag(w) − (S kk)(kk ⊙ a)ᵀ + v kᵀ,   y = S r.
#include "arch/rwkv7.hpp"

#include <algorithm>
#include <cmath>

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
    l.r_k = w.vec(layer_tensor(i, "att.r_k"), C);
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

// y = B tanh(A x) (or with sigmoid), the low-rank projections of v7.
enum class Squash { Tanh, Sigmoid, None };
void lora(const MatrixRef& a, const MatrixRef& b, const float* x, float* out, Squash squash, Scratch& scratch) {
  float* hidden = scratch.take(a.rows);
  matvec(a, x, hidden);
  for (uint32_t i = 0; i < a.rows; ++i) {
    if (squash == Squash::Tanh) hidden[i] = std::tanh(hidden[i]);
    if (squash == Squash::Sigmoid) hidden[i] = sigmoid(hidden[i]);
  }
  matvec(b, hidden, out);
}

void time_mix(const V7Layer& p, const ModelInfo& info, bool first_layer, float* v_first, const float* xx, float* s,
              float* x, Scratch& scratch) {
  const uint32_t C = info.n_embd;
  const uint32_t H = info.n_head;
  const uint32_t N = info.head_size;
  float* shift = s;
  float* S = s + C;
  float* xr = scratch.take(C);
  float* xw = scratch.take(C);
  float* xk = scratch.take(C);
  float* xv = scratch.take(C);
  float* xa = scratch.take(C);
  float* xg = scratch.take(C);
  for (uint32_t c = 0; c < C; ++c) {
    const float delta = shift[c] - xx[c];
    xr[c] = xx[c] + delta * p.x_r[c];
    xw[c] = xx[c] + delta * p.x_w[c];
    xk[c] = xx[c] + delta * p.x_k[c];
    xv[c] = xx[c] + delta * p.x_v[c];
    xa[c] = xx[c] + delta * p.x_a[c];
    xg[c] = xx[c] + delta * p.x_g[c];
  }
  std::copy(xx, xx + C, shift);

  float* r = scratch.take(C);
  float* k = scratch.take(C);
  float* v = scratch.take(C);
  float* w = scratch.take(C);
  float* a = scratch.take(C);
  float* g = scratch.take(C);
  matvec(p.receptance, xr, r);
  matvec(p.key, xk, k);
  matvec(p.value, xv, v);
  lora(p.w1, p.w2, xw, w, Squash::Tanh, scratch);
  lora(p.a1, p.a2, xa, a, Squash::None, scratch);
  lora(p.g1, p.g2, xg, g, Squash::Sigmoid, scratch);
  for (uint32_t c = 0; c < C; ++c) {
    a[c] = sigmoid(p.a0[c] + a[c]);
    w[c] = std::exp(-kDecayScale * sigmoid(p.w0[c] + w[c]));
  }

  // kk: the removal key, k ⊙ k_k normalised per head.
  float* kk = scratch.take(C);
  for (uint32_t h = 0; h < H; ++h) {
    float norm2 = 0.0f;
    for (uint32_t j = 0; j < N; ++j) {
      const uint32_t c = h * N + j;
      kk[c] = k[c] * p.k_k[c];
      norm2 += kk[c] * kk[c];
    }
    const float inv = 1.0f / std::max(std::sqrt(norm2), kNormalizeEps);
    for (uint32_t j = 0; j < N; ++j) kk[h * N + j] *= inv;
  }
  for (uint32_t c = 0; c < C; ++c) k[c] = k[c] * (1.0f + (a[c] - 1.0f) * p.k_a[c]);

  if (first_layer) {
    std::copy(v, v + C, v_first);
  } else {
    float* mix = scratch.take(C);
    lora(p.v1, p.v2, xv, mix, Squash::None, scratch);
    for (uint32_t c = 0; c < C; ++c) v[c] += (v_first[c] - v[c]) * sigmoid(p.v0[c] + mix[c]);
  }

  float* y = scratch.take(C);
  for (uint32_t h = 0; h < H; ++h) {
    float* Sh = S + size_t(h) * N * N;
    const float* kh = k + h * N;
    const float* vh = v + h * N;
    const float* rh = r + h * N;
    const float* wh = w + h * N;
    const float* kkh = kk + h * N;
    const float* ah = a + h * N;
    for (uint32_t i = 0; i < N; ++i) {
      float* row = Sh + size_t(i) * N;
      float sa = 0.0f;
      for (uint32_t j = 0; j < N; ++j) sa -= row[j] * kkh[j];
      float yi = 0.0f;
      for (uint32_t j = 0; j < N; ++j) {
        row[j] = row[j] * wh[j] + sa * kkh[j] * ah[j] + vh[i] * kh[j];
        yi += row[j] * rh[j];
      }
      y[h * N + i] = yi;
    }
  }
  group_norm(y, p.ln_x.weight, p.ln_x.bias, H, N, kGroupNormEps);
  for (uint32_t h = 0; h < H; ++h) {
    float bonus = 0.0f;
    for (uint32_t j = 0; j < N; ++j) bonus += r[h * N + j] * k[h * N + j] * p.r_k[h * N + j];
    for (uint32_t j = 0; j < N; ++j) y[h * N + j] += bonus * v[h * N + j];
  }
  for (uint32_t c = 0; c < C; ++c) y[c] *= g[c];
  float* out = scratch.take(C);
  matvec(p.output, y, out);
  for (uint32_t c = 0; c < C; ++c) x[c] += out[c];
}

void channel_mix(const V7Layer& p, const ModelInfo& info, const float* xx, float* shift, float* x, Scratch& scratch) {
  const uint32_t C = info.n_embd;
  const uint32_t F = p.ffn_key.rows;
  float* kx = scratch.take(C);
  for (uint32_t c = 0; c < C; ++c) kx[c] = xx[c] + (shift[c] - xx[c]) * p.ffn_x_k[c];
  std::copy(xx, xx + C, shift);
  float* k = scratch.take(F);
  matvec(p.ffn_key, kx, k);
  for (uint32_t i = 0; i < F; ++i) k[i] = k[i] > 0.0f ? k[i] * k[i] : 0.0f;
  float* v = scratch.take(C);
  matvec(p.ffn_value, k, v);
  for (uint32_t c = 0; c < C; ++c) x[c] += v[c];
}

}  // namespace

void run_blocks(const V7Weights& w, const ModelInfo& info, float* x, State& state) {
  const uint32_t C = info.n_embd;
  thread_local std::vector<float> v_first;
  v_first.resize(C);
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    const V7Layer& p = w.layers[i];
    float* s = state.layer(i).data();
    const uint32_t lora_dims = p.w1.rows + p.a1.rows + p.g1.rows + p.v1.rows;
    Scratch scratch(32 * C + 2 * info.n_ffn + lora_dims);
    float* xx = scratch.take(C);
    layer_norm(x, p.ln1.weight, p.ln1.bias, xx, C, kLayerNormEps);
    time_mix(p, info, i == 0, v_first.data(), xx, s, x, scratch);
    layer_norm(x, p.ln2.weight, p.ln2.bias, xx, C, kLayerNormEps);
    channel_mix(p, info, xx, s + C + info.n_head * info.head_size * info.head_size, x, scratch);
  }
}

}  // namespace rwkv::arch
