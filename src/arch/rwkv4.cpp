// Follows the official RNN-mode code: ChatRWKV rwkv/model.py `att_one` / `ffn_one`
// and RWKV_in_150_lines.py. The WKV state (aa, bb, pp) keeps the numerator and
// denominator scaled by exp(-pp), so no exponential overflows.
#include "arch/rwkv4.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/thread_pool.hpp"
#include "kernels/vector_math.hpp"
#include "kernels/wkv.hpp"

namespace rwkv::arch {

const VersionSpec& v4_spec() {
  static const VersionSpec spec = [] {
    VersionSpec v{Arch::V4, common_tensors(), {}, {}};
    const std::vector<TensorSpec> att = {
        {"att.time_mix_k", Where::EveryLayer, {Dim::C}, "att.time_mix_k"},
        {"att.time_mix_v", Where::EveryLayer, {Dim::C}, "att.time_mix_v"},
        {"att.time_mix_r", Where::EveryLayer, {Dim::C}, "att.time_mix_r"},
        // The official code's load-time transform: w = -exp(time_decay).
        {"att.log_decay", Where::EveryLayer, {Dim::C}, "att.time_decay", Layout::AsIs, ValueMap::NegExp},
        {"att.bonus", Where::EveryLayer, {Dim::C}, "att.time_first"},
        {"att.key.weight", Where::EveryLayer, {Dim::C, Dim::C}, "att.key.weight", Layout::AsIs, ValueMap::None, true},
        {"att.value.weight", Where::EveryLayer, {Dim::C, Dim::C}, "att.value.weight", Layout::AsIs, ValueMap::None,
         true},
        {"att.receptance.weight", Where::EveryLayer, {Dim::C, Dim::C}, "att.receptance.weight", Layout::AsIs,
         ValueMap::None, true},
        {"att.output.weight", Where::EveryLayer, {Dim::C, Dim::C}, "att.output.weight", Layout::AsIs, ValueMap::None,
         true},
    };
    v.tensors.insert(v.tensors.end(), att.begin(), att.end());
    const auto ffn = shared_channel_mix_tensors(true);
    v.tensors.insert(v.tensors.end(), ffn.begin(), ffn.end());
    // aa, bb: numerator and denominator scaled by exp(-pp); pp starts at -1e30, the
    // "previous maximum" of an empty sum (0 would bias the first token).
    v.state = {{"att_shift", {Dim::C}}, {"aa", {Dim::C}}, {"bb", {Dim::C}}, {"pp", {Dim::C}, -1e30f},
               {"ffn_shift", {Dim::C}}};
    v.scratch = {{"xx", {Dim::C}}, {"kx", {Dim::C}}, {"vx", {Dim::C}}, {"rx", {Dim::C}}, {"r", {Dim::C}},
                 {"k", {Dim::C}},  {"v", {Dim::C}},  {"y", {Dim::C}},  {"out", {Dim::C}}};
    const auto ffn_scratch = shared_channel_mix_scratch();
    v.scratch.insert(v.scratch.end(), ffn_scratch.begin(), ffn_scratch.end());
    return v;
  }();
  return spec;
}

V4Weights bind_v4(const WeightBinder& w, const ModelInfo& info) {
  const VersionSpec& spec = v4_spec();
  const StateLayout state(spec, Sizes::of(info));
  V4Weights out{state,           state.offset("att_shift"), state.offset("aa"), state.offset("bb"),
                state.offset("pp"), state.offset("ffn_shift"), {}};
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    const LayerTensors t(spec, w, info, i);
    V4Layer l;
    l.sizes = t.sizes();
    l.ln1 = t.norm("ln1");
    l.ln2 = t.norm("ln2");
    l.time_mix_k = t.f32("att.time_mix_k");
    l.time_mix_v = t.f32("att.time_mix_v");
    l.time_mix_r = t.f32("att.time_mix_r");
    l.log_decay = t.f32("att.log_decay");
    l.bonus = t.f32("att.bonus");
    l.key = t.matrix("att.key.weight");
    l.value = t.matrix("att.value.weight");
    l.receptance = t.matrix("att.receptance.weight");
    l.output = t.matrix("att.output.weight");
    l.ffn = bind_channel_mix(t);
    out.layers.push_back(l);
  }
  return out;
}

namespace {

void time_mix(const V4Weights& w, const V4Layer& p, const float* xx, const Pass& pass, LayerStates states, float* x,
              uint32_t C, Scratch& scratch) {
  const uint32_t T = pass.rows;
  const size_t TC = size_t(T) * C;
  float* kx = scratch.take("kx");
  float* vx = scratch.take("vx");
  float* rx = scratch.take("rx");
  each_token(xx, pass, states, w.att_shift, C, [&](uint32_t t, const float* cur, const float* prev) {
    const size_t at = size_t(t) * C;
    token_shift_blend(cur, prev, p.time_mix_k, kx + at, C);
    token_shift_blend(cur, prev, p.time_mix_v, vx + at, C);
    token_shift_blend(cur, prev, p.time_mix_r, rx + at, C);
  });
  keep_last_rows(xx, pass, states, w.att_shift, C);
  float* r = scratch.take("r");
  float* k = scratch.take("k");
  float* v = scratch.take("v");
  matmat(p.receptance, rx, r, T);
  matmat(p.key, kx, k, T);
  matmat(p.value, vx, v, T);
  float* y = scratch.take("y");
  // Each run through its rows in order, from its own aa, bb, pp; runs in parallel.
  parallel_for(static_cast<uint32_t>(pass.runs.size()), 1, [&](uint32_t run_begin, uint32_t run_end) {
    for (uint32_t ri = run_begin; ri < run_end; ++ri) {
      const Run& run = pass.runs[ri];
      float* s = states[ri];
      for (uint32_t t = run.first; t < run.first + run.rows; ++t) {
        const size_t at = size_t(t) * C;
        wkv4_step(k + at, v + at, p.log_decay, p.bonus, s + w.aa, s + w.bb, s + w.pp, y + at, C);
        for (uint32_t c = 0; c < C; ++c) y[at + c] *= sigmoid(r[at + c]);
      }
    }
  });
  float* out = scratch.take("out");
  matmat(p.output, y, out, T);
  for (size_t i = 0; i < TC; ++i) x[i] += out[i];
}

}  // namespace

void run_blocks(const V4Weights& w, const ModelInfo& info, float* x, const Pass& pass) {
  const uint32_t C = info.n_embd;
  run_layers(
      v4_spec(), w.layers, C, x, pass,
      [&](uint32_t, const V4Layer& p, const float* xx, LayerStates states, Scratch& scratch) {
        time_mix(w, p, xx, pass, states, x, C, scratch);
      },
      [&](const V4Layer& p, const float* xx, LayerStates states, Scratch& scratch) {
        channel_mix(p.ffn, xx, pass, states, w.ffn_shift, x, C, scratch);
      });
}

}  // namespace rwkv::arch
