#include "rwkv/model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
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
#include "weights/panels.hpp"

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
  pack_for_kernels(impl->file, "emb.weight");
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
  for (const NativeTensor& t : impl_->file.tensors) {
    out.push_back({t.name, dtype_name(t.dtype), t.shape, t.bytes, t.layout != WeightLayout::Rows});
  }
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

// Sequence and batched modes process at most this many tokens per pass, which bounds the
// activation memory (about 40 × C floats per token) while every weight matrix is
// still read once per chunk instead of once per token.
constexpr size_t kMaxChunk = 128;

enum class Logits { None, Last, All };

// Part of one item's tokens in a pass, and where its logits go: for Last, the piece
// holding the item's last token writes n_vocab values; for All, every token's.
struct Piece {
  std::span<const int32_t> tokens;
  State* state = nullptr;
  Logits want = Logits::None;
  float* logits = nullptr;
};

// The pieces' tokens through the model in one pass, each matrix read once for all of
// them; each piece continues its own state.
void run_pass(const Model::Impl& m, std::span<const Piece> pieces) {
  const ModelInfo& info = m.file.info;
  const uint32_t C = info.n_embd;
  const size_t V = info.n_vocab;
  thread_local std::vector<arch::Run> runs;
  thread_local std::vector<uint32_t> run_of_row;
  thread_local std::vector<float> x, normed, head_out;
  runs.clear();
  uint32_t T = 0;
  uint32_t wanted_rows = 0;
  for (const Piece& piece : pieces) {
    const auto n = static_cast<uint32_t>(piece.tokens.size());
    runs.push_back({T, n, piece.state});
    T += n;
    wanted_rows += piece.want == Logits::All ? n : piece.want == Logits::Last ? 1 : 0;
  }
  const arch::Pass pass = arch::make_pass(runs, run_of_row);
  x.resize(size_t(T) * C);
  normed.resize(size_t(T) * C);
  uint32_t row = 0;
  for (const Piece& piece : pieces) {
    for (int32_t token : piece.tokens) copy_row(m.embedding, static_cast<uint32_t>(token), normed.data() + size_t(row++) * C);
  }
  arch::layer_norm_rows(normed.data(), m.ln0, x.data(), T, C);
  std::visit([&](const auto& b) { arch::run_blocks(b, info, x.data(), pass); }, m.blocks);
  if (wanted_rows == 0) return;
  // Only the rows whose logits are wanted go through the head, gathered into one product.
  uint32_t gathered = 0;
  const Piece* only = nullptr;  // the one piece that wants logits, if only one does
  size_t wanting = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Piece& piece = pieces[i];
    if (piece.want == Logits::None) continue;
    const uint32_t last = runs[i].first + runs[i].rows - 1;
    const uint32_t first = piece.want == Logits::All ? runs[i].first : last;
    std::copy(x.data() + size_t(first) * C, x.data() + size_t(last + 1) * C, normed.data() + size_t(gathered) * C);
    gathered += last + 1 - first;
    only = &piece;
    ++wanting;
  }
  // x's rows are no longer needed: it takes the norm's output.
  arch::layer_norm_rows(normed.data(), m.ln_out, x.data(), wanted_rows, C);
  if (wanting == 1) {
    matmat(m.head, x.data(), only->logits, wanted_rows);
    return;
  }
  head_out.resize(wanted_rows * V);
  matmat(m.head, x.data(), head_out.data(), wanted_rows);
  const float* from = head_out.data();
  for (const Piece& piece : pieces) {
    const size_t values = piece.want == Logits::All ? piece.tokens.size() * V : piece.want == Logits::Last ? V : 0;
    std::copy(from, from + values, piece.logits);
    from += values;
  }
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
  forward_batch(std::array{BatchItem{one, &state, {}}});
}

void Model::forward(int32_t token, State& state, std::span<float> logits) const {
  if (logits.size() != info().n_vocab) {
    throw Error(fmt::format("logits buffer holds {} values, the model has n_vocab = {}", logits.size(), info().n_vocab));
  }
  const int32_t one[1] = {token};
  forward_batch(std::array{BatchItem{one, &state, logits}});
}

void Model::forward_sequence(std::span<const int32_t> tokens, State& state, std::span<float> logits) const {
  forward_batch(std::array{BatchItem{tokens, &state, logits}});
}

void Model::forward_batch(std::span<const BatchItem> items) const {
  const size_t V = info().n_vocab;
  // Everything is checked before any state changes.
  thread_local std::vector<const State*> states;  // kept: a decode step allocates nothing
  states.clear();
  for (size_t i = 0; i < items.size(); ++i) {
    const BatchItem& item = items[i];
    if (item.state == nullptr) throw Error(fmt::format("batch item {} has no state", i));
    const size_t n = item.tokens.size();
    if (!item.logits.empty() && !(n > 0 && (item.logits.size() == V || item.logits.size() == n * V))) {
      throw Error(fmt::format("logits buffer of batch item {} holds {} values: expected 0, n_vocab ({}) or {} tokens "
                              "x n_vocab",
                              i, item.logits.size(), V, n));
    }
    check_tokens(*this, item.tokens);
    check_state(*impl_, *this, *item.state);
    states.push_back(item.state);
  }
  std::sort(states.begin(), states.end());
  if (std::adjacent_find(states.begin(), states.end()) != states.end()) {
    throw Error("two batch items share one state: each sequence needs its own");
  }
  // Passes of at most kMaxChunk rows: items are taken in order, and one longer than the
  // room left continues in the next pass.
  thread_local std::vector<Piece> pieces;
  pieces.clear();
  size_t room = kMaxChunk;
  const auto flush = [&] {
    if (!pieces.empty()) run_pass(*impl_, pieces);
    pieces.clear();
    room = kMaxChunk;
  };
  for (const BatchItem& item : items) {
    const size_t n = item.tokens.size();
    const Logits want = item.logits.empty() ? Logits::None : item.logits.size() == V ? Logits::Last : Logits::All;
    for (size_t start = 0; start < n;) {
      if (room == 0) flush();
      const size_t take = std::min(room, n - start);
      const bool last_piece = start + take == n;
      Piece piece{item.tokens.subspan(start, take), item.state, Logits::None, nullptr};
      if (want == Logits::All) {
        piece.want = Logits::All;
        piece.logits = item.logits.data() + start * V;
      } else if (want == Logits::Last && last_piece) {
        piece.want = Logits::Last;
        piece.logits = item.logits.data();
      }
      pieces.push_back(piece);
      room -= take;
      start += take;
    }
  }
  flush();
}

}  // namespace rwkv
