// Follows the official RNN-mode code: ChatRWKV rwkv/model.py `att_one_v6_0` and
// `ffn_one_v6`, and RWKV_v6_demo.py.
#include "arch/rwkv6.hpp"

#include <algorithm>
#include <cmath>

#include "arch/rwkv5.hpp"
#include "kernels/dtype.hpp"
#include "kernels/vector_math.hpp"

namespace rwkv::arch {

const VersionSpec& v6_spec() {
  static const VersionSpec spec = [] {
    VersionSpec v{Arch::V6_0, common_tensors(), {}, {}};
    auto vec = [](const char* name) { return TensorSpec{name, Where::EveryLayer, {Dim::C}, name}; };
    auto matrix = [](const char* name) {
      return TensorSpec{name, Where::EveryLayer, {Dim::C, Dim::C}, name, Layout::AsIs, ValueMap::None, true};
    };
    // LoRA matrices are used as x @ W in checkpoints and stored transposed; they are
    // small and sensitive (RWKV-NOTES), so they are never quantized (source_half).
    auto lora = [](const char* name, Dim out, Dim in) {
      return TensorSpec{name, Where::EveryLayer, {out, in}, name, Layout::Transposed, ValueMap::None, false, true};
    };
    const std::vector<TensorSpec> att = {
        vec("att.time_maa_x"),
        vec("att.time_maa_w"),
        vec("att.time_maa_k"),
        vec("att.time_maa_v"),
        vec("att.time_maa_r"),
        vec("att.time_maa_g"),
        lora("att.time_maa_w1", Dim::LoraMix5, Dim::C),
        // [5, D, C] in checkpoints: five [C, D] matrices here, each used as y = M x.
        {"att.time_maa_w2", Where::EveryLayer, {Dim::Five, Dim::C, Dim::LoraMix}, "att.time_maa_w2",
         Layout::SplitTransposed, ValueMap::None, false, true},
        vec("att.time_decay"),
        lora("att.time_decay_w1", Dim::LoraDecay, Dim::C),
        lora("att.time_decay_w2", Dim::C, Dim::LoraDecay),
        {"att.bonus", Where::EveryLayer, {Dim::H, Dim::N}, "att.time_faaaa"},
        matrix("att.key.weight"),
        matrix("att.value.weight"),
        matrix("att.receptance.weight"),
        matrix("att.gate.weight"),
        matrix("att.output.weight"),
        vec("att.ln_x.weight"),
        vec("att.ln_x.bias"),
    };
    v.tensors.insert(v.tensors.end(), att.begin(), att.end());
    const auto ffn = shared_channel_mix_tensors(false);
    v.tensors.insert(v.tensors.end(), ffn.begin(), ffn.end());
    v.state = {{"att_shift", {Dim::C}}, {"wkv", {Dim::H, Dim::N, Dim::N}}, {"ffn_shift", {Dim::C}}};
    v.scratch = {{"xx", {Dim::C}},         {"delta", {Dim::C}},          {"xxx", {Dim::C}},
                 {"lora", {Dim::LoraMix5}}, {"part_input", {Dim::LoraMix}}, {"offset", {Dim::C}},
                 {"mixed_w", {Dim::C}},    {"mixed_k", {Dim::C}},       {"mixed_v", {Dim::C}},
                 {"mixed_r", {Dim::C}},    {"mixed_g", {Dim::C}},       {"r", {Dim::C}},
                 {"k", {Dim::C}},          {"v", {Dim::C}},             {"g", {Dim::C}},
                 {"decay_lora", {Dim::LoraDecay}}, {"w", {Dim::C}},     {"y", {Dim::C}},
                 {"out", {Dim::C}}};
    const auto ffn_scratch = shared_channel_mix_scratch();
    v.scratch.insert(v.scratch.end(), ffn_scratch.begin(), ffn_scratch.end());
    return v;
  }();
  return spec;
}

V6Weights bind_v6(const WeightBinder& w, const ModelInfo& info) {
  const VersionSpec& spec = v6_spec();
  const StateLayout state(spec, Sizes::of(info));
  V6Weights out{state, state.offset("att_shift"), state.offset("wkv"), state.offset("ffn_shift"), {}};
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    const LayerTensors t(spec, w, info, i);
    V6Layer l;
    l.sizes = t.sizes();
    l.ln1 = t.norm("ln1");
    l.ln2 = t.norm("ln2");
    l.ln_x = t.norm("att.ln_x");
    l.maa_x = t.f32("att.time_maa_x");
    l.maa_w = t.f32("att.time_maa_w");
    l.maa_k = t.f32("att.time_maa_k");
    l.maa_v = t.f32("att.time_maa_v");
    l.maa_r = t.f32("att.time_maa_r");
    l.maa_g = t.f32("att.time_maa_g");
    l.maa_w1 = t.matrix("att.time_maa_w1");
    const auto w2 = t.typed("att.time_maa_w2");
    l.maa_w2 = w2.data;
    l.maa_w2_part = MatrixRef{w2.dtype, info.n_embd, uint32_t(t.sizes()[Dim::LoraMix]), nullptr, true};
    l.time_decay = t.f32("att.time_decay");
    l.decay_w1 = t.matrix("att.time_decay_w1");
    l.decay_w2 = t.matrix("att.time_decay_w2");
    l.bonus = t.f32("att.bonus");
    l.key = t.matrix("att.key.weight");
    l.value = t.matrix("att.value.weight");
    l.receptance = t.matrix("att.receptance.weight");
    l.gate = t.matrix("att.gate.weight");
    l.output = t.matrix("att.output.weight");
    l.ffn = bind_channel_mix(t);
    out.layers.push_back(l);
  }
  return out;
}

namespace {

void time_mix(const V6Weights& weights, const V6Layer& p, const ModelInfo& info, const float* xx, const Pass& pass,
              LayerStates states, float* x, Scratch& scratch) {
  const uint32_t T = pass.rows;
  const uint32_t C = info.n_embd;
  const uint32_t D = p.maa_w2_part.cols;
  const size_t TC = size_t(T) * C;
  float* delta = scratch.take("delta");
  float* xxx = scratch.take("xxx");
  each_token(xx, pass, states, weights.att_shift, C, [&](uint32_t t, const float* cur, const float* prev) {
    for (uint32_t c = 0; c < C; ++c) {
      const size_t i = size_t(t) * C + c;
      delta[i] = prev[c] - cur[c];
      xxx[i] = cur[c] + delta[i] * p.maa_x[c];
    }
  });
  keep_last_rows(xx, pass, states, weights.att_shift, C);
  float* lora = scratch.take("lora");
  matmat(p.maa_w1, xxx, lora, T);
  tanh_inplace(lora, uint32_t(size_t(T) * 5 * D));
  // The five data-dependent mix offsets, in the official order w, k, v, r, g.
  const float* maa[5] = {p.maa_w, p.maa_k, p.maa_v, p.maa_r, p.maa_g};
  float* mixed[5];
  float* part_input = scratch.take("part_input");
  float* offset = scratch.take("offset");
  const char* mixed_names[5] = {"mixed_w", "mixed_k", "mixed_v", "mixed_r", "mixed_g"};
  const size_t part_bytes = size_t(C) * dtype_row_bytes(p.maa_w2_part.dtype, D);
  for (int m = 0; m < 5; ++m) {
    MatrixRef part = p.maa_w2_part;
    part.data = static_cast<const std::byte*>(p.maa_w2) + m * part_bytes;
    for (uint32_t t = 0; t < T; ++t) {
      std::copy_n(lora + (size_t(t) * 5 + m) * D, D, part_input + size_t(t) * D);
    }
    matmat(part, part_input, offset, T);
    mixed[m] = scratch.take(mixed_names[m]);
    for (size_t i = 0; i < TC; ++i) mixed[m][i] = xx[i] + delta[i] * (maa[m][i % C] + offset[i]);
  }
  const float *wx = mixed[0], *kx = mixed[1], *vx = mixed[2], *rx = mixed[3], *gx = mixed[4];

  float* r = scratch.take("r");
  float* k = scratch.take("k");
  float* v = scratch.take("v");
  float* g = scratch.take("g");
  matmat(p.receptance, rx, r, T);
  matmat(p.key, kx, k, T);
  matmat(p.value, vx, v, T);
  matmat(p.gate, gx, g, T);

  float* decay_lora = scratch.take("decay_lora");
  matmat(p.decay_w1, wx, decay_lora, T);
  tanh_inplace(decay_lora, uint32_t(size_t(T) * p.decay_w1.rows));
  float* w = scratch.take("w");
  matmat(p.decay_w2, decay_lora, w, T);
  for (size_t i = 0; i < TC; ++i) w[i] = std::exp(-std::exp(p.time_decay[i % C] + w[i]));

  float* y = scratch.take("y");
  wkv5_tokens(r, k, v, w, C, p.bonus, pass, states, weights.wkv, y, info, p.ln_x);
  for (size_t i = 0; i < TC; ++i) y[i] *= silu(g[i]);
  float* out = scratch.take("out");
  matmat(p.output, y, out, T);
  add_rows(x, out, T, C);
}

}  // namespace

void run_blocks(const V6Weights& w, const ModelInfo& info, float* x, const Pass& pass) {
  const uint32_t C = info.n_embd;
  run_layers(
      v6_spec(), w.layers, C, x, pass,
      [&](uint32_t, const V6Layer& p, const float* xx, LayerStates states, Scratch& scratch) {
        time_mix(w, p, info, xx, pass, states, x, scratch);
      },
      [&](const V6Layer& p, const float* xx, LayerStates states, Scratch& scratch) {
        channel_mix(p.ffn, xx, pass, states, w.ffn_shift, x, C, scratch);
      });
}

}  // namespace rwkv::arch
