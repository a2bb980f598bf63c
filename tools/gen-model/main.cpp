// rwkv-gen-model: writes an official-format checkpoint (torch.save zip, bfloat16
// storages, as released files are) with the tensor names and shapes of a released
// RWKV model and seeded random weights, so that real-size speed and memory can be
// measured without downloading gigabytes. The weights are scaled so that activations
// stay finite through every layer; the text they produce is noise.
#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "args.hpp"
#include "convert/pth_writer.hpp"
#include "kernels/half.hpp"
#include "rwkv/error.hpp"

namespace {

using rwkv_cli::ArgParser;
using rwkv_cli::UsageError;

enum class Version { V4, V7 };

struct Preset {
  const char* name;
  const char* released_as;
  Version version;
  int64_t n_layer, n_embd, n_vocab, n_ffn;
  int64_t head_size;                       // v7
  int64_t lora_w, lora_a, lora_v, lora_g;  // v7: follow from C as in RWKV-v7/train_temp/src/model.py
};

// The most --n-layer takes: released models have at most 61 layers.
constexpr int64_t kMaxLayers = 1024;

constexpr Preset kPresets[] = {
    {"rwkv7-0.1b", "RWKV-x070-World-0.1B", Version::V7, 12, 768, 65536, 3072, 64, 64, 64, 32, 128},
    {"rwkv7-1.5b", "RWKV-x070-World-1.5B", Version::V7, 24, 2048, 65536, 8192, 64, 96, 96, 64, 256},
    {"rwkv4-169m", "RWKV-4-Pile-169M", Version::V4, 12, 768, 50277, 3072, 0, 0, 0, 0, 0},
};

// Values drawn uniformly from [low, high]; a uniform of half-width sqrt(3)·s has
// standard deviation s, which is all the scaling needs.
struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  float low, high;
};

Tensor with_std(std::string name, std::vector<int64_t> shape, double std_dev) {
  const auto half_width = static_cast<float>(std::sqrt(3.0) * std_dev);
  return {std::move(name), std::move(shape), -half_width, half_width};
}

// A Linear weight [out, in] applied to unit-scale inputs: outputs of unit scale, times gain.
Tensor linear(std::string name, int64_t out, int64_t in, double gain = 1.0) {
  return with_std(std::move(name), {out, in}, gain / std::sqrt(double(in)));
}

Tensor uniform(std::string name, std::vector<int64_t> shape, float low, float high) {
  return {std::move(name), std::move(shape), low, high};
}

std::vector<Tensor> common_start(const Preset& p) {
  const int64_t C = p.n_embd;
  return {with_std("emb.weight", {p.n_vocab, C}, 1.0), uniform("blocks.0.ln0.weight", {C}, 0.8f, 1.2f),
          uniform("blocks.0.ln0.bias", {C}, -0.1f, 0.1f)};
}

void add_layer_norms(std::vector<Tensor>& out, const std::string& b, int64_t C) {
  out.push_back(uniform(b + "ln1.weight", {C}, 0.8f, 1.2f));
  out.push_back(uniform(b + "ln1.bias", {C}, -0.1f, 0.1f));
  out.push_back(uniform(b + "ln2.weight", {C}, 0.8f, 1.2f));
  out.push_back(uniform(b + "ln2.bias", {C}, -0.1f, 0.1f));
}

void add_common_end(std::vector<Tensor>& out, const Preset& p) {
  out.push_back(uniform("ln_out.weight", {p.n_embd}, 0.8f, 1.2f));
  out.push_back(uniform("ln_out.bias", {p.n_embd}, -0.1f, 0.1f));
  out.push_back(linear("head.weight", p.n_vocab, p.n_embd));
}

// Residual branches are scaled down by the depth so that the residual stream grows
// slowly over many layers.
double branch_gain(const Preset& p) { return 1.0 / std::sqrt(double(p.n_layer)); }

std::vector<Tensor> v7_tensors(const Preset& p) {
  const int64_t C = p.n_embd, F = p.n_ffn, N = p.head_size, H = C / N;
  std::vector<Tensor> out = common_start(p);
  for (int64_t i = 0; i < p.n_layer; ++i) {
    const std::string b = fmt::format("blocks.{}.", i);
    add_layer_norms(out, b, C);
    for (const char* mix : {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g"}) {
      out.push_back(uniform(b + mix, {1, 1, C}, 0.0f, 1.0f));
    }
    // Decays exp(-e^-0.5 sigmoid(w)) between about 0.55 and 0.99: w0 as trained models have it.
    out.push_back(uniform(b + "att.w0", {1, 1, C}, -6.0f, 1.0f));
    out.push_back(linear(b + "att.w1", C, p.lora_w, 0.1));  // [C, D]: used as x @ w1
    out.push_back(linear(b + "att.w2", p.lora_w, C, 0.1));
    out.push_back(uniform(b + "att.a0", {1, 1, C}, -1.0f, 1.0f));
    out.push_back(linear(b + "att.a1", C, p.lora_a, 0.1));
    out.push_back(linear(b + "att.a2", p.lora_a, C, 0.1));
    out.push_back(uniform(b + "att.v0", {1, 1, C}, 0.5f, 1.5f));
    out.push_back(linear(b + "att.v1", C, p.lora_v, 0.1));
    out.push_back(linear(b + "att.v2", p.lora_v, C, 0.1));
    out.push_back(linear(b + "att.g1", C, p.lora_g, 0.5));
    out.push_back(linear(b + "att.g2", p.lora_g, C, 0.5));
    out.push_back(uniform(b + "att.k_k", {1, 1, C}, 0.5f, 1.0f));
    out.push_back(uniform(b + "att.k_a", {1, 1, C}, 0.5f, 1.5f));
    out.push_back(with_std(b + "att.r_k", {H, N}, 0.1));
    out.push_back(linear(b + "att.receptance.weight", C, C));
    out.push_back(linear(b + "att.key.weight", C, C));
    out.push_back(linear(b + "att.value.weight", C, C));
    out.push_back(linear(b + "att.output.weight", C, C, branch_gain(p)));
    out.push_back(uniform(b + "att.ln_x.weight", {C}, 0.8f, 1.2f));
    out.push_back(uniform(b + "att.ln_x.bias", {C}, -0.1f, 0.1f));
    out.push_back(uniform(b + "ffn.x_k", {1, 1, C}, 0.0f, 1.0f));
    out.push_back(linear(b + "ffn.key.weight", F, C));
    out.push_back(linear(b + "ffn.value.weight", C, F, branch_gain(p)));
  }
  add_common_end(out, p);
  return out;
}

std::vector<Tensor> v4_tensors(const Preset& p) {
  const int64_t C = p.n_embd, F = p.n_ffn;
  std::vector<Tensor> out = common_start(p);
  for (int64_t i = 0; i < p.n_layer; ++i) {
    const std::string b = fmt::format("blocks.{}.", i);
    add_layer_norms(out, b, C);
    // Decays exp(-e^d) from about 0.99 (d = -5) to 0.07 (d = 1), as trained v4 models span.
    out.push_back(uniform(b + "att.time_decay", {C}, -5.0f, 1.0f));
    out.push_back(uniform(b + "att.time_first", {C}, -1.0f, 1.0f));
    for (const char* mix : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r"}) {
      out.push_back(uniform(b + mix, {1, 1, C}, 0.0f, 1.0f));
    }
    out.push_back(linear(b + "att.key.weight", C, C));
    out.push_back(linear(b + "att.value.weight", C, C));
    out.push_back(linear(b + "att.receptance.weight", C, C));
    out.push_back(linear(b + "att.output.weight", C, C, branch_gain(p)));
    out.push_back(uniform(b + "ffn.time_mix_k", {1, 1, C}, 0.0f, 1.0f));
    out.push_back(uniform(b + "ffn.time_mix_r", {1, 1, C}, 0.0f, 1.0f));
    out.push_back(linear(b + "ffn.key.weight", F, C));
    out.push_back(linear(b + "ffn.receptance.weight", C, C));
    out.push_back(linear(b + "ffn.value.weight", C, F, branch_gain(p)));
  }
  add_common_end(out, p);
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
    const uint16_t v = rwkv::fp32_to_bf16(t.low + (t.high - t.low) * random.uniform01());
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

void write_model(const std::vector<Tensor>& tensors, uint64_t seed, const std::string& path) {
  namespace pw = rwkv::pth_writer;
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
  if (file == nullptr) throw rwkv::Error(fmt::format("{}: cannot create: {}", tmp, std::strerror(errno)));
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
      fmt::print(stderr, "\r{}/{} tensors, {:.0f} MB", ++done, tensors.size(), double(written) / 1e6);
      return bf16_values(*by_key.at(key), seed);
    });
  } catch (...) {
    std::fclose(file);
    std::remove(tmp.c_str());
    throw;
  }
  fmt::print(stderr, "\n");
  ok = std::fclose(file) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw rwkv::Error(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
  }
}

int run(int argc, char** argv) {
  std::string names;
  for (const Preset& p : kPresets) names += fmt::format("{}{} ({})", names.empty() ? "" : ", ", p.name, p.released_as);
  ArgParser args("gen-model", "--preset NAME --out FILE.pth [--seed N] [--n-layer N]",
                 "Writes a torch.save checkpoint (bfloat16) with the tensor names and shapes of a released RWKV\n"
                 "model and seeded random weights, for benchmarks. Presets: " + names + ".");
  args.program("rwkv-gen-model");
  args.option("preset", "NAME", "which released model's shapes")
      .option("out", "FILE", "output .pth (written to a temporary name, then renamed)")
      .option("seed", "N", "random seed", "1")
      .option("n-layer", "N", "override the number of layers (0 = the preset's)", "0");
  if (!args.parse(argc, argv)) return 0;
  const std::string name = args.get("preset");
  const Preset* preset = nullptr;
  for (const Preset& p : kPresets) {
    if (name == p.name) preset = &p;
  }
  if (preset == nullptr) throw UsageError(fmt::format("flag --preset: unknown preset '{}': expected one of {}", name, names));
  Preset p = *preset;
  const int64_t n_layer = args.get_int("n-layer", 0, kMaxLayers);
  if (n_layer > 0) p.n_layer = n_layer;
  const auto seed = static_cast<uint64_t>(args.get_int("seed", 0, INT64_MAX));
  const std::string out = args.get("out");
  write_model(p.version == Version::V7 ? v7_tensors(p) : v4_tensors(p), seed, out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc - 1, argv + 1);
  } catch (const UsageError& e) {
    fmt::print(stderr, "rwkv-gen-model: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "rwkv-gen-model: error: {}\n", e.what());
    return 1;
  }
}
