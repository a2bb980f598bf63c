#include "rwkv/model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <variant>

#include "arch/blocks.hpp"
#include "arch/rwkv4.hpp"
#include "arch/rwkv5.hpp"
#include "arch/rwkv6.hpp"
#include "arch/rwkv7.hpp"
#include "convert/source_model.hpp"
#include "convert/to_native.hpp"
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
  std::string path;  // as given to load (an imported file's own, not its temporary native file's)
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

std::string model_file_format(const std::string& path) {
  switch (convert::detect_source_format(path)) {
    case convert::SourceFormat::Native: return "native";
    case convert::SourceFormat::Pth: return "pth";
    case convert::SourceFormat::RwkvCpp: return "rwkv.cpp";
    case convert::SourceFormat::Gguf: return "gguf";
    case convert::SourceFormat::Safetensors: return "safetensors";
    case convert::SourceFormat::HuggingFaceDir: return "huggingface";
    case convert::SourceFormat::Unknown: break;
  }
  return "unknown";
}

SourceSummary summarize_source_file(const std::string& path) {
  const convert::SourceModel source = convert::open_source(path);
  SourceSummary summary{model_file_format(path), {}};
  for (const convert::SourceTensor& t : source.tensors) {
    auto it = std::find_if(summary.tensor_types.begin(), summary.tensor_types.end(),
                           [&](const auto& entry) { return entry.first == t.type; });
    if (it == summary.tensor_types.end()) {
      summary.tensor_types.emplace_back(t.type, 1);
    } else {
      ++it->second;
    }
  }
  return summary;
}

namespace {

// An imported model converted to a native file in the temporary directory, removed
// when this goes: a mapping of it keeps its pages.
struct TemporaryNative {
  std::filesystem::path path;
  explicit TemporaryNative(const std::string& source_path) {
    const convert::SourceModel source = convert::open_source(source_path);
    convert::ConvertOptions options;
    options.types = convert::lossless_types(source);
    std::random_device random;
    path = std::filesystem::temp_directory_path() / fmt::format("rwkv-import-{:08x}{:08x}.rwkv", random(), random());
    convert::convert_source(source, path.string(), options);
  }
  ~TemporaryNative() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  TemporaryNative(const TemporaryNative&) = delete;
  TemporaryNative& operator=(const TemporaryNative&) = delete;
};

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& path) {
  // An unreadable or unrecognised file is left to the native reader, whose errors say
  // what a native file should have been.
  convert::SourceFormat format = convert::SourceFormat::Unknown;
  try {
    format = convert::detect_source_format(path);
  } catch (const Error&) {
  }
  if (format != convert::SourceFormat::Native && format != convert::SourceFormat::Unknown) {
    const TemporaryNative native(path);
    return load_native(native.path.string(), path);
  }
  return load_native(path, path);
}

std::shared_ptr<const Model> Model::load_native(const std::string& path, const std::string& shown_path) {
  auto impl = std::make_unique<Impl>();
  impl->path = shown_path;
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
const std::string& Model::path() const { return impl_->path; }
std::string_view Model::embedded_vocabulary() const { return impl_->file.vocabulary; }
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
