#include "convert/to_native.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "arch/spec.hpp"
#include "convert/pth_checkpoint.hpp"
#include "io/printable.hpp"
#include "kernels/matvec.hpp"
#include "kernels/quant_blocks.hpp"
#include "rwkv/error.hpp"
#include "rwkv/tokenizer.hpp"
#include "weights/format.hpp"

namespace rwkv::convert {

int64_t SourceTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> transposed(const std::vector<float>& values, int64_t rows, int64_t cols) {
  std::vector<float> out(values.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = values[r * cols + c];
  }
  return out;
}

const SourceTensor* SourceModel::find(std::string_view name) const {
  for (const SourceTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

SourceModel open_pth_source(const std::string& path) {
  auto ckpt = std::make_shared<const PthCheckpoint>(PthCheckpoint::open(path));
  SourceModel source;
  source.path = path;
  source.format = "pth";
  for (const PthTensor& t : ckpt->tensors()) {
    SourceTensor s{t.name, t.shape, pth_dtype_name(t.dtype), [&t] { return t.to_float(); }};
    s.lossless = t.dtype == PthDType::Float16 ? DType::F16 : t.dtype == PthDType::BFloat16 ? DType::BF16 : DType::F32;
    source.tensors.push_back(std::move(s));
  }
  source.owner = ckpt;
  return source;
}

namespace {

bool has_tensor_containing(const SourceModel& ckpt, std::string_view part) {
  return std::any_of(ckpt.tensors.begin(), ckpt.tensors.end(),
                     [&](const SourceTensor& t) { return t.name.find(part) != std::string::npos; });
}


const SourceTensor& require(const SourceModel& ckpt, const std::string& name) {
  const SourceTensor* t = ckpt.find(name);
  if (t == nullptr) throw Error(fmt::format("{}: missing tensor '{}'", ckpt.path, name));
  return *t;
}

uint32_t layer_count(const SourceModel& ckpt) {
  uint32_t n = 0;
  for (const SourceTensor& t : ckpt.tensors) {
    if (t.name.rfind("blocks.", 0) != 0) continue;
    const size_t dot = t.name.find('.', 7);
    const std::string index = t.name.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
    if (index.empty() || index.size() > 6 || !std::all_of(index.begin(), index.end(), ::isdigit)) {
      throw Error(fmt::format("{}: tensor '{}' has no layer number", ckpt.path, io::printable(t.name)));
    }
    n = std::max<uint32_t>(n, static_cast<uint32_t>(std::stoul(index)) + 1);
  }
  return n;
}

Arch detect_arch(const SourceModel& ckpt) {
  if (has_tensor_containing(ckpt, ".att.r_k") || has_tensor_containing(ckpt, ".att.x_r")) return Arch::V7_0;
  if (has_tensor_containing(ckpt, "time_maa")) return Arch::V6_0;
  if (has_tensor_containing(ckpt, "ln_x")) {
    if (!has_tensor_containing(ckpt, "gate.weight")) return Arch::V5_0;
    // Not squeezed: a model with one head still has a [1, N] per-channel decay.
    const auto& shape = require(ckpt, "blocks.0.att.time_decay").shape;
    return (shape.size() > 1 && shape[1] > 1) ? Arch::V5_2 : Arch::V5_1;
  }
  if (ckpt.find("blocks.0.att.time_decay") && ckpt.find("blocks.0.att.time_first")) return Arch::V4;
  std::vector<std::string> sample;
  for (const SourceTensor& t : ckpt.tensors) {
    if (sample.size() < 6) sample.push_back(io::printable(t.name));
  }
  throw Error(fmt::format("{}: unknown architecture: the tensor names match no RWKV version (v4, 5.x, 6, 7); "
                          "first tensors: {}",
                          ckpt.path, fmt::join(sample, ", ")));
}

}  // namespace

ModelInfo detect_model(const SourceModel& ckpt, std::optional<TokenizerKind> tokenizer) {
  ModelInfo info;
  info.arch = detect_arch(ckpt);
  const SourceTensor& emb = require(ckpt, "emb.weight");
  if (emb.shape.size() != 2) {
    throw Error(fmt::format("{}: tensor 'emb.weight' has shape [{}], expected [n_vocab, n_embd]", ckpt.path,
                            fmt::join(emb.shape, ", ")));
  }
  info.n_vocab = static_cast<uint32_t>(emb.shape[0]);
  info.n_embd = static_cast<uint32_t>(emb.shape[1]);
  info.n_layer = layer_count(ckpt);
  if (info.n_layer == 0) throw Error(fmt::format("{}: no 'blocks.N.*' tensors", ckpt.path));
  const SourceTensor& ffn_key = require(ckpt, "blocks.0.ffn.key.weight");
  info.n_ffn = static_cast<uint32_t>(ffn_key.shape.empty() ? 0 : ffn_key.shape[0]);

  std::string heads_from;
  switch (info.arch) {
    case Arch::V4: break;
    case Arch::V5_0:
    case Arch::V5_1:
    case Arch::V5_2: heads_from = "blocks.0.att.time_decay"; break;
    case Arch::V6_0: heads_from = "blocks.0.att.time_faaaa"; break;
    case Arch::V7_0: heads_from = "blocks.0.att.r_k"; break;
  }
  if (!heads_from.empty()) {
    const auto& shape = require(ckpt, heads_from).shape;
    if (shape.empty() || shape[0] <= 0 || info.n_embd % shape[0] != 0) {
      throw Error(fmt::format("{}: tensor '{}' has shape [{}]: its first dimension must be a head count dividing "
                              "n_embd = {}",
                              ckpt.path, heads_from, fmt::join(require(ckpt, heads_from).shape, ", "), info.n_embd));
    }
    info.n_head = static_cast<uint32_t>(shape[0]);
    info.head_size = info.n_embd / info.n_head;
  }

  if (tokenizer) {
    info.tokenizer = *tokenizer;
  } else if (ckpt.tokenizer) {
    info.tokenizer = *ckpt.tokenizer;
  } else if (info.n_vocab == 256) {
    info.tokenizer = TokenizerKind::Bytes;
  } else if (info.n_vocab == 65536) {
    info.tokenizer = TokenizerKind::World;
  } else if (info.n_vocab == 50277 || info.n_vocab == 50304) {
    info.tokenizer = TokenizerKind::NeoX;
  } else {
    throw Error(fmt::format("{}: cannot infer the tokenizer from n_vocab = {}; pass --tokenizer bytes|world|neox",
                            ckpt.path, info.n_vocab));
  }
  return info;
}

namespace {

using arch::Dim;
using arch::Layout;
using arch::Sizes;
using arch::TensorSpec;
using arch::Where;

std::vector<uint64_t> unsigned_shape(const std::vector<int64_t>& shape) {
  std::vector<uint64_t> out;
  for (int64_t d : shape) out.push_back(d < 0 ? 0 : uint64_t(d));
  return out;
}

DType type_for(const TensorSpec& t, const WeightTypes& types, const SourceTensor& src) {
  if (!t.matrix) {
    const bool half = (src.lossless == DType::F16 || src.lossless == DType::BF16) && !src.lossless_by_convention;
    return t.source_half && half ? src.lossless : DType::F32;
  }
  if (std::strcmp(t.name, "emb.weight") == 0) return types.embedding;
  if (std::strcmp(t.name, "head.weight") == 0) return types.head;
  return types.matrices;
}

// The native values of `t` from its official tensor `src` (official_shape: its shape
// as matched against the table; per_head: an [H] tensor broadcast over each head).
std::vector<float> native_values(const TensorSpec& t, const SourceTensor& src, const std::vector<uint64_t>& official,
                                 bool per_head, const Sizes& sizes) {
  std::vector<float> v = src.values();
  std::vector<float> out;
  switch (t.layout) {
    case Layout::AsIs: out = std::move(v); break;
    case Layout::Transposed: {
      const uint64_t in = official[0], o = official[1];
      out.resize(v.size());
      for (uint64_t i = 0; i < in; ++i) {
        for (uint64_t j = 0; j < o; ++j) out[j * in + i] = v[i * o + j];
      }
      break;
    }
    case Layout::HeadBroadcast: {
      const uint64_t H = sizes[Dim::H], N = sizes[Dim::N];
      out.resize(H * N);
      for (uint64_t h = 0; h < H; ++h) {
        for (uint64_t n = 0; n < N; ++n) out[h * N + n] = v[per_head ? h : h * N + n];
      }
      break;
    }
    case Layout::SplitTransposed: {
      const uint64_t K = official[0], D = official[1], C = official[2];
      out.resize(v.size());
      for (uint64_t m = 0; m < K; ++m) {
        for (uint64_t d = 0; d < D; ++d) {
          for (uint64_t c = 0; c < C; ++c) out[(m * C + c) * D + d] = v[(m * D + d) * C + c];
        }
      }
      break;
    }
  }
  if (t.map != arch::ValueMap::None && !src.mapped) {
    for (float& x : out) x = arch::apply(t.map, x);
  }
  return out;
}

struct PlannedTensor {
  TensorPlan plan;
  const TensorSpec* spec;
  const SourceTensor* source;
  std::vector<uint64_t> official;
  bool per_head;
  Sizes sizes;
};

// Matches every tensor of the version's table against the source, in the table's
// order (the model's own tensors, then layer by layer), learning LoRA sizes as it goes
// and naming the first tensor that is missing or has the wrong shape.
std::vector<PlannedTensor> plan_tensors(const SourceModel& source, const ModelInfo& info, const WeightTypes& types,
                                        std::set<std::string>& used) {
  const arch::VersionSpec& spec = arch::version_spec(info.arch);
  std::vector<PlannedTensor> out;
  auto plan_one = [&](const TensorSpec& t, uint32_t layer, Sizes& sizes) {
    const std::string name = arch::official_name(t, layer);
    const SourceTensor& src = require(source, name);
    const std::vector<uint64_t> actual = unsigned_shape(src.shape);
    const std::vector<Dim> dims = arch::official_dims(t);
    std::vector<uint64_t> squeezed_actual;
    for (uint64_t d : actual) {
      if (d != 1) squeezed_actual.push_back(d);
    }
    bool per_head = false;
    bool ok = sizes.unify(dims, actual);
    if (!ok && dims.size() == 1) {
      // Vectors may carry leading 1s in checkpoints ([1, 1, C]).
      ok = sizes.unify(dims, squeezed_actual) || (sizes[dims[0]] == 1 && squeezed_actual.empty());
    }
    if (!ok && t.layout == Layout::HeadBroadcast) {
      // Per head: [H] (or nothing left once squeezed, for one head); per channel: [H, N].
      per_head = squeezed_actual == std::vector<uint64_t>{sizes[Dim::H]} || (sizes[Dim::H] == 1 && squeezed_actual.empty());
      ok = per_head || squeezed_actual == sizes.shape(dims);
    }
    if (!ok) {
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected {}", source.path, name,
                              fmt::join(src.shape, ", "), arch::describe_shape(dims, sizes)));
    }
    used.insert(name);
    const std::string native = arch::native_name(t, layer);
    out.push_back({{native, type_for(t, types, src), sizes.shape(t.shape)}, &t, &src, sizes.shape(dims), per_head, sizes});
  };
  Sizes model_sizes = Sizes::of(info);
  for (const TensorSpec& t : spec.tensors) {
    if (t.where == Where::Model) plan_one(t, 0, model_sizes);
  }
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    Sizes layer_sizes = Sizes::of(info);
    for (const TensorSpec& t : spec.tensors) {
      if (arch::in_layer(t, i)) plan_one(t, i, layer_sizes);
    }
  }
  return out;
}

}  // namespace

namespace {

// The narrowest type that holds the values of both a and b exactly.
DType widest(DType a, DType b) {
  if (a == b) return a;
  if (a == DType::F32 || b == DType::F32) return DType::F32;
  const bool a_half = a == DType::F16 || a == DType::BF16, b_half = b == DType::F16 || b == DType::BF16;
  if (a_half && b_half) return DType::F32;  // f16 and bf16 each hold values the other cannot
  if (a_half) return a;
  if (b_half) return b;
  return DType::F16;  // two different block types
}

}  // namespace

WeightTypes lossless_types(const SourceModel& source) {
  WeightTypes types;
  std::optional<DType> matrices;
  for (const SourceTensor& t : source.tensors) {
    if (t.name == "emb.weight") {
      types.embedding = t.lossless;
    } else if (t.name == "head.weight") {
      types.head = t.lossless;
    } else if (t.shape.size() == 2 && t.name.ends_with(".weight")) {
      matrices = matrices ? widest(*matrices, t.lossless) : t.lossless;
    }
  }
  types.matrices = matrices.value_or(DType::F32);
  return types;
}

ConvertResult convert_source(const SourceModel& source, const std::string& output, const ConvertOptions& options) {
  ConvertResult result;
  result.info = detect_model(source, options.tokenizer);
  const ModelInfo& info = result.info;
  std::set<std::string> used;
  const std::vector<PlannedTensor> planned = plan_tensors(source, info, options.types, used);
  for (const SourceTensor& t : source.tensors) {
    if (!used.count(t.name)) result.ignored_tensors.push_back(t.name);
  }
  std::vector<TensorPlan> plan;
  for (const PlannedTensor& p : planned) plan.push_back(p.plan);
  const size_t total = plan.size();
  std::string_view vocabulary;
  if (info.tokenizer == TokenizerKind::World) vocabulary = source.vocabulary;
  if (!vocabulary.empty()) (void)load_world_tokenizer_text(source.path + " (its vocabulary)", vocabulary);
  write_native_file(output, info, plan, [&](size_t i) {
    const PlannedTensor& p = planned[i];
    const TensorPlan& t = p.plan;
    if (options.progress) options.progress(i + 1, total);
    // A Q8_0 source matrix stored as q8_0 in the same layout is kept bit for bit.
    const bool same_values = p.spec->layout == Layout::AsIs && p.spec->map == arch::ValueMap::None;
    if (t.dtype == DType::Q8_0 && same_values && p.source->q8_0_rows) return p.source->q8_0_rows();
    std::vector<float> values = native_values(*p.spec, *p.source, p.official, p.per_head, p.sizes);
    for (float v : values) {
      if (!std::isfinite(v)) {
        throw Error(fmt::format("{}: tensor '{}' holds a non-finite value after conversion", source.path, t.name));
      }
    }
    return quantize_rows(values.data(), values.size() / t.shape.back(), t.shape.back(), t.dtype);
  }, vocabulary);
  return result;
}

ConvertResult convert_pth(const std::string& input, const std::string& output, const ConvertOptions& options) {
  return convert_source(open_pth_source(input), output, options);
}

}  // namespace rwkv::convert
