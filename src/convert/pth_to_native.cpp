#include "convert/pth_to_native.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "kernels/matvec.hpp"
#include "kernels/quant_blocks.hpp"
#include "io/printable.hpp"
#include "rwkv/error.hpp"
#include "weights/format.hpp"

namespace rwkv::convert {

namespace {

bool has_tensor_containing(const PthCheckpoint& ckpt, std::string_view part) {
  return std::any_of(ckpt.tensors().begin(), ckpt.tensors().end(),
                     [&](const PthTensor& t) { return t.name.find(part) != std::string::npos; });
}

std::vector<int64_t> squeezed(const std::vector<int64_t>& shape) {
  std::vector<int64_t> out;
  for (int64_t d : shape) {
    if (d != 1) out.push_back(d);
  }
  return out;
}

const PthTensor& require(const PthCheckpoint& ckpt, const std::string& name) {
  const PthTensor* t = ckpt.find(name);
  if (t == nullptr) throw Error(fmt::format("{}: missing tensor '{}'", ckpt.path(), name));
  return *t;
}

uint32_t layer_count(const PthCheckpoint& ckpt) {
  uint32_t n = 0;
  for (const PthTensor& t : ckpt.tensors()) {
    if (t.name.rfind("blocks.", 0) != 0) continue;
    const size_t dot = t.name.find('.', 7);
    const std::string index = t.name.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
    if (index.empty() || index.size() > 6 || !std::all_of(index.begin(), index.end(), ::isdigit)) {
      throw Error(fmt::format("{}: tensor '{}' has no layer number", ckpt.path(), io::printable(t.name)));
    }
    n = std::max<uint32_t>(n, static_cast<uint32_t>(std::stoul(index)) + 1);
  }
  return n;
}

Arch detect_arch(const PthCheckpoint& ckpt) {
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
  for (const PthTensor& t : ckpt.tensors()) {
    if (sample.size() < 6) sample.push_back(io::printable(t.name));
  }
  throw Error(fmt::format("{}: unknown architecture: the tensor names match no RWKV version (v4, 5.x, 6, 7); "
                          "first tensors: {}",
                          ckpt.path(), fmt::join(sample, ", ")));
}

}  // namespace

ModelInfo detect_model(const PthCheckpoint& ckpt, std::optional<TokenizerKind> tokenizer) {
  ModelInfo info;
  info.arch = detect_arch(ckpt);
  const PthTensor& emb = require(ckpt, "emb.weight");
  if (emb.shape.size() != 2) {
    throw Error(fmt::format("{}: tensor 'emb.weight' has shape [{}], expected [n_vocab, n_embd]", ckpt.path(),
                            fmt::join(emb.shape, ", ")));
  }
  info.n_vocab = static_cast<uint32_t>(emb.shape[0]);
  info.n_embd = static_cast<uint32_t>(emb.shape[1]);
  info.n_layer = layer_count(ckpt);
  if (info.n_layer == 0) throw Error(fmt::format("{}: no 'blocks.N.*' tensors", ckpt.path()));
  const PthTensor& ffn_key = require(ckpt, "blocks.0.ffn.key.weight");
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
                              ckpt.path(), heads_from, fmt::join(require(ckpt, heads_from).shape, ", "), info.n_embd));
    }
    info.n_head = static_cast<uint32_t>(shape[0]);
    info.head_size = info.n_embd / info.n_head;
  }

  if (tokenizer) {
    info.tokenizer = *tokenizer;
  } else if (info.n_vocab == 256) {
    info.tokenizer = TokenizerKind::Bytes;
  } else if (info.n_vocab == 65536) {
    info.tokenizer = TokenizerKind::World;
  } else if (info.n_vocab == 50277 || info.n_vocab == 50304) {
    info.tokenizer = TokenizerKind::NeoX;
  } else {
    throw Error(fmt::format("{}: cannot infer the tokenizer from n_vocab = {}; pass --tokenizer bytes|world|neox",
                            ckpt.path(), info.n_vocab));
  }
  return info;
}

namespace {

// Builds the list of native tensors, each with a recipe for its values, checking
// the checkpoint's shapes as it goes so that errors name the offending tensor.
class Plan {
 public:
  Plan(const PthCheckpoint& ckpt, const WeightTypes& types) : ckpt_(ckpt), types_(types) {}

  using Recipe = std::function<std::vector<float>()>;

  // A checkpoint tensor whose squeezed shape must equal `expected` (vectors may
  // carry leading 1s, as [1, 1, C] mixes do).
  const PthTensor& source(const std::string& name, const std::vector<int64_t>& expected) {
    const PthTensor& t = require(ckpt_, name);
    const bool ok = t.shape == expected || squeezed(t.shape) == squeezed(expected);
    if (!ok) {
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected [{}]", ckpt_.path(), name,
                              fmt::join(t.shape, ", "), fmt::join(expected, ", ")));
    }
    used_.insert(name);
    return t;
  }

  // Large matrices take the requested types; everything else stays float32 (stored_type).
  void add(const std::string& name, std::vector<uint64_t> shape, Recipe recipe) {
    const DType type = stored_type(name, shape.size(), types_);
    plan_.push_back({name, type, std::move(shape)});
    recipes_.push_back(std::move(recipe));
  }

  // A float32 vector of C values, transformed by `f` elementwise.
  void vector(const std::string& out, const std::string& in, const std::vector<int64_t>& expected,
              float (*f)(float) = nullptr) {
    const PthTensor& t = source(in, expected);
    add(out, {static_cast<uint64_t>(t.numel())}, [&t, f] {
      std::vector<float> v = t.to_float();
      if (f != nullptr) std::transform(v.begin(), v.end(), v.begin(), f);
      return v;
    });
  }
  void same_vector(const std::string& name, const std::vector<int64_t>& expected) { vector(name, name, expected); }
  // A float32 [H, N] tensor of per-head values, stored with its head shape so that a
  // header whose n_head and head_size disagree with the weights is refused at load.
  void head_vector(const std::string& out, const std::string& in, const ModelInfo& info) {
    const PthTensor& t = source(in, {info.n_head, info.head_size});
    add(out, {uint64_t(info.n_head), uint64_t(info.head_size)}, [&t] { return t.to_float(); });
  }

  // A [rows, cols] matrix stored as is (PyTorch Linear weights are already [out, in]).
  void matrix(const std::string& name, int64_t rows, int64_t cols) {
    const PthTensor& t = source(name, {rows, cols});
    add(name, {uint64_t(rows), uint64_t(cols)}, [&t] { return t.to_float(); });
  }
  // A checkpoint [in, out] LoRA matrix (used as x @ W) stored transposed, as [out, in].
  // LoRA matrices are small and sensitive (RWKV-NOTES), so they stay float32.
  void transposed(const std::string& name, int64_t in_dim) {
    const PthTensor& t = require(ckpt_, name);
    if (t.shape.size() != 2 || t.shape[0] != in_dim) {
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected [{}, *]", ckpt_.path(), name,
                              fmt::join(t.shape, ", "), in_dim));
    }
    used_.insert(name);
    const int64_t out_dim = t.shape[1];
    add(name, {uint64_t(out_dim), uint64_t(in_dim)}, [&t, in_dim, out_dim] {
      std::vector<float> v = t.to_float(), out(v.size());
      for (int64_t i = 0; i < in_dim; ++i) {
        for (int64_t o = 0; o < out_dim; ++o) out[o * in_dim + i] = v[i * out_dim + o];
      }
      return out;
    });
  }
  int64_t dim(const std::string& name, size_t axis) const {
    const PthTensor& t = require(ckpt_, name);
    if (axis >= t.shape.size()) {
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected at least {} dimensions", ckpt_.path(), name,
                              fmt::join(t.shape, ", "), axis + 1));
    }
    return t.shape[axis];
  }

  const PthCheckpoint& ckpt() const { return ckpt_; }
  const std::vector<TensorPlan>& plan() const { return plan_; }
  const Recipe& recipe(size_t i) const { return recipes_[i]; }
  std::vector<std::string> unused() const {
    std::vector<std::string> out;
    for (const PthTensor& t : ckpt_.tensors()) {
      if (!used_.count(t.name)) out.push_back(t.name);
    }
    return out;
  }

 private:
  const PthCheckpoint& ckpt_;
  WeightTypes types_;
  std::vector<TensorPlan> plan_;
  std::vector<Recipe> recipes_;
  std::set<std::string> used_;
};

std::string blk(uint32_t i, const char* suffix) { return fmt::format("blocks.{}.{}", i, suffix); }

float neg_exp(float x) { return -std::exp(x); }
float exp_neg_exp(float x) { return std::exp(-std::exp(x)); }
float exp_f(float x) { return std::exp(x); }

// Per-head values [H] (or per-channel [H, N]) broadcast to one value per channel, stored
// as [H, N] so that the head split is part of the tensor's shape.
void per_channel(Plan& p, const std::string& out, const std::string& in, const ModelInfo& info, float (*f)(float)) {
  const int64_t H = info.n_head, N = info.head_size;
  const PthTensor& t = require(p.ckpt(), in);
  const auto shape = squeezed(t.shape);
  const bool per_head = shape == std::vector<int64_t>{H} || (H == 1 && shape.empty());
  const PthTensor& src = per_head ? p.source(in, {H}) : p.source(in, {H, N});
  p.add(out, {uint64_t(H), uint64_t(N)}, [&src, f, per_head, H, N] {
    std::vector<float> v = src.to_float(), out(H * N);
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t n = 0; n < N; ++n) out[h * N + n] = v[per_head ? h : h * N + n];
    }
    if (f != nullptr) std::transform(out.begin(), out.end(), out.begin(), f);
    return out;
  });
}

void plan_common_head(Plan& p, const ModelInfo& info) {
  const int64_t C = info.n_embd, V = info.n_vocab;
  // ln0 stays a separate norm applied per token (one LayerNorm of C values) rather
  // than folded into the embedding, so a reduced-precision embedding keeps the
  // checkpoint's own values instead of rounding normalised ones a second time.
  p.matrix("emb.weight", V, C);
  p.same_vector("blocks.0.ln0.weight", {C});
  p.same_vector("blocks.0.ln0.bias", {C});
  p.same_vector("ln_out.weight", {C});
  p.same_vector("ln_out.bias", {C});
  p.matrix("head.weight", V, C);
}

void plan_layer_norms(Plan& p, uint32_t i, int64_t C) {
  for (const char* n : {"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias"}) p.same_vector(blk(i, n), {C});
}

float one_minus(float x) { return 1.0f - x; }

// The channel mix of v4, v5 and v6 (arch/blocks.hpp): one stored form for the three.
// v4/v5 checkpoints weigh the current token (time_mix), v6 the previous one (time_maa).
void plan_channel_mix(Plan& p, uint32_t i, int64_t C, int64_t F, Arch arch) {
  if (arch == Arch::V6_0) {
    p.same_vector(blk(i, "ffn.time_maa_k"), {1, 1, C});
    p.same_vector(blk(i, "ffn.time_maa_r"), {1, 1, C});
  } else {
    p.vector(blk(i, "ffn.time_maa_k"), blk(i, "ffn.time_mix_k"), {1, 1, C}, one_minus);
    p.vector(blk(i, "ffn.time_maa_r"), blk(i, "ffn.time_mix_r"), {1, 1, C}, one_minus);
  }
  p.matrix(blk(i, "ffn.key.weight"), F, C);
  p.matrix(blk(i, "ffn.value.weight"), C, F);
  p.matrix(blk(i, "ffn.receptance.weight"), C, C);
}

void plan_v4(Plan& p, const ModelInfo& info) {
  const int64_t C = info.n_embd, F = info.n_ffn;
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    plan_layer_norms(p, i, C);
    for (const char* n : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r"}) p.same_vector(blk(i, n), {1, 1, C});
    p.vector(blk(i, "att.log_decay"), blk(i, "att.time_decay"), {C}, neg_exp);
    p.vector(blk(i, "att.bonus"), blk(i, "att.time_first"), {C});
    for (const char* n : {"att.key.weight", "att.value.weight", "att.receptance.weight", "att.output.weight"}) {
      p.matrix(blk(i, n), C, C);
    }
    plan_channel_mix(p, i, C, F, info.arch);
  }
}

void plan_v5(Plan& p, const ModelInfo& info) {
  const int64_t C = info.n_embd, F = info.n_ffn;
  const bool gated = info.arch != Arch::V5_0;
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    plan_layer_norms(p, i, C);
    for (const char* n : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r"}) p.same_vector(blk(i, n), {1, 1, C});
    if (gated) p.same_vector(blk(i, "att.time_mix_g"), {1, 1, C});
    per_channel(p, blk(i, "att.decay"), blk(i, "att.time_decay"), info, exp_neg_exp);
    if (info.arch == Arch::V5_0) {
      per_channel(p, blk(i, "att.bonus"), blk(i, "att.time_first"), info, exp_f);
    } else {
      per_channel(p, blk(i, "att.bonus"), blk(i, "att.time_faaaa"), info, nullptr);
    }
    for (const char* n : {"att.key.weight", "att.value.weight", "att.receptance.weight", "att.output.weight"}) {
      p.matrix(blk(i, n), C, C);
    }
    if (gated) p.matrix(blk(i, "att.gate.weight"), C, C);
    p.same_vector(blk(i, "att.ln_x.weight"), {C});
    p.same_vector(blk(i, "att.ln_x.bias"), {C});
    plan_channel_mix(p, i, C, F, info.arch);
  }
}

void plan_v6(Plan& p, const ModelInfo& info) {
  const int64_t C = info.n_embd, F = info.n_ffn;
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    plan_layer_norms(p, i, C);
    for (const char* n : {"att.time_maa_x", "att.time_maa_w", "att.time_maa_k", "att.time_maa_v", "att.time_maa_r",
                          "att.time_maa_g", "att.time_decay"}) {
      p.same_vector(blk(i, n), {1, 1, C});
    }
    const std::string w1 = blk(i, "att.time_maa_w1"), w2 = blk(i, "att.time_maa_w2");
    const int64_t d_mix = p.dim(w1, 1) / 5;
    p.source(w1, {C, 5 * d_mix});
    p.transposed(w1, C);
    // [5, D, C] → five [C, D] matrices, each used as y = M x.
    const PthTensor& maa_w2 = p.source(w2, {5, d_mix, C});
    p.add(w2, {5, uint64_t(C), uint64_t(d_mix)}, [&maa_w2, d_mix, C] {
      std::vector<float> v = maa_w2.to_float(), out(v.size());
      for (int64_t m = 0; m < 5; ++m) {
        for (int64_t d = 0; d < d_mix; ++d) {
          for (int64_t c = 0; c < C; ++c) out[(m * C + c) * d_mix + d] = v[(m * d_mix + d) * C + c];
        }
      }
      return out;
    });
    const std::string dw1 = blk(i, "att.time_decay_w1"), dw2 = blk(i, "att.time_decay_w2");
    const int64_t d_decay = p.dim(dw1, 1);
    p.transposed(dw1, C);
    p.source(dw2, {d_decay, C});
    p.transposed(dw2, d_decay);
    p.head_vector(blk(i, "att.bonus"), blk(i, "att.time_faaaa"), info);
    for (const char* n : {"att.key.weight", "att.value.weight", "att.receptance.weight", "att.gate.weight",
                          "att.output.weight"}) {
      p.matrix(blk(i, n), C, C);
    }
    p.same_vector(blk(i, "att.ln_x.weight"), {C});
    p.same_vector(blk(i, "att.ln_x.bias"), {C});
    plan_channel_mix(p, i, C, F, info.arch);
  }
}

void plan_v7(Plan& p, const ModelInfo& info) {
  const int64_t C = info.n_embd, F = info.n_ffn;
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    plan_layer_norms(p, i, C);
    for (const char* n : {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g", "att.w0", "att.a0",
                          "att.k_k", "att.k_a"}) {
      p.same_vector(blk(i, n), {1, 1, C});
    }
    // Layer 0 defines v_first; its v0/v1/v2, where a checkpoint has them, are unused.
    std::vector<std::pair<const char*, const char*>> loras = {{"att.w1", "att.w2"}, {"att.a1", "att.a2"},
                                                              {"att.g1", "att.g2"}};
    if (i > 0) {
      p.same_vector(blk(i, "att.v0"), {1, 1, C});
      loras.push_back({"att.v1", "att.v2"});
    }
    for (auto [down, up] : loras) {
      const int64_t d = p.dim(blk(i, down), 1);
      p.source(blk(i, down), {C, d});
      p.transposed(blk(i, down), C);
      p.source(blk(i, up), {d, C});
      p.transposed(blk(i, up), d);
    }
    p.head_vector(blk(i, "att.r_k"), blk(i, "att.r_k"), info);
    for (const char* n : {"att.key.weight", "att.value.weight", "att.receptance.weight", "att.output.weight"}) {
      p.matrix(blk(i, n), C, C);
    }
    p.same_vector(blk(i, "att.ln_x.weight"), {C});
    p.same_vector(blk(i, "att.ln_x.bias"), {C});
    p.same_vector(blk(i, "ffn.x_k"), {1, 1, C});
    p.matrix(blk(i, "ffn.key.weight"), F, C);
    p.matrix(blk(i, "ffn.value.weight"), C, F);
  }
}

}  // namespace

ConvertResult convert_pth(const std::string& input, const std::string& output, const ConvertOptions& options) {
  const PthCheckpoint ckpt = PthCheckpoint::open(input);
  ConvertResult result;
  result.info = detect_model(ckpt, options.tokenizer);
  const ModelInfo& info = result.info;
  Plan plan(ckpt, options.types);
  plan_common_head(plan, info);
  switch (info.arch) {
    case Arch::V4: plan_v4(plan, info); break;
    case Arch::V5_0:
    case Arch::V5_1:
    case Arch::V5_2: plan_v5(plan, info); break;
    case Arch::V6_0: plan_v6(plan, info); break;
    case Arch::V7_0: plan_v7(plan, info); break;
  }
  result.ignored_tensors = plan.unused();
  const size_t total = plan.plan().size();
  write_native_file(output, info, plan.plan(), [&](size_t i) {
    std::vector<float> values = plan.recipe(i)();
    for (float v : values) {
      if (!std::isfinite(v)) {
        throw Error(fmt::format("{}: tensor '{}' holds a non-finite value after conversion", input, plan.plan()[i].name));
      }
    }
    const TensorPlan& t = plan.plan()[i];
    auto bytes = quantize_rows(values.data(), values.size() / t.shape.back(), t.shape.back(), t.dtype);
    if (options.progress) options.progress(i + 1, total);
    return bytes;
  });
  return result;
}

}  // namespace rwkv::convert
