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

const VersionSpec& v7_spec() {
  static const VersionSpec spec = [] {
    VersionSpec v{Arch::V7_0, common_tensors(), {}, {}};
    auto vec = [](const char* name, Where where = Where::EveryLayer) {
      return TensorSpec{name, where, {Dim::C}, name};
    };
    auto matrix = [](const char* name, Dim rows, Dim cols) {
      return TensorSpec{name, Where::EveryLayer, {rows, cols}, name, Layout::AsIs, ValueMap::None, true};
    };
    // LoRA matrices are used as x @ W in checkpoints and stored transposed; they are
    // small and sensitive (RWKV-NOTES), so they are never quantized (source_half). Layer 0
    // defines v_first: its v0/v1/v2, where a checkpoint has them, are unused.
    auto lora = [](const char* name, Dim out, Dim in, Where where = Where::EveryLayer) {
      return TensorSpec{name, where, {out, in}, name, Layout::Transposed, ValueMap::None, false, true};
    };
    const std::vector<TensorSpec> att = {
        vec("att.x_r"),
        vec("att.x_w"),
        vec("att.x_k"),
        vec("att.x_v"),
        vec("att.x_a"),
        vec("att.x_g"),
        vec("att.w0"),
        lora("att.w1", Dim::LoraW, Dim::C),
        lora("att.w2", Dim::C, Dim::LoraW),
        vec("att.a0"),
        lora("att.a1", Dim::LoraA, Dim::C),
        lora("att.a2", Dim::C, Dim::LoraA),
        vec("att.v0", Where::AfterFirstLayer),
        lora("att.v1", Dim::LoraV, Dim::C, Where::AfterFirstLayer),
        lora("att.v2", Dim::C, Dim::LoraV, Where::AfterFirstLayer),
        lora("att.g1", Dim::LoraG, Dim::C),
        lora("att.g2", Dim::C, Dim::LoraG),
        vec("att.k_k"),
        vec("att.k_a"),
        {"att.r_k", Where::EveryLayer, {Dim::H, Dim::N}, "att.r_k"},
        matrix("att.key.weight", Dim::C, Dim::C),
        matrix("att.value.weight", Dim::C, Dim::C),
        matrix("att.receptance.weight", Dim::C, Dim::C),
        matrix("att.output.weight", Dim::C, Dim::C),
        vec("att.ln_x.weight"),
        vec("att.ln_x.bias"),
        vec("ffn.x_k"),
        matrix("ffn.key.weight", Dim::F, Dim::C),
        matrix("ffn.value.weight", Dim::C, Dim::F),
    };
    v.tensors.insert(v.tensors.end(), att.begin(), att.end());
    v.state = {{"att_shift", {Dim::C}}, {"wkv", {Dim::H, Dim::N, Dim::N}}, {"ffn_shift", {Dim::C}}};
    v.scratch = {{"xx", {Dim::C}},      {"xr", {Dim::C}},       {"xw", {Dim::C}},       {"xk", {Dim::C}},
                 {"xv", {Dim::C}},      {"xa", {Dim::C}},       {"xg", {Dim::C}},       {"r", {Dim::C}},
                 {"k", {Dim::C}},       {"v", {Dim::C}},        {"w", {Dim::C}},        {"a", {Dim::C}},
                 {"g", {Dim::C}},       {"w_hidden", {Dim::LoraW}}, {"a_hidden", {Dim::LoraA}},
                 {"g_hidden", {Dim::LoraG}}, {"v_hidden", {Dim::LoraV}}, {"mix", {Dim::C}},
                 {"kk", {Dim::C}},      {"y", {Dim::C}},        {"out", {Dim::C}},      {"ffn.kx", {Dim::C}},
                 {"ffn.k", {Dim::F}},   {"ffn.v", {Dim::C}}};
    return v;
  }();
  return spec;
}

V7Weights bind_v7(const WeightBinder& w, const ModelInfo& info) {
  const VersionSpec& spec = v7_spec();
  const StateLayout state(spec, Sizes::of(info));
  V7Weights out{state, state.offset("att_shift"), state.offset("wkv"), state.offset("ffn_shift"), {}};
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    const LayerTensors t(spec, w, info, i);
    V7Layer l;
    l.sizes = t.sizes();
    l.ln1 = t.norm("ln1");
    l.ln2 = t.norm("ln2");
    l.ln_x = t.norm("att.ln_x");
    l.x_r = t.f32("att.x_r");
    l.x_w = t.f32("att.x_w");
    l.x_k = t.f32("att.x_k");
    l.x_v = t.f32("att.x_v");
    l.x_a = t.f32("att.x_a");
    l.x_g = t.f32("att.x_g");
    l.w0 = t.f32("att.w0");
    l.w1 = t.matrix("att.w1");
    l.w2 = t.matrix("att.w2");
    l.a0 = t.f32("att.a0");
    l.a1 = t.matrix("att.a1");
    l.a2 = t.matrix("att.a2");
    if (i > 0) {
      l.v0 = t.f32("att.v0");
      l.v1 = t.matrix("att.v1");
      l.v2 = t.matrix("att.v2");
    }
    l.g1 = t.matrix("att.g1");
    l.g2 = t.matrix("att.g2");
    l.k_k = t.f32("att.k_k");
    l.k_a = t.f32("att.k_a");
    l.r_k = t.f32("att.r_k");
    l.key = t.matrix("att.key.weight");
    l.value = t.matrix("att.value.weight");
    l.receptance = t.matrix("att.receptance.weight");
    l.output = t.matrix("att.output.weight");
    l.ffn_x_k = t.f32("ffn.x_k");
    l.ffn_key = t.matrix("ffn.key.weight");
    l.ffn_value = t.matrix("ffn.value.weight");
    out.layers.push_back(l);
  }
  return out;
}

namespace {

void time_mix(const V7Weights& weights, const V7Layer& p, const ModelInfo& info, bool first_layer, float* v_first,
              const float* xx, const Pass& pass, LayerStates states, float* x, Scratch& scratch) {
  const uint32_t T = pass.rows;
  const uint32_t C = info.n_embd;
  const uint32_t H = info.n_head;
  const uint32_t N = info.head_size;
  float* xr = scratch.take("xr");
  float* xw = scratch.take("xw");
  float* xk = scratch.take("xk");
  float* xv = scratch.take("xv");
  float* xa = scratch.take("xa");
  float* xg = scratch.take("xg");
  each_token(xx, pass, states, weights.att_shift, C, [&](uint32_t t, const float* cur, const float* prev) {
    const size_t at = size_t(t) * C;
    token_shift_mix(cur, prev, p.x_r, xr + at, C);
    token_shift_mix(cur, prev, p.x_w, xw + at, C);
    token_shift_mix(cur, prev, p.x_k, xk + at, C);
    token_shift_mix(cur, prev, p.x_v, xv + at, C);
    token_shift_mix(cur, prev, p.x_a, xa + at, C);
    token_shift_mix(cur, prev, p.x_g, xg + at, C);
  });
  keep_last_rows(xx, pass, states, weights.att_shift, C);

  float* r = scratch.take("r");
  float* k = scratch.take("k");
  float* v = scratch.take("v");
  float* w = scratch.take("w");
  float* a = scratch.take("a");
  float* g = scratch.take("g");
  // r, k, v and the low-rank projections w = W2 tanh(W1 xw), a = A2 (A1 xa),
  // g = G2 σ(G1 xg) and the value-residual mix V2 (V1 xv): each stage's products in one batch.
  float* w_hidden = scratch.take("w_hidden");
  float* a_hidden = scratch.take("a_hidden");
  float* g_hidden = scratch.take("g_hidden");
  float* v_hidden = first_layer ? nullptr : scratch.take("v_hidden");
  float* mix = first_layer ? nullptr : scratch.take("mix");
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
  float* kk = scratch.take("kk");
  float* y = scratch.take("y");
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
    for (uint32_t j = 0; j < N; ++j) kk[at + j] = k[at + j] * p.k_k[o + j];
    const float norm2 = dot(kk + at, kk + at, N);
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
  // The recurrence of state rows [i, i + rows) of head h through the tokens of run ri, in order.
  const auto recur = [&](uint32_t ri, uint32_t h, uint32_t i, uint32_t rows) {
    const Run& run = pass.runs[ri];
    const uint32_t o = h * N;
    float* S = states[ri] + weights.wkv + (size_t(h) * N + i) * N;
    const size_t at = size_t(run.first) * C + o;
    wkv7_head_steps(r + at, w + at, k + at, v + at + i, kk + at, a + at, C, run.rows, S, y + at + i, N, rows);
  };
  // Per token and head again: group norm, the r·k bonus, the gate.
  const auto finish = [&](uint32_t t, uint32_t h) {
    const uint32_t o = h * N;
    const size_t at = size_t(t) * C + o;
    group_norm(y + at, p.ln_x.weight + o, p.ln_x.bias + o, 1, N, kGroupNormEps);
    const float bonus = dot3(r + at, k + at, p.r_k + o, N);
    for (uint32_t j = 0; j < N; ++j) y[at + j] = (y[at + j] + bonus * v[at + j]) * g[at + j];
  };
  if (pass.runs.size() == T) {
    // Decoding (one token per sequence): one hand-off to the pool for all three.
    each_run_and_head(pass, H, [&](uint32_t ri, uint32_t h) {
      const uint32_t t = pass.runs[ri].first;
      prepare(t, h);
      recur(ri, h, 0, N);
      finish(t, h);
    });
  } else {
    // Sequence mode: the per-token work spread over tokens and heads, the recurrence over runs and heads.
    const auto each_unit = [&](const auto& fn) {
      parallel_for(T * H, 1, [&](uint32_t begin, uint32_t end) {
        for (uint32_t unit = begin; unit < end; ++unit) fn(unit / H, unit % H);
      });
    };
    each_unit(prepare);
    // The heads' rows are independent: with fewer runs × heads than threads share evenly
    // (a prefill of 12 heads on 16 threads), each head goes in parts of its rows.
    const uint32_t runs_and_heads = static_cast<uint32_t>(pass.runs.size()) * H;
    const uint32_t parts = head_parts(runs_and_heads, kernel_pool().size(), N);
    const uint32_t part_rows = N / parts;
    parallel_for(runs_and_heads * parts, 1, [&](uint32_t begin, uint32_t end) {
      for (uint32_t unit = begin; unit < end; ++unit) {
        const uint32_t run_head = unit / parts;
        recur(run_head / H, run_head % H, unit % parts * part_rows, part_rows);
      }
    });
    each_unit(finish);
  }
  float* out = scratch.take("out");
  matmat(p.output, y, out, T);
  add_rows(x, out, T, C);
}

void channel_mix(const V7Weights& weights, const V7Layer& p, const ModelInfo& info, const float* xx,
                 const Pass& pass, LayerStates states, float* x, Scratch& scratch) {
  const uint32_t C = info.n_embd;
  const uint32_t T = pass.rows;
  float* kx = scratch.take("ffn.kx");
  each_token(xx, pass, states, weights.ffn_shift, C, [&](uint32_t t, const float* cur, const float* prev) {
    token_shift_mix(cur, prev, p.ffn_x_k, kx + size_t(t) * C, C);
  });
  keep_last_rows(xx, pass, states, weights.ffn_shift, C);
  float* k = scratch.take("ffn.k");
  matmat_squared_relu(p.ffn_key, kx, k, T);
  float* v = scratch.take("ffn.v");
  matmat(p.ffn_value, k, v, T);
  add_rows(x, v, T, C);
}

}  // namespace

void run_blocks(const V7Weights& w, const ModelInfo& info, float* x, const Pass& pass) {
  const uint32_t C = info.n_embd;
  thread_local std::vector<float> v_first;
  v_first.resize(size_t(pass.rows) * C);
  run_layers(
      v7_spec(), w.layers, C, x, pass,
      [&](uint32_t i, const V7Layer& p, const float* xx, LayerStates states, Scratch& scratch) {
        time_mix(w, p, info, i == 0, v_first.data(), xx, pass, states, x, scratch);
      },
      [&](const V7Layer& p, const float* xx, LayerStates states, Scratch& scratch) {
        channel_mix(w, p, info, xx, pass, states, x, scratch);
      });
}

}  // namespace rwkv::arch
