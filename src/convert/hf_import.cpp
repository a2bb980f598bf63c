// Hugging Face repositories of RWKV models as the official checkpoints they were
// converted from. The weights are read from model.safetensors, its sharded form with
// model.safetensors.index.json, or pytorch_model.bin; the layout from config.json:
// - RWKV-4 (transformers' RwkvForCausalLM), RWKV-5 and RWKV-6 (the RWKV/v5-Eagle-*-HF and
//   RWKV/v6-Finch-*-HF repositories): the official names with "rwkv." in front,
//   emb → embeddings, ln0 → pre_ln, att → attention, ffn → feed_forward and
//   time_mix_{k,v,r,g} → time_mix_{key,value,receptance,gate}; the values as they are.
// - RWKV-7 (fla-hub's RWKV7ForCausalLM): fla's module names, each LoRA as a
//   Linear–activation–Linear whose weights are the official matrices transposed and
//   whose last bias is w0, a0 or v0.
#include "convert/hf_import.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>

#include "convert/pth_checkpoint.hpp"
#include "convert/safetensors_file.hpp"
#include "io/files.hpp"
#include "io/printable.hpp"
#include "rwkv/error.hpp"

namespace rwkv::convert {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxConfigBytes = 1 << 20;

// The repository's tensors under their own names.
SourceModel repository_tensors(const fs::path& dir, const std::string& shown) {
  SourceModel source;
  source.path = shown;
  if (fs::exists(dir / "model.safetensors") || fs::exists(dir / "model.safetensors.index.json")) {
    auto model = std::make_shared<const SafetensorsModel>(SafetensorsModel::open(dir.string()));
    source.format = "huggingface (safetensors)";
    for (const SafetensorsTensor& t : model->tensors()) {
      const SafetensorsTensor* tensor = &t;
      SourceTensor s{t.name, t.shape, t.dtype, [tensor] { return tensor->to_float(); }};
      s.lossless = t.dtype == "F16" ? DType::F16 : t.dtype == "BF16" ? DType::BF16 : DType::F32;
      source.tensors.push_back(std::move(s));
    }
    source.owner = model;
  } else if (fs::exists(dir / "pytorch_model.bin")) {
    auto ckpt = std::make_shared<const PthCheckpoint>(PthCheckpoint::open((dir / "pytorch_model.bin").string()));
    source.format = "huggingface (pytorch_model.bin)";
    for (const PthTensor& t : ckpt->tensors()) {
      SourceTensor s{t.name, t.shape, pth_dtype_name(t.dtype), [&t] { return t.to_float(); }};
      s.lossless = t.dtype == PthDType::Float16 ? DType::F16 : t.dtype == PthDType::BFloat16 ? DType::BF16 : DType::F32;
      source.tensors.push_back(std::move(s));
    }
    source.owner = ckpt;
  } else {
    throw Error(fmt::format("{}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin beside "
                            "config.json",
                            shown));
  }
  return source;
}

// RWKV-4, -5, -6: the official name of a transformers-style name, or "" if it has none.
std::string official_from_rwkv_hf(std::string name) {
  if (name.rfind("rwkv.", 0) == 0) {
    name = name.substr(5);
  } else if (name != "head.weight") {
    return "";
  }
  static const std::vector<std::pair<std::regex, std::string>> renames = {
      {std::regex(R"(^embeddings\.)"), "emb."},
      {std::regex(R"(^blocks\.0\.pre_ln\.)"), "blocks.0.ln0."},
      {std::regex(R"(^(blocks\.\d+)\.attention\.)"), "$1.att."},
      {std::regex(R"(^(blocks\.\d+)\.feed_forward\.)"), "$1.ffn."},
      {std::regex(R"(\.time_mix_key$)"), ".time_mix_k"},
      {std::regex(R"(\.time_mix_value$)"), ".time_mix_v"},
      {std::regex(R"(\.time_mix_receptance$)"), ".time_mix_r"},
      {std::regex(R"(\.time_mix_gate$)"), ".time_mix_g"},
  };
  for (const auto& [pattern, replacement] : renames) name = std::regex_replace(name, pattern, replacement);
  return name;
}

// RWKV-7 in fla-hub's layout: the official name and whether the matrix is transposed.
struct Fla {
  std::string official;
  bool transposed = false;
};

std::optional<Fla> official_from_fla(const std::string& name) {
  static const std::vector<std::tuple<std::regex, std::string, bool>> renames = {
      {std::regex(R"(^model\.embeddings\.weight$)"), "emb.weight", false},
      {std::regex(R"(^model\.layers\.0\.pre_norm\.(weight|bias)$)"), "blocks.0.ln0.<1>", false},
      {std::regex(R"(^model\.norm\.(weight|bias)$)"), "ln_out.<1>", false},
      {std::regex(R"(^lm_head\.weight$)"), "head.weight", false},
      {std::regex(R"(^model\.layers\.(\d+)\.attn_norm\.(weight|bias)$)"), "blocks.<1>.ln1.<2>", false},
      {std::regex(R"(^model\.layers\.(\d+)\.ffn_norm\.(weight|bias)$)"), "blocks.<1>.ln2.<2>", false},
      {std::regex(R"(^model\.layers\.(\d+)\.attn\.(x_[rwkvag]|k_k|k_a|r_k)$)"), "blocks.<1>.att.<2>", false},
      {std::regex(R"(^model\.layers\.(\d+)\.attn\.([wavg])_lora\.lora\.0\.weight$)"), "blocks.<1>.att.<2>1", true},
      {std::regex(R"(^model\.layers\.(\d+)\.attn\.([wavg])_lora\.lora\.2\.weight$)"), "blocks.<1>.att.<2>2", true},
      {std::regex(R"(^model\.layers\.(\d+)\.attn\.([wav])_lora\.lora\.2\.bias$)"), "blocks.<1>.att.<2>0", false},
      {std::regex(R"(^model\.layers\.(\d+)\.attn\.r_proj\.weight$)"), "blocks.<1>.att.receptance.weight", false},
      {std::regex(R"(^model\.layers\.(\d+)\.attn\.k_proj\.weight$)"), "blocks.<1>.att.key.weight", false},
      {std::regex(R"(^model\.layers\.(\d+)\.attn\.v_proj\.weight$)"), "blocks.<1>.att.value.weight", false},
      {std::regex(R"(^model\.layers\.(\d+)\.attn\.o_proj\.weight$)"), "blocks.<1>.att.output.weight", false},
      {std::regex(R"(^model\.layers\.(\d+)\.attn\.g_norm\.(weight|bias)$)"), "blocks.<1>.att.ln_x.<2>", false},
      {std::regex(R"(^model\.layers\.(\d+)\.ffn\.x_k$)"), "blocks.<1>.ffn.x_k", false},
      {std::regex(R"(^model\.layers\.(\d+)\.ffn\.(key|value)\.weight$)"), "blocks.<1>.ffn.<2>.weight", false},
  };
  for (const auto& [pattern, replacement, transpose] : renames) {
    std::smatch match;
    if (!std::regex_match(name, match, pattern)) continue;
    // <1>, <2>: the groups (std::regex's $nn would read "$20" as group 20).
    std::string official = replacement;
    for (size_t group = 1; group < match.size(); ++group) {
      const std::string mark = "<" + std::to_string(group) + ">";
      if (const size_t at = official.find(mark); at != std::string::npos) official.replace(at, mark.size(), match[group]);
    }
    return Fla{official, transpose};
  }
  return std::nullopt;
}

}  // namespace

SourceModel open_hf_source(const std::string& path) {
  const fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
  const std::string config_path = (dir / "config.json").string();
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(io::read_regular_file(config_path, "the Hugging Face config", kMaxConfigBytes));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: not JSON: {}", config_path, e.what()));
  }
  const std::string model_type = config.is_object() && config.contains("model_type") && config["model_type"].is_string()
                                     ? config["model_type"].get<std::string>()
                                     : "";
  SourceModel repo = repository_tensors(dir, path);
  SourceModel source;
  source.path = repo.path;
  source.format = repo.format;
  source.owner = repo.owner;
  if (model_type == "rwkv" || model_type == "rwkv5" || model_type == "rwkv6") {
    for (SourceTensor& t : repo.tensors) {
      std::string official = official_from_rwkv_hf(t.name);
      if (official.empty()) {
        throw Error(fmt::format("{}: tensor '{}' is not part of a {} model", path, io::printable(t.name), model_type));
      }
      t.name = std::move(official);
      source.tensors.push_back(std::move(t));
    }
  } else if (model_type == "rwkv7") {
    for (SourceTensor& t : repo.tensors) {
      const std::optional<Fla> fla = official_from_fla(t.name);
      if (!fla) {
        throw Error(fmt::format("{}: tensor '{}' is not part of fla-hub's RWKV-7 layout", path, io::printable(t.name)));
      }
      t.name = fla->official;
      if (fla->transposed) {
        if (t.shape.size() != 2) {
          throw Error(fmt::format("{}: tensor '{}' is not a matrix", path, io::printable(t.name)));
        }
        const int64_t rows = t.shape[0], cols = t.shape[1];
        t.shape = {cols, rows};
        t.values = [values = t.values, rows, cols] { return transposed(values(), rows, cols); };
      }
      source.tensors.push_back(std::move(t));
    }
  } else {
    throw Error(fmt::format("{}: model_type '{}', expected rwkv (RWKV-4), rwkv5, rwkv6 or rwkv7", config_path,
                            io::printable(model_type)));
  }
  // The World vocabulary beside the weights, where the repository has one.
  if (const fs::path vocab = dir / "rwkv_vocab_v20230424.txt"; fs::exists(vocab)) {
    source.tokenizer = TokenizerKind::World;
    source.vocabulary = io::read_regular_file(vocab.string(), "the World vocabulary", uint64_t(256) << 20);
  }
  return source;
}

}  // namespace rwkv::convert
