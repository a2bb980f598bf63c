#include "arch/blocks.hpp"

#include <algorithm>
#include <stdexcept>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kernels/thread_pool.hpp"
#include "kernels/vector_math.hpp"

namespace rwkv::arch {

Scratch::Scratch(const std::vector<ScratchBuffer>& plan, const Sizes& sizes, uint32_t T)
    : plan_(plan), storage_([]() -> Storage& {
        thread_local Storage storage;
        return storage;
      }()) {
  if (plan.size() > kMaxBuffers) throw std::logic_error("rwkv: a version's scratch plan has too many buffers");
  size_t floats = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const ScratchBuffer& b = plan[i];
    offsets_[i] = floats;
    // A buffer sized by a LoRA this layer lacks (v7's v1 in layer 0) takes no space.
    const bool sized = std::all_of(b.per_token.begin(), b.per_token.end(), [&](Dim d) { return sizes[d] != 0; });
    floats += sized ? size_t(T) * sizes.product(b.per_token) : 0;
  }
  if (storage_.size < floats) {
    storage_.data.reset();
    storage_.data.reset(new float[floats]);  // default-initialised: untouched until used
    storage_.size = floats;
  }
}

float* Scratch::take(const char* name) {
  for (size_t i = 0; i < plan_.size(); ++i) {
    if (std::strcmp(plan_[i].name, name) == 0) return storage_.data.get() + offsets_[i];
  }
  throw std::logic_error(std::string("rwkv: no scratch buffer named ") + name + " in the version's table");
}

LayerTensors::LayerTensors(const VersionSpec& spec, const WeightBinder& w, const ModelInfo& info,
                           std::optional<uint32_t> layer)
    : sizes_(Sizes::of(info)) {
  for (const TensorSpec& t : spec.tensors) {
    if (layer ? !in_layer(t, *layer) : t.where != Where::Model) continue;
    const std::string name = native_name(t, layer.value_or(0));
    const NativeTensor& found = w.get(name);
    if (!sizes_.unify(t.shape, found.shape)) {
      w.fail(fmt::format("tensor '{}' has shape [{}], expected {}", name, fmt::join(found.shape, ", "),
                         describe_shape(t.shape, sizes_)));
    }
    const bool half = found.dtype == DType::F16 || found.dtype == DType::BF16;
    if (!t.matrix && found.dtype != DType::F32 && !(t.source_half && half)) {
      w.fail(fmt::format("tensor '{}' is {}, expected f32{}", name, dtype_name(found.dtype),
                         t.source_half ? ", f16 or bf16" : ""));
    }
    tensors_.emplace_back(&t, &found);
  }
}

const LayerTensors::Entry* LayerTensors::find(const char* name) const {
  for (const Entry& e : tensors_) {
    if (std::strcmp(e.first->name, name) == 0) return &e;
  }
  return nullptr;
}

const LayerTensors::Entry& LayerTensors::entry(const char* name) const {
  const Entry* e = find(name);
  if (e == nullptr) throw std::logic_error(std::string("rwkv: tensor ") + name + " is not in the version's table");
  return *e;
}

bool LayerTensors::has(const char* name) const { return find(name) != nullptr; }

const float* LayerTensors::f32(const char* name) const {
  const NativeTensor& t = get(name);
  if (t.dtype != DType::F32) throw std::logic_error(std::string("rwkv: tensor ") + name + " is not float32");
  return reinterpret_cast<const float*>(t.data);
}

MatrixRef LayerTensors::matrix(const char* name) const {
  const auto& [spec, found] = entry(name);
  const NativeTensor& t = *found;
  if (t.shape.size() != 2) throw std::logic_error(std::string("rwkv: tensor ") + name + " is not a matrix");
  return MatrixRef{t.dtype, static_cast<uint32_t>(t.shape[0]), static_cast<uint32_t>(t.shape[1]), t.data,
                   spec->source_half, t.layout};
}

WeightBinder::Typed LayerTensors::typed(const char* name) const {
  const NativeTensor& t = get(name);
  return WeightBinder::Typed{t.dtype, t.data};
}

Norm LayerTensors::norm(const char* prefix) const {
  return Norm{f32((std::string(prefix) + ".weight").c_str()), f32((std::string(prefix) + ".bias").c_str())};
}

ChannelMix bind_channel_mix(const LayerTensors& t) {
  ChannelMix p;
  p.maa_k = t.f32("ffn.time_maa_k");
  p.maa_r = t.f32("ffn.time_maa_r");
  p.key = t.matrix("ffn.key.weight");
  p.value = t.matrix("ffn.value.weight");
  p.receptance = t.matrix("ffn.receptance.weight");
  return p;
}

void layer_norm_rows(const float* x, const Norm& norm, float* out, uint32_t T, uint32_t n) {
  parallel_for(T, kTokensPerTask, [&](uint32_t t_begin, uint32_t t_end) {
    for (uint32_t t = t_begin; t < t_end; ++t) {
      layer_norm(x + size_t(t) * n, norm.weight, norm.bias, out + size_t(t) * n, n, kLayerNormEps);
    }
  });
}

Pass make_pass(std::span<const Run> runs, std::vector<uint32_t>& run_of_row) {
  uint32_t rows = 0;
  for (const Run& run : runs) {
    if (run.first != rows || run.rows == 0 || run.state == nullptr) {
      throw std::logic_error("rwkv: a pass's runs must be consecutive, non-empty and have a state");
    }
    rows += run.rows;
  }
  run_of_row.resize(rows);
  for (uint32_t r = 0; r < runs.size(); ++r) {
    std::fill_n(run_of_row.begin() + runs[r].first, runs[r].rows, r);
  }
  return Pass{rows, runs, run_of_row};
}

void each_token(const float* rows, const Pass& pass, LayerStates states, uint32_t shift_offset, uint32_t n,
                const std::function<void(uint32_t t, const float* cur, const float* prev)>& fn) {
  parallel_for(pass.rows, kTokensPerTask, [&](uint32_t t_begin, uint32_t t_end) {
    for (uint32_t t = t_begin; t < t_end; ++t) {
      fn(t, rows + size_t(t) * n, previous_row(rows, pass, states, shift_offset, t, n));
    }
  });
}

void keep_last_rows(const float* rows, const Pass& pass, LayerStates states, uint32_t shift_offset, uint32_t n) {
  for (size_t r = 0; r < pass.runs.size(); ++r) {
    const Run& run = pass.runs[r];
    const float* last = rows + size_t(run.first + run.rows - 1) * n;
    std::copy(last, last + n, states[r] + shift_offset);
  }
}

void each_run_and_head(const Pass& pass, uint32_t n_head, const std::function<void(uint32_t run, uint32_t head)>& fn) {
  const auto units = static_cast<uint32_t>(pass.runs.size()) * n_head;
  parallel_for(units, 1, [&](uint32_t begin, uint32_t end) {
    for (uint32_t unit = begin; unit < end; ++unit) fn(unit / n_head, unit % n_head);
  });
}

uint32_t head_parts(uint32_t units, uint32_t threads, uint32_t head_size) {
  uint32_t parts = 1;
  while (units * parts % threads != 0 && units * parts < 8 * threads && head_size % (parts * 8) == 0) parts *= 2;
  return parts;
}

void add_rows(float* x, const float* add, uint32_t T, uint32_t n) {
  parallel_for(T, kTokensPerTask, [&](uint32_t t_begin, uint32_t t_end) {
    add_inplace(x + size_t(t_begin) * n, add + size_t(t_begin) * n, size_t(t_end - t_begin) * n);
  });
}

void channel_mix(const ChannelMix& p, const float* xx, const Pass& pass, LayerStates states, uint32_t shift_offset,
                 float* x, uint32_t n_embd, Scratch& scratch) {
  const uint32_t C = n_embd;
  const uint32_t T = pass.rows;
  float* kx = scratch.take("ffn.kx");
  float* rx = scratch.take("ffn.rx");
  each_token(xx, pass, states, shift_offset, C, [&](uint32_t t, const float* cur, const float* prev) {
    token_shift_mix(cur, prev, p.maa_k, kx + size_t(t) * C, C);
    token_shift_mix(cur, prev, p.maa_r, rx + size_t(t) * C, C);
  });
  keep_last_rows(xx, pass, states, shift_offset, C);
  float* r = scratch.take("ffn.r");
  float* k = scratch.take("ffn.k");
  float* v = scratch.take("ffn.v");
  matmat(p.receptance, rx, r, T);
  matmat_squared_relu(p.key, kx, k, T);
  matmat(p.value, k, v, T);
  parallel_for(T, kTokensPerTask, [&](uint32_t t_begin, uint32_t t_end) {
    const size_t begin = size_t(t_begin) * C, n = size_t(t_end - t_begin) * C;
    sigmoid_inplace(r + begin, uint32_t(n));
    add_product(x + begin, r + begin, v + begin, n);
  });
}

}  // namespace rwkv::arch
