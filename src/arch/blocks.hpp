// What the RWKV versions share: norms bound by name, scratch space for one token,
// small activation helpers, and the v4/v5 channel mix.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "arch/spec.hpp"
#include "kernels/matvec.hpp"
#include "rwkv/state.hpp"
#include "weights/binder.hpp"

namespace rwkv::arch {

inline constexpr float kLayerNormEps = 1e-5f;
// The official inference code normalises ln_x with 64e-5 (training's GroupNorm(x / 8) at eps 1e-5).
inline constexpr float kGroupNormEps = 64e-5f;

struct Norm {
  const float* weight = nullptr;  // [C]
  const float* bias = nullptr;    // [C]
};

// Per-thread scratch buffers for one forward step, reused across tokens so that
// decoding allocates nothing after the first token. The buffers are the version
// table's (VersionSpec::scratch), each T tokens long and taken by name. The storage is
// left uninitialised: pages the step never writes are never touched.
class Scratch {
 public:
  Scratch(const std::vector<ScratchBuffer>& plan, const Sizes& sizes, uint32_t T);
  // The buffer the table names `name`; std::logic_error for a name it lacks.
  float* take(const char* name);

  struct Storage {
    std::unique_ptr<float[]> data;
    size_t size = 0;
  };

 private:
  const std::vector<ScratchBuffer>& plan_;
  // (plan_) where each buffer starts: a fixed array, so that a step allocates nothing.
  static constexpr size_t kMaxBuffers = 48;
  std::array<size_t, kMaxBuffers> offsets_{};
  Storage& storage_;
};

// The tensors of one layer (no layer: the model's own), found in the native file and
// checked against the version's table (shapes, float32 for all but matrices and the
// low-rank ones, which may also be float16 or bfloat16), then
// looked up by their table names. LoRA sizes are learnt from the tensors.
class LayerTensors {
 public:
  LayerTensors(const VersionSpec& spec, const WeightBinder& w, const ModelInfo& info, std::optional<uint32_t> layer);
  const float* f32(const char* name) const;
  MatrixRef matrix(const char* name) const;
  WeightBinder::Typed typed(const char* name) const;
  Norm norm(const char* prefix) const;  // prefix.weight, prefix.bias
  bool has(const char* name) const;
  const Sizes& sizes() const { return sizes_; }

 private:
  using Entry = std::pair<const TensorSpec*, const NativeTensor*>;
  const Entry* find(const char* name) const;  // null if the table has no such tensor here
  const Entry& entry(const char* name) const;  // throws if it has none
  const NativeTensor& get(const char* name) const { return *entry(name).second; }
  std::vector<Entry> tensors_;
  Sizes sizes_;
};

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// v4, v5 and v6 channel mixing: r = σ(Wr rx), out = r ⊙ Wv relu(Wk kx)², with fixed
// token-shift mixes kx = x + (prev − x) ⊙ maa_k (likewise rx). v6 checkpoints store maa
// as it is; v4/v5 store time_mix = 1 − maa, which the converter turns into maa, so that
// the three versions share this one definition.
struct ChannelMix {
  const float* maa_k = nullptr;  // [C] weight of the previous token in kx
  const float* maa_r = nullptr;  // [C] weight of the previous token in rx
  MatrixRef key;                 // [F, C]
  MatrixRef value;               // [C, F]
  MatrixRef receptance;          // [C, C]
};

ChannelMix bind_channel_mix(const LayerTensors& t);

// Every block below works on the T rows of a Pass at once: activations are row-major
// [T, C], so each weight matrix is read once for all T rows (matmat), while the
// recurrences advance each sequence token by token.

// Consecutive rows of a pass that continue one sequence from its own state.
struct Run {
  uint32_t first = 0;  // its first row
  uint32_t rows = 0;
  State* state = nullptr;
};

// The rows of one pass through the blocks, as runs: one run of T tokens in sequence
// mode, one row for each of B sequences in batched decoding, or any mix of the two.
struct Pass {
  uint32_t rows = 0;                      // T: every run's rows
  std::span<const Run> runs;              // in row order, covering [0, T)
  std::span<const uint32_t> run_of_row;   // [T] the run each row belongs to
  bool starts_run(uint32_t row) const { return runs[run_of_row[row]].first == row; }
};

// Fills `run_of_row` for `runs` (consecutive, from row 0) and returns their pass.
Pass make_pass(std::span<const Run> runs, std::vector<uint32_t>& run_of_row);

// One layer's part of each run's state: states[run] points at that run's floats of the layer.
using LayerStates = std::span<float* const>;

// The row before row t: the previous row of its run, or for a run's first row the one
// kept at `shift_offset` in the run's state.
inline const float* previous_row(const float* rows, const Pass& pass, LayerStates states, uint32_t shift_offset,
                                 uint32_t t, uint32_t n) {
  return pass.starts_run(t) ? states[pass.run_of_row[t]] + shift_offset : rows + size_t(t - 1) * n;
}

// Tokens per task where per-token work is spread over the thread pool (sequence mode;
// a single token runs on the calling thread).
inline constexpr uint32_t kTokensPerTask = 8;

// fn(t, row t, the row before it) for each of the pass's rows of n values: the
// token-shift mixes. Spread over the pool.
void each_token(const float* rows, const Pass& pass, LayerStates states, uint32_t shift_offset, uint32_t n,
                const std::function<void(uint32_t t, const float* cur, const float* prev)>& fn);

// Keeps each run's last row at `shift_offset` in its state: the row before the run's next token.
void keep_last_rows(const float* rows, const Pass& pass, LayerStates states, uint32_t shift_offset, uint32_t n);

// fn(run, head) for every run and head, spread over the pool: a recurrence goes through
// its run's rows in order, and runs and heads are independent.
void each_run_and_head(const Pass& pass, uint32_t n_head, const std::function<void(uint32_t run, uint32_t head)>& fn);

// Into how many parts of its rows to split each of `units` recurrences over heads of
// `head_size` rows so that `threads` threads share them evenly: 1 where the units already
// divide among the threads (or are many), else the fewest halvings that divide or give
// eight units a thread, keeping parts of four rows or a multiple of four.
uint32_t head_parts(uint32_t units, uint32_t threads, uint32_t head_size);

// x[t, :] += add[t, :] for T rows of n values.
void add_rows(float* x, const float* add, uint32_t T, uint32_t n);

// LayerNorm of each of T rows of n values.
void layer_norm_rows(const float* x, const Norm& norm, float* out, uint32_t T, uint32_t n);

// The RWKV block, layer after layer: x += time_mix(ln1(x)); x += channel_mix(ln2(x)).
// Each Layer has its norms ln1, ln2 and its `sizes`; the scratch buffers are the
// spec's, with "xx" holding the norms' outputs. time_mix(layer_index, layer, xx,
// layer_states, scratch) and channel_mix(layer, xx, layer_states, scratch) add their
// outputs to x.
template <typename Layer, typename TimeMix, typename ChannelMix>
void run_layers(const VersionSpec& spec, const std::vector<Layer>& layers, uint32_t n_embd, float* x,
                const Pass& pass, TimeMix&& time_mix, ChannelMix&& channel_mix) {
  const uint32_t T = pass.rows;
  thread_local std::vector<float*> states;
  states.resize(pass.runs.size());
  for (uint32_t i = 0; i < layers.size(); ++i) {
    const Layer& layer = layers[i];
    for (size_t r = 0; r < pass.runs.size(); ++r) states[r] = pass.runs[r].state->layer(i).data();
    Scratch scratch(spec.scratch, layer.sizes, T);
    float* xx = scratch.take("xx");
    layer_norm_rows(x, layer.ln1, xx, T, n_embd);
    time_mix(i, layer, xx, LayerStates(states), scratch);
    layer_norm_rows(x, layer.ln2, xx, T, n_embd);
    channel_mix(layer, xx, LayerStates(states), scratch);
  }
}

// xx: the pass's ln2 outputs [T, C], with each run's previous row at `shift_offset` in
// its state (updated to the run's last row); x [T, C] += the block's output.
void channel_mix(const ChannelMix& p, const float* xx, const Pass& pass, LayerStates states, uint32_t shift_offset,
                 float* x, uint32_t n_embd, Scratch& scratch);

}  // namespace rwkv::arch
