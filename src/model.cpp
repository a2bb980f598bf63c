#include "rwkv/model.hpp"

#include <fmt/format.h>

#include <variant>

#include "arch/blocks.hpp"
#include "arch/rwkv4.hpp"
#include "arch/rwkv5.hpp"
#include "arch/rwkv6.hpp"
#include "arch/rwkv7.hpp"
#include "rwkv/error.hpp"
#include "weights/binder.hpp"
#include "weights/format.hpp"

namespace rwkv {

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::V4: return "4";
    case Arch::V5_0: return "5.0";
    case Arch::V5_1: return "5.1";
    case Arch::V5_2: return "5.2";
    case Arch::V6_0: return "6.0";
    case Arch::V7_0: return "7.0";
  }
  return "unknown";
}

Arch parse_arch(std::string_view name) {
  for (Arch a : {Arch::V4, Arch::V5_0, Arch::V5_1, Arch::V5_2, Arch::V6_0, Arch::V7_0}) {
    if (name == arch_name(a)) return a;
  }
  throw Error(fmt::format("unknown architecture '{}': expected one of 4, 5.0, 5.1, 5.2, 6.0, 7.0", name));
}

using ArchWeights = std::variant<arch::V4Weights, arch::V5Weights, arch::V6Weights, arch::V7Weights>;

struct Model::Impl {
  NativeFile file;
  MatrixRef embedding;  // [V, C]
  arch::Norm ln0;       // applied to the embedding row before the first block
  arch::Norm ln_out;
  MatrixRef head;  // [V, C]
  ArchWeights blocks;
  uint32_t state_floats_per_layer = 0;
};

namespace {

ArchWeights bind_blocks(const WeightBinder& w, const ModelInfo& info) {
  switch (info.arch) {
    case Arch::V4: return arch::bind_v4(w, info);
    case Arch::V5_0:
    case Arch::V5_1:
    case Arch::V5_2: return arch::bind_v5(w, info);
    case Arch::V6_0: return arch::bind_v6(w, info);
    case Arch::V7_0: return arch::bind_v7(w, info);
  }
  throw Error("unreachable architecture");
}

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->file = read_native_file(path);
  const ModelInfo& info = impl->file.info;
  WeightBinder w(impl->file);
  impl->embedding = w.matrix("emb.weight", info.n_vocab, info.n_embd);
  impl->ln0 = arch::bind_norm(w, "blocks.0.ln0", info.n_embd);
  impl->ln_out = arch::bind_norm(w, "ln_out", info.n_embd);
  impl->head = w.matrix("head.weight", info.n_vocab, info.n_embd);
  impl->blocks = bind_blocks(w, info);
  impl->state_floats_per_layer =
      std::visit([&](const auto& b) { return arch::state_floats_per_layer(b, info); }, impl->blocks);
  return std::shared_ptr<const Model>(new Model(std::move(impl)));
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

const ModelInfo& Model::info() const { return impl_->file.info; }
const std::string& Model::path() const { return impl_->file.file.path(); }
uint64_t Model::file_bytes() const { return impl_->file.file.size(); }

std::vector<TensorInfo> Model::tensors() const {
  std::vector<TensorInfo> out;
  for (const NativeTensor& t : impl_->file.tensors) out.push_back({t.name, dtype_name(t.dtype), t.shape, t.bytes});
  return out;
}

State Model::new_state() const {
  State state;
  state.n_layer = info().n_layer;
  state.floats_per_layer = impl_->state_floats_per_layer;
  state.data.assign(size_t(state.n_layer) * state.floats_per_layer, 0.0f);
  std::visit([&](const auto& b) { arch::init_state(b, info(), state); }, impl_->blocks);
  return state;
}

namespace {

void check_inputs(const Model& model, int32_t token, const State& state) {
  const ModelInfo& info = model.info();
  if (token < 0 || static_cast<uint32_t>(token) >= info.n_vocab) {
    throw Error(fmt::format("token id {} is out of range for {} (n_vocab = {})", token, model.path(), info.n_vocab));
  }
  if (state.n_layer != info.n_layer || state.data.size() != size_t(state.n_layer) * state.floats_per_layer) {
    throw Error(fmt::format("state does not belong to {}: it has {} layers of {} floats", model.path(), state.n_layer,
                            state.floats_per_layer));
  }
}

}  // namespace

namespace {

// One token through the model; logits may be null when they are not needed.
void step(const Model::Impl& m, const Model& model, int32_t token, State& state, float* logits) {
  const ModelInfo& info = m.file.info;
  check_inputs(model, token, state);
  if (state.floats_per_layer != m.state_floats_per_layer) {
    throw Error(fmt::format("state does not belong to {}: {} floats per layer, expected {}", model.path(),
                            state.floats_per_layer, m.state_floats_per_layer));
  }
  thread_local std::vector<float> x, normed;
  x.resize(info.n_embd);
  normed.resize(info.n_embd);
  copy_row(m.embedding, static_cast<uint32_t>(token), normed.data());
  layer_norm(normed.data(), m.ln0.weight, m.ln0.bias, x.data(), info.n_embd, arch::kLayerNormEps);
  std::visit([&](const auto& b) { arch::run_blocks(b, info, x.data(), state); }, m.blocks);
  if (logits == nullptr) return;
  layer_norm(x.data(), m.ln_out.weight, m.ln_out.bias, normed.data(), info.n_embd, arch::kLayerNormEps);
  matvec(m.head, normed.data(), logits);
}

}  // namespace

void Model::advance(int32_t token, State& state) const { step(*impl_, *this, token, state, nullptr); }

void Model::forward(int32_t token, State& state, std::span<float> logits) const {
  if (logits.size() != info().n_vocab) {
    throw Error(fmt::format("logits buffer holds {} values, the model has n_vocab = {}", logits.size(), info().n_vocab));
  }
  step(*impl_, *this, token, state, logits.data());
}

}  // namespace rwkv
