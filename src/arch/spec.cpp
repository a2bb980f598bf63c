#include "arch/spec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace rwkv::arch {

const char* dim_name(Dim d) {
  switch (d) {
    case Dim::One: return "1";
    case Dim::Five: return "5";
    case Dim::C: return "n_embd";
    case Dim::F: return "n_ffn";
    case Dim::V: return "n_vocab";
    case Dim::H: return "n_head";
    case Dim::N: return "head_size";
    case Dim::LoraMix: return "D_mix";
    case Dim::LoraMix5: return "5*D_mix";
    case Dim::LoraDecay: return "D_decay";
    case Dim::LoraW: return "D_w";
    case Dim::LoraA: return "D_a";
    case Dim::LoraV: return "D_v";
    case Dim::LoraG: return "D_g";
    case Dim::Count: break;
  }
  return "?";
}

Sizes Sizes::of(const ModelInfo& info) {
  Sizes s;
  s.value[size_t(Dim::One)] = 1;
  s.value[size_t(Dim::Five)] = 5;
  s.value[size_t(Dim::C)] = info.n_embd;
  s.value[size_t(Dim::F)] = info.n_ffn;
  s.value[size_t(Dim::V)] = info.n_vocab;
  s.value[size_t(Dim::H)] = info.n_head;
  s.value[size_t(Dim::N)] = info.head_size;
  return s;
}

uint64_t Sizes::product(const std::vector<Dim>& dims) const {
  uint64_t n = 1;
  for (Dim d : dims) {
    if ((*this)[d] == 0) throw std::logic_error(std::string("rwkv: size ") + dim_name(d) + " used before it is known");
    n *= (*this)[d];
  }
  return n;
}

std::vector<uint64_t> Sizes::shape(const std::vector<Dim>& dims) const {
  std::vector<uint64_t> out;
  for (Dim d : dims) out.push_back(product({d}));
  return out;
}

bool Sizes::unify(const std::vector<Dim>& dims, const std::vector<uint64_t>& actual) {
  if (dims.size() != actual.size()) return false;
  Sizes fixed = *this;
  for (size_t i = 0; i < dims.size(); ++i) {
    const Dim d = dims[i];
    if (d == Dim::LoraMix5) {
      if (actual[i] == 0 || actual[i] % 5 != 0) return false;
      const uint64_t mix = actual[i] / 5;
      if (fixed[Dim::LoraMix] == 0) fixed.value[size_t(Dim::LoraMix)] = mix;
      fixed.value[size_t(Dim::LoraMix5)] = 5 * fixed[Dim::LoraMix];
    }
    if (fixed[d] == 0) {
      // Only LoRA sizes are learnt from the weights; a zero header size is never matched.
      if (d < Dim::LoraMix || actual[i] == 0 || actual[i] > UINT32_MAX) return false;
      fixed.value[size_t(d)] = actual[i];
      if (d == Dim::LoraMix) fixed.value[size_t(Dim::LoraMix5)] = 5 * actual[i];
    }
    if (fixed[d] != actual[i]) return false;
  }
  *this = fixed;
  return true;
}

std::string describe_shape(const std::vector<Dim>& dims, const Sizes& sizes) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) out += ", ";
    out += sizes[dims[i]] != 0 ? std::to_string(sizes[dims[i]]) : std::string(dim_name(dims[i]));
  }
  return out + "]";
}

float apply(ValueMap map, float x) {
  switch (map) {
    case ValueMap::None: return x;
    case ValueMap::OneMinus: return 1.0f - x;
    case ValueMap::NegExp: return -std::exp(x);
    case ValueMap::ExpNegExp: return std::exp(-std::exp(x));
    case ValueMap::Exp: return std::exp(x);
  }
  return x;
}

bool in_layer(const TensorSpec& t, uint32_t layer) {
  return t.where == Where::EveryLayer || (t.where == Where::AfterFirstLayer && layer > 0);
}

std::string native_name(const TensorSpec& t, uint32_t layer) {
  return t.where == Where::Model ? std::string(t.name) : fmt::format("blocks.{}.{}", layer, t.name);
}

std::string official_name(const TensorSpec& t, uint32_t layer) {
  return t.where == Where::Model ? std::string(t.official) : fmt::format("blocks.{}.{}", layer, t.official);
}

std::vector<Dim> official_dims(const TensorSpec& t) {
  switch (t.layout) {
    case Layout::AsIs:
    case Layout::HeadBroadcast: return t.shape;
    case Layout::Transposed: return {t.shape.rbegin(), t.shape.rend()};
    case Layout::SplitTransposed: return {t.shape[0], t.shape[2], t.shape[1]};
  }
  return t.shape;
}

std::vector<TensorSpec> common_tensors() {
  // ln0 stays a separate norm applied per token (one LayerNorm of C values) rather
  // than folded into the embedding, so a reduced-precision embedding keeps the
  // checkpoint's own values instead of rounding normalised ones a second time.
  return {
      {"emb.weight", Where::Model, {Dim::V, Dim::C}, "emb.weight", Layout::AsIs, ValueMap::None, true},
      {"blocks.0.ln0.weight", Where::Model, {Dim::C}, "blocks.0.ln0.weight"},
      {"blocks.0.ln0.bias", Where::Model, {Dim::C}, "blocks.0.ln0.bias"},
      {"ln_out.weight", Where::Model, {Dim::C}, "ln_out.weight"},
      {"ln_out.bias", Where::Model, {Dim::C}, "ln_out.bias"},
      {"head.weight", Where::Model, {Dim::V, Dim::C}, "head.weight", Layout::AsIs, ValueMap::None, true},
      {"ln1.weight", Where::EveryLayer, {Dim::C}, "ln1.weight"},
      {"ln1.bias", Where::EveryLayer, {Dim::C}, "ln1.bias"},
      {"ln2.weight", Where::EveryLayer, {Dim::C}, "ln2.weight"},
      {"ln2.bias", Where::EveryLayer, {Dim::C}, "ln2.bias"},
  };
}

std::vector<TensorSpec> shared_channel_mix_tensors(bool official_time_mix) {
  // v4/v5 checkpoints weigh the current token (time_mix), v6 the previous one
  // (time_maa = 1 - time_mix): stored as v6's, the three share one channel mix.
  const ValueMap map = official_time_mix ? ValueMap::OneMinus : ValueMap::None;
  return {
      {"ffn.time_maa_k", Where::EveryLayer, {Dim::C}, official_time_mix ? "ffn.time_mix_k" : "ffn.time_maa_k",
       Layout::AsIs, map},
      {"ffn.time_maa_r", Where::EveryLayer, {Dim::C}, official_time_mix ? "ffn.time_mix_r" : "ffn.time_maa_r",
       Layout::AsIs, map},
      {"ffn.key.weight", Where::EveryLayer, {Dim::F, Dim::C}, "ffn.key.weight", Layout::AsIs, ValueMap::None, true},
      {"ffn.value.weight", Where::EveryLayer, {Dim::C, Dim::F}, "ffn.value.weight", Layout::AsIs, ValueMap::None,
       true},
      {"ffn.receptance.weight", Where::EveryLayer, {Dim::C, Dim::C}, "ffn.receptance.weight", Layout::AsIs,
       ValueMap::None, true},
  };
}

std::vector<ScratchBuffer> shared_channel_mix_scratch() {
  return {{"ffn.kx", {Dim::C}}, {"ffn.rx", {Dim::C}}, {"ffn.r", {Dim::C}}, {"ffn.k", {Dim::F}}, {"ffn.v", {Dim::C}}};
}

const VersionSpec& version_spec(Arch arch) {
  switch (arch) {
    case Arch::V4: return v4_spec();
    case Arch::V5_0:
    case Arch::V5_1:
    case Arch::V5_2: return v5_spec(arch);
    case Arch::V6_0: return v6_spec();
    case Arch::V7_0: return v7_spec();
  }
  throw std::logic_error("rwkv: unknown architecture");
}

StateLayout::StateLayout(const VersionSpec& spec, const Sizes& sizes) {
  for (const StateSlot& s : spec.state) {
    const auto size = static_cast<uint32_t>(sizes.product(s.size));
    slots_.push_back({s.name, floats_, size, s.initial});
    floats_ += size;
  }
}

uint32_t StateLayout::offset(const char* name) const {
  for (const Slot& s : slots_) {
    if (std::strcmp(s.name, name) == 0) return s.offset;
  }
  throw std::logic_error(std::string("rwkv: no state slot named ") + name);
}

void StateLayout::init(float* layer_state) const {
  for (const Slot& s : slots_) std::fill(layer_state + s.offset, layer_state + s.offset + s.size, s.initial);
}

}  // namespace rwkv::arch
