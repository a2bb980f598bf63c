// llama.cpp's GGUF files of RWKV-6 and RWKV-7 as the official checkpoints they were
// converted from. llama.cpp's converter (convert_hf_to_gguf.py, from the Hugging Face
// layouts) renames every tensor, stacks the token-shift mixes into one
// time_mix_lerp_fused tensor (v6: w, k, v, r, g; v7: r, w, k, v, a, g), stores the
// LoRA matrices as [out, in], flattens v7's r_k, and for v6 divides att.output and
// ffn.value of layer i by 2^(i / rescale_every_n_layers); each of these is undone here.
// Its hyper-parameter keys are not trusted for sizes (its v6 converter writes fixed
// LoRA sizes): those come from the tensors, as for every other source.
#include "convert/gguf_import.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <memory>

#include "convert/ggml_types.hpp"
#include "convert/gguf_file.hpp"
#include "io/printable.hpp"
#include "rwkv/error.hpp"

namespace rwkv::convert {

namespace {

// The GGUF tensor (ggml dims reversed to PyTorch order) behind one official tensor.
struct Source {
  std::shared_ptr<const GgufFile> file;
  const GgufTensor* tensor;

  std::vector<int64_t> shape() const {
    std::vector<int64_t> out;
    for (auto it = tensor->dims.rbegin(); it != tensor->dims.rend(); ++it) out.push_back(int64_t(*it));
    return out;
  }
  std::vector<float> values() const { return file->to_float(*tensor); }
};

DType lossless_for(uint32_t ggml_type) {
  switch (ggml_type) {
    case kGgmlF32: return DType::F32;
    case kGgmlF16: return DType::F16;
    case kGgmlBF16: return DType::BF16;
    case kGgmlQ8_0: return DType::Q8_0;
    default: return DType::F16;  // 4/5/6-bit blocks: f16, the documented convention
  }
}

class Importer {
 public:
  Importer(std::shared_ptr<const GgufFile> file, SourceModel& out) : file_(std::move(file)), out_(out) {}

  const GgufTensor& require(const std::string& name) const {
    const GgufTensor* t = file_->find(name);
    if (t == nullptr) throw Error(fmt::format("{}: missing tensor '{}'", file_->path(), name));
    return *t;
  }

  SourceTensor base(const std::string& official, const GgufTensor& t) {
    used_.insert(t.name);
    Source src{file_, &t};
    SourceTensor s{official, src.shape(), ggml_type_info(t.type)->name, [src] { return src.values(); }};
    s.lossless = lossless_for(t.type);
    s.lossless_by_convention = t.type != kGgmlF32 && t.type != kGgmlF16 && t.type != kGgmlBF16 && t.type != kGgmlQ8_0;
    return s;
  }

  // The tensor as it is (a matrix's rows are the native rows: Q8_0 kept bit for bit).
  void same(const std::string& official, const std::string& gguf, double scale = 1.0) {
    const GgufTensor& t = require(gguf);
    SourceTensor s = base(official, t);
    if (scale != 1.0) {
      const auto values = s.values;
      s.values = [values, scale] {
        std::vector<float> v = values();
        for (float& x : v) x = float(x * scale);  // a power of two: exact
        return v;
      };
    } else if (t.type == kGgmlQ8_0 && t.dims.size() == 2) {
      const GgufTensor* tensor = &t;
      s.q8_0_rows = [tensor] { return std::vector<std::byte>(tensor->data, tensor->data + tensor->bytes); };
    }
    out_.tensors.push_back(std::move(s));
  }

  // A [out, in] LoRA matrix here, [in, out] in the checkpoint.
  void lora(const std::string& official, const std::string& gguf) {
    const GgufTensor& t = require(gguf);
    SourceTensor s = base(official, t);
    if (s.shape.size() != 2) shape_error(t, "a matrix");
    const int64_t rows = s.shape[0], cols = s.shape[1];
    s.shape = {cols, rows};
    const auto values = s.values;
    s.values = [values, rows, cols] { return transposed(values(), rows, cols); };
    out_.tensors.push_back(std::move(s));
  }

  // A [K, 1, 1, C] stack of token-shift mixes, one official [1, 1, C] vector each.
  void split_mixes(const std::string& prefix, const std::string& gguf, const std::vector<const char*>& names) {
    const GgufTensor& t = require(gguf);
    const SourceTensor whole = base("", t);
    const auto& shape = whole.shape;
    if (shape.size() != 4 || shape[0] != int64_t(names.size()) || shape[1] != 1 || shape[2] != 1) {
      shape_error(t, fmt::format("[{}, 1, 1, n_embd]", names.size()));
    }
    const int64_t C = shape[3];
    for (size_t m = 0; m < names.size(); ++m) {
      SourceTensor s = whole;
      s.name = prefix + names[m];
      s.shape = {1, 1, C};
      const auto values = whole.values;
      s.values = [values, m, C] {
        const std::vector<float> all = values();
        return std::vector<float>(all.begin() + int64_t(m) * C, all.begin() + int64_t(m + 1) * C);
      };
      out_.tensors.push_back(std::move(s));
    }
  }

  void reshaped(const std::string& official, const std::string& gguf, std::vector<int64_t> shape) {
    const GgufTensor& t = require(gguf);
    SourceTensor s = base(official, t);
    if (s.numel() != shape[0] * shape[1]) shape_error(t, fmt::format("[{}]", fmt::join(shape, ", ")));
    s.shape = std::move(shape);
    out_.tensors.push_back(std::move(s));
  }

  [[noreturn]] void shape_error(const GgufTensor& t, const std::string& expected) const {
    std::vector<uint64_t> dims(t.dims.rbegin(), t.dims.rend());
    throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected {}", file_->path(), io::printable(t.name),
                            fmt::join(dims, ", "), expected));
  }

  void refuse_unused() const {
    for (const GgufTensor& t : file_->tensors()) {
      if (!used_.count(t.name)) {
        throw Error(fmt::format("{}: tensor '{}' is not part of a {} model as llama.cpp writes it", file_->path(),
                                io::printable(t.name), file_->get_string("general.architecture")));
      }
    }
  }

  void ignore(const std::string& name) { used_.insert(name); }
  void push(SourceTensor s) { out_.tensors.push_back(std::move(s)); }

 private:
  std::shared_ptr<const GgufFile> file_;
  SourceModel& out_;
  std::set<std::string> used_;
};

std::string blk(uint32_t i, const char* suffix) { return fmt::format("blk.{}.{}", i, suffix); }
std::string block(uint32_t i, const char* suffix) { return fmt::format("blocks.{}.{}", i, suffix); }

void import_common(Importer& in) {
  in.same("emb.weight", "token_embd.weight");
  in.same("blocks.0.ln0.weight", "token_embd_norm.weight");
  in.same("blocks.0.ln0.bias", "token_embd_norm.bias");
  in.same("ln_out.weight", "output_norm.weight");
  in.same("ln_out.bias", "output_norm.bias");
  in.same("head.weight", "output.weight");
}

void import_norms(Importer& in, uint32_t i) {
  in.same(block(i, "ln1.weight"), blk(i, "attn_norm.weight"));
  in.same(block(i, "ln1.bias"), blk(i, "attn_norm.bias"));
  in.same(block(i, "ln2.weight"), blk(i, "attn_norm_2.weight"));
  in.same(block(i, "ln2.bias"), blk(i, "attn_norm_2.bias"));
  in.same(block(i, "att.ln_x.weight"), blk(i, "time_mix_ln.weight"));
  in.same(block(i, "att.ln_x.bias"), blk(i, "time_mix_ln.bias"));
}

void import_v6(Importer& in, const GgufFile& f, uint32_t n_layer) {
  const uint64_t rescale = f.has("rwkv6.rescale_every_n_layers") ? f.get_uint("rwkv6.rescale_every_n_layers") : 0;
  for (uint32_t i = 0; i < n_layer; ++i) {
    import_norms(in, i);
    const double scale = rescale > 0 ? std::ldexp(1.0, int(std::min<uint64_t>(i / rescale, 64))) : 1.0;
    in.same(block(i, "att.time_maa_x"), blk(i, "time_mix_lerp_x.weight"));
    in.split_mixes(block(i, "att."), blk(i, "time_mix_lerp_fused.weight"),
                   {"time_maa_w", "time_maa_k", "time_maa_v", "time_maa_r", "time_maa_g"});
    in.lora(block(i, "att.time_maa_w1"), blk(i, "time_mix_w1.weight"));
    // [5, C, D] here, [5, D, C] in the checkpoint.
    const GgufTensor& w2 = in.require(blk(i, "time_mix_w2.weight"));
    SourceTensor s = in.base(block(i, "att.time_maa_w2"), w2);
    if (s.shape.size() != 3) in.shape_error(w2, "[5, n_embd, D_mix]");
    const int64_t K = s.shape[0], C = s.shape[1], D = s.shape[2];
    s.shape = {K, D, C};
    const auto values = s.values;
    s.values = [values, K, C, D] {
      const std::vector<float> v = values();
      std::vector<float> out(v.size());
      for (int64_t m = 0; m < K; ++m) {
        for (int64_t c = 0; c < C; ++c) {
          for (int64_t d = 0; d < D; ++d) out[(m * D + d) * C + c] = v[(m * C + c) * D + d];
        }
      }
      return out;
    };
    in.push(std::move(s));
    in.same(block(i, "att.time_decay"), blk(i, "time_mix_decay.weight"));
    in.lora(block(i, "att.time_decay_w1"), blk(i, "time_mix_decay_w1.weight"));
    in.lora(block(i, "att.time_decay_w2"), blk(i, "time_mix_decay_w2.weight"));
    in.same(block(i, "att.time_faaaa"), blk(i, "time_mix_first.weight"));
    in.same(block(i, "att.receptance.weight"), blk(i, "time_mix_receptance.weight"));
    in.same(block(i, "att.key.weight"), blk(i, "time_mix_key.weight"));
    in.same(block(i, "att.value.weight"), blk(i, "time_mix_value.weight"));
    in.same(block(i, "att.gate.weight"), blk(i, "time_mix_gate.weight"));
    in.same(block(i, "att.output.weight"), blk(i, "time_mix_output.weight"), scale);
    in.same(block(i, "ffn.time_maa_k"), blk(i, "channel_mix_lerp_k.weight"));
    in.same(block(i, "ffn.time_maa_r"), blk(i, "channel_mix_lerp_r.weight"));
    in.same(block(i, "ffn.key.weight"), blk(i, "channel_mix_key.weight"));
    in.same(block(i, "ffn.receptance.weight"), blk(i, "channel_mix_receptance.weight"));
    in.same(block(i, "ffn.value.weight"), blk(i, "channel_mix_value.weight"), scale);
  }
}

void import_v7(Importer& in, const GgufFile& f, uint32_t n_layer) {
  const uint64_t head_size = f.get_uint("rwkv7.wkv.head_size");
  for (uint32_t i = 0; i < n_layer; ++i) {
    import_norms(in, i);
    in.split_mixes(block(i, "att."), blk(i, "time_mix_lerp_fused.weight"), {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"});
    // llama.cpp writes layer 0's unused value-residual LoRA as a copy of a0/a1/a2.
    std::vector<std::pair<const char*, char>> loras = {{"w", 'w'}, {"a", 'a'}, {"g", 'g'}};
    if (i > 0) loras.push_back({"v", 'v'});
    for (const auto& [name, c] : loras) {
      const std::string n(name);
      if (c != 'g') in.same(block(i, ("att." + n + "0").c_str()), blk(i, ("time_mix_" + n + "0.weight").c_str()));
      in.lora(block(i, ("att." + n + "1").c_str()), blk(i, ("time_mix_" + n + "1.weight").c_str()));
      in.lora(block(i, ("att." + n + "2").c_str()), blk(i, ("time_mix_" + n + "2.weight").c_str()));
    }
    if (i == 0) {
      for (const char* unused : {"time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight"}) {
        if (f.find(blk(0, unused))) in.ignore(blk(0, unused));
      }
    }
    in.same(block(i, "att.k_k"), blk(i, "time_mix_k_k.weight"));
    in.same(block(i, "att.k_a"), blk(i, "time_mix_k_a.weight"));
    const GgufTensor& r_k = in.require(blk(i, "time_mix_r_k.weight"));
    const uint64_t elements = [&] {
      uint64_t n = 1;
      for (uint64_t d : r_k.dims) n *= d;
      return n;
    }();
    if (head_size == 0 || elements % head_size != 0) {
      throw Error(fmt::format("{}: rwkv7.wkv.head_size {} does not divide tensor '{}' of {} values", f.path(),
                              head_size, r_k.name, elements));
    }
    in.reshaped(block(i, "att.r_k"), r_k.name, {int64_t(elements / head_size), int64_t(head_size)});
    in.same(block(i, "att.receptance.weight"), blk(i, "time_mix_receptance.weight"));
    in.same(block(i, "att.key.weight"), blk(i, "time_mix_key.weight"));
    in.same(block(i, "att.value.weight"), blk(i, "time_mix_value.weight"));
    in.same(block(i, "att.output.weight"), blk(i, "time_mix_output.weight"));
    in.same(block(i, "ffn.x_k"), blk(i, "channel_mix_lerp_k.weight"));
    in.same(block(i, "ffn.key.weight"), blk(i, "channel_mix_key.weight"));
    in.same(block(i, "ffn.value.weight"), blk(i, "channel_mix_value.weight"));
  }
}

// llama.cpp's text of a World token (Python's repr of its bytes, quotes cut off) back
// to the bytes, as llama.cpp's own reader unescapes it.
std::string unescape_rwkv_token(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    const char c = text[++i];
    if (c == 't') {
      out += '\t';
    } else if (c == 'n') {
      out += '\n';
    } else if (c == 'r') {
      out += '\r';
    } else if (c == 'x' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

SourceModel open_gguf_source(const std::string& path) {
  auto file = std::make_shared<const GgufFile>(GgufFile::open(path));
  SourceModel source;
  source.path = path;
  source.format = "gguf";
  source.owner = file;
  const std::string arch = file->get_string("general.architecture");
  if (arch != "rwkv6" && arch != "rwkv7") {
    throw Error(fmt::format("{}: general.architecture is '{}', expected rwkv6 or rwkv7 (llama.cpp has no RWKV-4 or "
                            "RWKV-5 architecture; convert those from their .pth)",
                            path, io::printable(arch)));
  }
  const uint64_t n_layer = file->get_uint(arch + ".block_count");
  if (n_layer == 0 || n_layer > 4096) {
    throw Error(fmt::format("{}: {}.block_count is {}, expected 1 to 4096", path, arch, n_layer));
  }
  Importer in(file, source);
  import_common(in);
  if (arch == "rwkv6") {
    import_v6(in, *file, uint32_t(n_layer));
  } else {
    import_v7(in, *file, uint32_t(n_layer));
  }
  in.refuse_unused();

  if (file->has("tokenizer.ggml.model")) {
    const std::string model = file->get_string("tokenizer.ggml.model");
    if (model != "rwkv") {
      throw Error(fmt::format("{}: tokenizer.ggml.model is '{}', expected rwkv (the World tokenizer)", path,
                              io::printable(model)));
    }
    const std::vector<std::string> tokens = file->get_string_array("tokenizer.ggml.tokens");
    const std::vector<int64_t> types = file->get_int_array("tokenizer.ggml.token_type");
    if (types.size() != tokens.size()) {
      throw Error(fmt::format("{}: tokenizer.ggml.token_type has {} entries, tokenizer.ggml.tokens {}", path,
                              types.size(), tokens.size()));
    }
    source.tokenizer = TokenizerKind::World;
    // The normal tokens (type 1) are the World vocabulary; id 0 (<s>, control) and the
    // padding (unused) are not in it.
    // Written as a World vocabulary file, every byte escaped.
    for (size_t id = 0; id < tokens.size(); ++id) {
      if (types[id] != 1) continue;
      const std::string bytes = unescape_rwkv_token(tokens[id]);
      source.vocabulary += fmt::format("{} b'", id);
      for (unsigned char c : bytes) source.vocabulary += fmt::format("\\x{:02x}", c);
      source.vocabulary += fmt::format("' {}\n", bytes.size());
    }
  }
  return source;
}

}  // namespace rwkv::convert
