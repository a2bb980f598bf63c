// rwkv/random_checkpoint.hpp: the shapes of released models from the version's table
// (arch/spec.hpp), values drawn per tensor from a seeded generator, streamed into a
// torch.save zip by the writer the tests use (convert/pth_writer.hpp).
#include "rwkv/random_checkpoint.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "arch/spec.hpp"
#include "convert/pth_writer.hpp"
#include "kernels/half.hpp"
#include "rwkv/error.hpp"
#include "rwkv/model.hpp"

namespace rwkv {

namespace {

struct Preset {
  const char* name;
  const char* released_as;
  Arch arch;
  int64_t n_layer, n_embd, n_vocab, n_ffn;
  int64_t head_size;                       // v7
  int64_t lora_w, lora_a, lora_v, lora_g;  // v7: follow from C as in RWKV-v7/train_temp/src/model.py
};

constexpr Preset kPresets[] = {
    {"rwkv7-0.1b", "RWKV-x070-World-0.1B", Arch::V7_0, 12, 768, 65536, 3072, 64, 64, 64, 32, 128},
    {"rwkv7-1.5b", "RWKV-x070-World-1.5B", Arch::V7_0, 24, 2048, 65536, 8192, 64, 96, 96, 64, 256},
    {"rwkv4-169m", "RWKV-4-Pile-169M", Arch::V4, 12, 768, 50277, 3072, 0, 0, 0, 0, 0},
};

// Values drawn uniformly from [low, high]; a uniform of half-width sqrt(3)·s has
// standard deviation s, which is all the scaling needs.
struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  float low, high;
};

// How one official tensor's random values are drawn, by the tensor's name within its
// block. Values span what trained models hold, so activations stay finite.
struct Draw {
  const char* name;
  enum Kind { Uniform, Std, Linear } kind;
  double a, b;  // Uniform: [a, b]; Std: a; Linear: gain a, scaled by the depth when b != 0
};

constexpr Draw kDraws[] = {
    {"emb.weight", Draw::Std, 1.0, 0},
    {"head.weight", Draw::Linear, 1.0, 0},
    // Norms.
    {"ln0.weight", Draw::Uniform, 0.8, 1.2},
    {"ln0.bias", Draw::Uniform, -0.1, 0.1},
    {"ln1.weight", Draw::Uniform, 0.8, 1.2},
    {"ln1.bias", Draw::Uniform, -0.1, 0.1},
    {"ln2.weight", Draw::Uniform, 0.8, 1.2},
    {"ln2.bias", Draw::Uniform, -0.1, 0.1},
    {"ln_out.weight", Draw::Uniform, 0.8, 1.2},
    {"ln_out.bias", Draw::Uniform, -0.1, 0.1},
    {"att.ln_x.weight", Draw::Uniform, 0.8, 1.2},
    {"att.ln_x.bias", Draw::Uniform, -0.1, 0.1},
    // Residual branches (att.output, ffn.value) are scaled down by the depth so that
    // the residual stream grows slowly over many layers.
    {"att.key.weight", Draw::Linear, 1.0, 0},
    {"att.value.weight", Draw::Linear, 1.0, 0},
    {"att.receptance.weight", Draw::Linear, 1.0, 0},
    {"att.gate.weight", Draw::Linear, 1.0, 0},
    {"att.output.weight", Draw::Linear, 1.0, 1},
    {"ffn.key.weight", Draw::Linear, 1.0, 0},
    {"ffn.receptance.weight", Draw::Linear, 1.0, 0},
    {"ffn.value.weight", Draw::Linear, 1.0, 1},
    // Token-shift mixes.
    {"att.time_mix_k", Draw::Uniform, 0, 1},
    {"att.time_mix_v", Draw::Uniform, 0, 1},
    {"att.time_mix_r", Draw::Uniform, 0, 1},
    {"att.time_mix_g", Draw::Uniform, 0, 1},
    {"ffn.time_mix_k", Draw::Uniform, 0, 1},
    {"ffn.time_mix_r", Draw::Uniform, 0, 1},
    {"att.time_maa_x", Draw::Uniform, 0, 1},
    {"att.time_maa_w", Draw::Uniform, 0, 1},
    {"att.time_maa_k", Draw::Uniform, 0, 1},
    {"att.time_maa_v", Draw::Uniform, 0, 1},
    {"att.time_maa_r", Draw::Uniform, 0, 1},
    {"att.time_maa_g", Draw::Uniform, 0, 1},
    {"ffn.time_maa_k", Draw::Uniform, 0, 1},
    {"ffn.time_maa_r", Draw::Uniform, 0, 1},
    {"att.x_r", Draw::Uniform, 0, 1},
    {"att.x_w", Draw::Uniform, 0, 1},
    {"att.x_k", Draw::Uniform, 0, 1},
    {"att.x_v", Draw::Uniform, 0, 1},
    {"att.x_a", Draw::Uniform, 0, 1},
    {"att.x_g", Draw::Uniform, 0, 1},
    {"ffn.x_k", Draw::Uniform, 0, 1},
    // Decays exp(-e^d) from about 0.99 (d = -5) to 0.07 (d = 1), as trained models span.
    {"att.time_decay", Draw::Uniform, -5, 1},
    {"att.time_first", Draw::Uniform, -1, 1},
    {"att.time_faaaa", Draw::Uniform, -1, 1},
    // LoRA matrices [in, out], used as x @ W: small gains.
    {"att.time_maa_w1", Draw::Linear, 0.1, 0},
    {"att.time_maa_w2", Draw::Linear, 0.1, 0},
    {"att.time_decay_w1", Draw::Linear, 0.1, 0},
    {"att.time_decay_w2", Draw::Linear, 0.1, 0},
    // Decays exp(-e^-0.5 sigmoid(w)) between about 0.55 and 0.99: w0 as trained models have it.
    {"att.w0", Draw::Uniform, -6, 1},
    {"att.w1", Draw::Linear, 0.1, 0},
    {"att.w2", Draw::Linear, 0.1, 0},
    {"att.a0", Draw::Uniform, -1, 1},
    {"att.a1", Draw::Linear, 0.1, 0},
    {"att.a2", Draw::Linear, 0.1, 0},
    {"att.v0", Draw::Uniform, 0.5, 1.5},
    {"att.v1", Draw::Linear, 0.1, 0},
    {"att.v2", Draw::Linear, 0.1, 0},
    {"att.g1", Draw::Linear, 0.5, 0},
    {"att.g2", Draw::Linear, 0.5, 0},
    {"att.k_k", Draw::Uniform, 0.5, 1},
    {"att.k_a", Draw::Uniform, 0.5, 1.5},
    {"att.r_k", Draw::Std, 0.1, 0},
};

Tensor drawn(const std::string& name, const std::string& within_block, std::vector<int64_t> shape, const Preset& p) {
  for (const Draw& d : kDraws) {
    if (within_block != d.name) continue;
    double std_dev = d.a;
    if (d.kind == Draw::Uniform) return {name, std::move(shape), float(d.a), float(d.b)};
    // A Linear weight applied to unit-scale inputs along its last axis: outputs of unit scale, times gain.
    if (d.kind == Draw::Linear) std_dev = d.a / std::sqrt(double(shape.back())) / (d.b != 0 ? std::sqrt(double(p.n_layer)) : 1.0);
    const auto half_width = static_cast<float>(std::sqrt(3.0) * std_dev);
    return {name, std::move(shape), -half_width, half_width};
  }
  throw Error(fmt::format("random checkpoint: no value range for tensor '{}'", name));
}

// The official tensors of the preset's version, as the version's table lists them.
std::vector<Tensor> preset_tensors(const Preset& p) {
  ModelInfo info;
  info.arch = p.arch;
  info.n_layer = uint32_t(p.n_layer);
  info.n_embd = uint32_t(p.n_embd);
  info.n_vocab = uint32_t(p.n_vocab);
  info.n_ffn = uint32_t(p.n_ffn);
  info.head_size = uint32_t(p.head_size);
  info.n_head = p.head_size > 0 ? uint32_t(p.n_embd / p.head_size) : 0;
  arch::Sizes sizes = arch::Sizes::of(info);
  sizes.value[size_t(arch::Dim::LoraW)] = uint64_t(p.lora_w);
  sizes.value[size_t(arch::Dim::LoraA)] = uint64_t(p.lora_a);
  sizes.value[size_t(arch::Dim::LoraV)] = uint64_t(p.lora_v);
  sizes.value[size_t(arch::Dim::LoraG)] = uint64_t(p.lora_g);
  const arch::VersionSpec& spec = arch::version_spec(p.arch);
  std::vector<Tensor> out;
  auto add = [&](const arch::TensorSpec& t, uint32_t layer) {
    std::vector<int64_t> shape;
    for (uint64_t d : sizes.shape(arch::official_dims(t))) shape.push_back(int64_t(d));
    std::string within = t.official;
    if (within.rfind("blocks.0.", 0) == 0) within = within.substr(9);
    out.push_back(drawn(arch::official_name(t, layer), within, std::move(shape), p));
  };
  for (const arch::TensorSpec& t : spec.tensors) {
    if (t.where == arch::Where::Model) add(t, 0);
  }
  for (uint32_t i = 0; i < info.n_layer; ++i) {
    for (const arch::TensorSpec& t : spec.tensors) {
      if (arch::in_layer(t, i)) add(t, i);
    }
  }
  return out;
}

// splitmix64, seeded per tensor from the seed and the tensor's name, so that a
// tensor's values do not depend on the others.
class Random {
 public:
  Random(uint64_t seed, const std::string& name) : state_(seed) {
    for (char c : name) state_ = (state_ ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  }
  float uniform01() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }

 private:
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

int64_t numel(const Tensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  return n;
}

std::string bf16_values(const Tensor& t, uint64_t seed) {
  Random random(seed, t.name);
  const int64_t n = numel(t);
  std::string out(size_t(n) * 2, '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t v = fp32_to_bf16(t.low + (t.high - t.low) * random.uniform01());
    dst[2 * i] = static_cast<unsigned char>(v & 0xff);
    dst[2 * i + 1] = static_cast<unsigned char>(v >> 8);
  }
  return out;
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> stride(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) stride[i - 1] = stride[i] * shape[i];
  return stride;
}

void write_model(const std::vector<Tensor>& tensors, uint64_t seed, const std::string& path,
                 const RandomCheckpointOptions& options) {
  namespace pw = pth_writer;
  std::vector<pw::TensorSpec> specs;
  std::map<std::string, pw::StorageSpec> storages;
  std::vector<std::string> keys;
  std::map<std::string, const Tensor*> by_key;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    const std::string key = std::to_string(i);
    specs.push_back({t.name, key, t.shape, contiguous_strides(t.shape), 0});
    storages[key] = {"BFloat16Storage", numel(t), ""};
    keys.push_back(key);
    by_key[key] = &t;
  }
  const std::string tmp = path + ".tmp";
  std::FILE* file = std::fopen(tmp.c_str(), "wb");
  if (file == nullptr) throw Error(fmt::format("{}: cannot create: {}", tmp, std::strerror(errno)));
  bool ok = true;
  uint64_t written = 0;
  size_t done = 0;
  try {
    pw::ZipWriter zip(
        [&](std::string_view bytes) {
          ok = ok && std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
          written += bytes.size();
        },
        /*zip64=*/true);
    pw::write_checkpoint(zip, "archive", pw::state_dict_pickle(specs, storages), keys, [&](const std::string& key) {
      ++done;
      if (options.progress) options.progress(done, tensors.size(), written);
      return bf16_values(*by_key.at(key), seed);
    });
  } catch (...) {
    std::fclose(file);
    std::remove(tmp.c_str());
    throw;
  }
  ok = std::fclose(file) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
  }
}

}  // namespace

std::vector<CheckpointPreset> checkpoint_presets() {
  std::vector<CheckpointPreset> out;
  for (const Preset& p : kPresets) out.push_back({p.name, p.released_as});
  return out;
}

void write_random_checkpoint(const std::string& path, const RandomCheckpointOptions& options) {
  const Preset* preset = nullptr;
  for (const Preset& p : kPresets) {
    if (options.preset == p.name) preset = &p;
  }
  if (preset == nullptr) {
    std::string names;
    for (const Preset& p : kPresets) names += fmt::format("{}{}", names.empty() ? "" : ", ", p.name);
    throw Error(fmt::format("unknown preset '{}': expected one of {}", options.preset, names));
  }
  Preset p = *preset;
  if (options.n_layer > 0) p.n_layer = options.n_layer;
  write_model(preset_tensors(p), options.seed, path, options);
}

}  // namespace rwkv
