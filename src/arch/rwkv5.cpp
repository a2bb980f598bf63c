// Follows the official RNN-mode code: ChatRWKV rwkv/model.py `att_one_v5` (5.0),
// `att_one_v5_1` (5.1 and 5.2) and RWKV_v5_demo.py, with the load-time transforms
// of its __init__ done by the converter.
#include "arch/rwkv5.hpp"

#include <algorithm>

#include "kernels/thread_pool.hpp"
#include "kernels/vector_math.hpp"
#include "kernels/wkv.hpp"

namespace rwkv::arch {

const VersionSpec& v5_spec(Arch arch) {
  auto make = [](Arch version) {
    const bool gated = version != Arch::V5_0;
    VersionSpec v{version, common_tensors(), {}, {}};
    auto matrix = [](const char* name) {
      return TensorSpec{name, Where::EveryLayer, {Dim::C, Dim::C}, name, Layout::AsIs, ValueMap::None, true};
    };
    std::vector<TensorSpec> att = {
        {"att.time_mix_k", Where::EveryLayer, {Dim::C}, "att.time_mix_k"},
        {"att.time_mix_v", Where::EveryLayer, {Dim::C}, "att.time_mix_v"},
        {"att.time_mix_r", Where::EveryLayer, {Dim::C}, "att.time_mix_r"},
        // Per head (5.0, 5.1) or per channel (5.2) in checkpoints; per channel here.
        {"att.decay", Where::EveryLayer, {Dim::H, Dim::N}, "att.time_decay", Layout::HeadBroadcast,
         ValueMap::ExpNegExp},
        gated ? TensorSpec{"att.bonus", Where::EveryLayer, {Dim::H, Dim::N}, "att.time_faaaa", Layout::HeadBroadcast}
              : TensorSpec{"att.bonus", Where::EveryLayer, {Dim::H, Dim::N}, "att.time_first", Layout::HeadBroadcast,
                           ValueMap::Exp},
        matrix("att.key.weight"),
        matrix("att.value.weight"),
        matrix("att.receptance.weight"),
        matrix("att.output.weight"),
        {"att.ln_x.weight", Where::EveryLayer, {Dim::C}, "att.ln_x.weight"},
        {"att.ln_x.bias", Where::EveryLayer, {Dim::C}, "att.ln_x.bias"},
    };
    if (gated) {
      att.push_back({"att.time_mix_g", Where::EveryLayer, {Dim::C}, "att.time_mix_g"});
      att.push_back(matrix("att.gate.weight"));
    }
    v.tensors.insert(v.tensors.end(), att.begin(), att.end());
    const auto ffn = shared_channel_mix_tensors(true);
    v.tensors.insert(v.tensors.end(), ffn.begin(), ffn.end());
    v.state = {{"att_shift", {Dim::C}}, {"wkv", {Dim::H, Dim::N, Dim::N}}, {"ffn_shift", {Dim::C}}};
    v.scratch = {{"xx", {Dim::C}}, {"kx", {Dim::C}}, {"vx", {Dim::C}}, {"rx", {Dim::C}}, {"gx", {Dim::C}},
                 {"r", {Dim::C}},  {"k", {Dim::C}},  {"v", {Dim::C}},  {"g", {Dim::C}},  {"y", {Dim::C}},
                 {"out", {Dim::C}}};
    const auto ffn_scratch = shared_channel_mix_scratch();
    v.scratch.insert(v.scratch.end(), ffn_scratch.begin(), ffn_scratch.end());
    return v;
  };
  static const VersionSpec v5_0 = make(Arch::V5_0), v5_1 = make(Arch::V5_1), v5_2 = make(Arch::V5_2);
  return arch == Arch::V5_0 ? v5_0 : arch == Arch::V5_1 ? v5_1 : v5_2;
}

V5Weights bind_v5(const WeightBinder& w, const ModelInfo& info) {
  const VersionSpec& spec = v5_spec(info.arch);
  const StateLayout state(spec, Sizes::of(info));
  V5Weights out{info.arch, info.arch != Arch::V5_0, state, state.offset("att_shift"), state.offset("wkv"),
                state.offset("ffn_shift"), {}};
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    const LayerTensors t(spec, w, info, i);
    V5Layer l;
    l.sizes = t.sizes();
    l.ln1 = t.norm("ln1");
    l.ln2 = t.norm("ln2");
    l.ln_x = t.norm("att.ln_x");
    l.time_mix_k = t.f32("att.time_mix_k");
    l.time_mix_v = t.f32("att.time_mix_v");
    l.time_mix_r = t.f32("att.time_mix_r");
    l.decay = t.f32("att.decay");
    l.bonus = t.f32("att.bonus");
    l.key = t.matrix("att.key.weight");
    l.value = t.matrix("att.value.weight");
    l.receptance = t.matrix("att.receptance.weight");
    l.output = t.matrix("att.output.weight");
    if (out.has_gate) {
      l.time_mix_g = t.f32("att.time_mix_g");
      l.gate = t.matrix("att.gate.weight");
    }
    l.ffn = bind_channel_mix(t);
    out.layers.push_back(l);
  }
  return out;
}

void wkv5_tokens(const float* r, const float* k, const float* v, const float* w, size_t w_token_stride,
                 const float* u, const Pass& pass, LayerStates states, uint32_t wkv_offset, float* y,
                 const ModelInfo& info, const Norm& ln_x) {
  const uint32_t C = info.n_embd;
  const uint32_t N = info.head_size;
  each_run_and_head(pass, info.n_head, [&](uint32_t ri, uint32_t h) {
    const Run& run = pass.runs[ri];
    const uint32_t o = h * N;
    float* S = states[ri] + wkv_offset + size_t(h) * N * N;
    for (uint32_t t = run.first; t < run.first + run.rows; ++t) {
      const size_t at = size_t(t) * C + o;
      wkv5_head_step(r + at, k + at, v + at, w + t * w_token_stride + o, u + o, S, y + at, N);
      group_norm(y + at, ln_x.weight + o, ln_x.bias + o, 1, N, kGroupNormEps);
    }
  });
}

namespace {

void time_mix(const V5Weights& w, const V5Layer& p, const ModelInfo& info, const float* xx, const Pass& pass,
              LayerStates states, float* x, Scratch& scratch) {
  const bool has_gate = w.has_gate;
  const uint32_t C = info.n_embd;
  const uint32_t T = pass.rows;
  const size_t TC = size_t(T) * C;
  float* kx = scratch.take("kx");
  float* vx = scratch.take("vx");
  float* rx = scratch.take("rx");
  float* gx = scratch.take("gx");
  each_token(xx, pass, states, w.att_shift, C, [&](uint32_t t, const float* cur, const float* prev) {
    const size_t at = size_t(t) * C;
    token_shift_blend(cur, prev, p.time_mix_k, kx + at, C);
    token_shift_blend(cur, prev, p.time_mix_v, vx + at, C);
    token_shift_blend(cur, prev, p.time_mix_r, rx + at, C);
    if (has_gate) token_shift_blend(cur, prev, p.time_mix_g, gx + at, C);
  });
  keep_last_rows(xx, pass, states, w.att_shift, C);
  float* r = scratch.take("r");
  float* k = scratch.take("k");
  float* v = scratch.take("v");
  float* g = scratch.take("g");
  matmat(p.receptance, rx, r, T);
  matmat(p.key, kx, k, T);
  matmat(p.value, vx, v, T);
  if (has_gate) matmat(p.gate, gx, g, T);
  float* y = scratch.take("y");
  wkv5_tokens(r, k, v, p.decay, 0, p.bonus, pass, states, w.wkv, y, info, p.ln_x);
  if (has_gate) {
    for (size_t i = 0; i < TC; ++i) y[i] *= silu(g[i]);
  }
  float* out = scratch.take("out");
  matmat(p.output, y, out, T);
  add_rows(x, out, T, C);
}

}  // namespace

void run_blocks(const V5Weights& w, const ModelInfo& info, float* x, const Pass& pass) {
  const uint32_t C = info.n_embd;
  run_layers(
      v5_spec(w.arch), w.layers, C, x, pass,
      [&](uint32_t, const V5Layer& p, const float* xx, LayerStates states, Scratch& scratch) {
        time_mix(w, p, info, xx, pass, states, x, scratch);
      },
      [&](const V5Layer& p, const float* xx, LayerStates states, Scratch& scratch) {
        channel_mix(p.ffn, xx, pass, states, w.ffn_shift, x, C, scratch);
      });
}

}  // namespace rwkv::arch
