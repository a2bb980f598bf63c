#include "rwkv/model.hpp"

#include <fmt/format.h>

#include <variant>

#include "arch/blocks.hpp"
#include "arch/rwkv4.hpp"
#include "arch/rwkv5.hpp"
#include "arch/rwkv6.hpp"
#include "arch/rwkv7.hpp"
#include "io/printable.hpp"
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
  throw Error(fmt::format("unknown architecture '{}': expected one of 4, 5.0, 5.1, 5.2, 6.0, 7.0", io::printable(name)));
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
  const arch::LayerTensors model_tensors(arch::version_spec(info.arch), w, info, std::nullopt);
  impl->embedding = model_tensors.matrix("emb.weight");
  impl->ln0 = model_tensors.norm("blocks.0.ln0");
  impl->ln_out = model_tensors.norm("ln_out");
  impl->head = model_tensors.matrix("head.weight");
  impl->blocks = bind_blocks(w, info);
  w.require_all_bound();
  impl->state_floats_per_layer =
      std::visit([](const auto& b) { return b.state.floats(); }, impl->blocks);
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
  std::visit(
      [&](const auto& b) {
        for (uint32_t i = 0; i < info().n_layer; ++i) b.state.init(state.layer(i).data());
      },
      impl_->blocks);
  return state;
}


namespace {

// Sequence mode processes at most this many tokens per pass, which bounds the
// activation memory (about 40 × C floats per token) while every weight matrix is
// still read once per chunk instead of once per token.
constexpr size_t kMaxChunk = 128;

enum class Logits { None, Last, All };

// T tokens through the model, each matrix read once for all of them; `logits` gets
// n_vocab values for the last token (Last) or for each token (All).
void run_chunk(const Model::Impl& m, std::span<const int32_t> tokens, State& state, Logits want, float* logits) {
  const ModelInfo& info = m.file.info;
  const uint32_t C = info.n_embd;
  const auto T = static_cast<uint32_t>(tokens.size());
  thread_local std::vector<float> x, normed;
  x.resize(size_t(T) * C);
  normed.resize(size_t(T) * C);
  for (uint32_t t = 0; t < T; ++t) copy_row(m.embedding, static_cast<uint32_t>(tokens[t]), normed.data() + size_t(t) * C);
  arch::layer_norm_rows(normed.data(), m.ln0, x.data(), T, C);
  std::visit([&](const auto& b) { arch::run_blocks(b, info, x.data(), T, state); }, m.blocks);
  if (want == Logits::None) return;
  // Only the rows whose logits are wanted go through the head.
  const uint32_t first = want == Logits::Last ? T - 1 : 0;
  arch::layer_norm_rows(x.data() + size_t(first) * C, m.ln_out, normed.data(), T - first, C);
  matmat(m.head, normed.data(), logits, T - first);
}

void check_state(const Model::Impl& m, const Model& model, const State& state) {
  if (state.n_layer != m.file.info.n_layer || state.floats_per_layer != m.state_floats_per_layer ||
      state.data.size() != size_t(state.n_layer) * state.floats_per_layer) {
    throw Error(fmt::format("state does not belong to {}: it has {} layers of {} floats, expected {} of {}",
                            model.path(), state.n_layer, state.floats_per_layer, m.file.info.n_layer,
                            m.state_floats_per_layer));
  }
}

void check_tokens(const Model& model, std::span<const int32_t> tokens) {
  const uint32_t n_vocab = model.info().n_vocab;
  for (int32_t token : tokens) {
    if (token < 0 || static_cast<uint32_t>(token) >= n_vocab) {
      throw Error(fmt::format("token id {} is out of range for {} (n_vocab = {})", token, model.path(), n_vocab));
    }
  }
}

}  // namespace

void Model::advance(int32_t token, State& state) const {
  const int32_t one[1] = {token};
  check_tokens(*this, one);
  check_state(*impl_, *this, state);
  run_chunk(*impl_, one, state, Logits::None, nullptr);
}

void Model::forward(int32_t token, State& state, std::span<float> logits) const {
  if (logits.size() != info().n_vocab) {
    throw Error(fmt::format("logits buffer holds {} values, the model has n_vocab = {}", logits.size(), info().n_vocab));
  }
  const int32_t one[1] = {token};
  check_tokens(*this, one);
  check_state(*impl_, *this, state);
  run_chunk(*impl_, one, state, Logits::Last, logits.data());
}

void Model::forward_sequence(std::span<const int32_t> tokens, State& state, std::span<float> logits) const {
  const size_t V = info().n_vocab;
  Logits want = Logits::None;
  if (logits.size() == V && !tokens.empty()) {
    want = Logits::Last;
  } else if (logits.size() == tokens.size() * V && !tokens.empty()) {
    want = Logits::All;
  } else if (!logits.empty()) {
    throw Error(fmt::format("logits buffer holds {} values: expected 0, n_vocab ({}) or {} tokens x n_vocab",
                            logits.size(), V, tokens.size()));
  }
  check_tokens(*this, tokens);
  check_state(*impl_, *this, state);
  for (size_t start = 0; start < tokens.size(); start += kMaxChunk) {
    const size_t n = std::min(kMaxChunk, tokens.size() - start);
    const bool last_chunk = start + n == tokens.size();
    if (want == Logits::All) {
      run_chunk(*impl_, tokens.subspan(start, n), state, Logits::All, logits.data() + start * V);
    } else {
      run_chunk(*impl_, tokens.subspan(start, n), state, last_chunk ? want : Logits::None, logits.data());
    }
  }
}

}  // namespace rwkv
