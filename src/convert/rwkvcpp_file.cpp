#include "convert/rwkvcpp_file.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <map>
#include <memory>

#include "convert/ggml_types.hpp"
#include "io/printable.hpp"
#include "rwkv/error.hpp"
#include "weights/mapped_file.hpp"

namespace rwkv::convert {

namespace {

constexpr size_t kHeaderBytes = 24;
constexpr uint32_t kMaxKeyBytes = 1024;
constexpr uint32_t kMaxDims = 3;

uint32_t read_u32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

struct TypeInfo {
  uint32_t ggml;
  const char* name;
};

// rwkv.cpp's data types (docs/FILE_FORMAT.md) and the ggml type of each.
std::optional<TypeInfo> rwkvcpp_type(uint32_t type) {
  switch (type) {
    case 0: return TypeInfo{kGgmlF32, "FP32"};
    case 1: return TypeInfo{kGgmlF16, "FP16"};
    case 2: return TypeInfo{kGgmlQ4_0, "Q4_0"};
    case 3: return TypeInfo{kGgmlQ4_1, "Q4_1"};
    case 7: return TypeInfo{kGgmlQ5_0, "Q5_0"};
    case 8: return TypeInfo{kGgmlQ5_1, "Q5_1"};
    case 9: return TypeInfo{kGgmlQ8_0, "Q8_0"};
    default: return std::nullopt;
  }
}

struct Parameter {
  std::string name;
  std::vector<int64_t> shape;  // PyTorch order (the file's reversed)
  TypeInfo type;
  uint64_t elements;
  const std::byte* data;
};

std::vector<int64_t> without_trailing_ones(std::vector<int64_t> shape) {
  while (shape.size() > 1 && shape.back() == 1) shape.pop_back();
  return shape;
}

std::vector<float> dequantized(const Parameter& p) {
  std::vector<float> out(p.elements);
  dequantize_ggml(p.type.ggml, p.data, p.elements, out.data());
  return out;
}

}  // namespace

bool looks_like_rwkvcpp(const std::byte* head, size_t size) {
  return size >= 8 && read_u32(head) == kRwkvCppMagic && (read_u32(head + 4) == 100 || read_u32(head + 4) == 101);
}

SourceModel open_rwkvcpp_source(const std::string& path) {
  auto file = std::make_shared<MappedFile>(path, "the rwkv.cpp model file");
  const std::byte* base = file->data();
  const size_t size = file->size();
  auto fail = [&](const std::string& message) -> Error { return Error(fmt::format("{}: {}", path, message)); };
  if (size < kHeaderBytes) throw fail(fmt::format("{} bytes: too short for rwkv.cpp's 24-byte header", size));
  if (read_u32(base) != kRwkvCppMagic) {
    throw fail(fmt::format("magic is 0x{:08x}, expected 0x{:08x} (an rwkv.cpp model file)", read_u32(base),
                           kRwkvCppMagic));
  }
  const uint32_t version = read_u32(base + 4);
  if (version != 100 && version != 101) {
    throw fail(fmt::format("rwkv.cpp file version {}, expected 100 or 101", version));
  }
  const uint32_t n_vocab = read_u32(base + 8), n_embd = read_u32(base + 12), n_layer = read_u32(base + 16);
  const uint32_t file_type = read_u32(base + 20);
  if (!rwkvcpp_type(file_type)) throw fail(fmt::format("header data_type {} is not an rwkv.cpp data type", file_type));

  std::vector<Parameter> params;
  std::map<std::string, size_t> seen;
  size_t at = kHeaderBytes;
  while (at < size) {
    const size_t index = params.size();
    auto at_param = [&](const std::string& what) {
      return fail(fmt::format("parameter {} at byte {}: {}", index, at, what));
    };
    if (size - at < 12) throw at_param("the parameter header runs past the end of the file");
    const uint32_t dim_count = read_u32(base + at), key_length = read_u32(base + at + 4);
    const uint32_t type_code = read_u32(base + at + 8);
    if (dim_count < 1 || dim_count > kMaxDims) {
      throw at_param(fmt::format("dim_count {}, expected 1 to {}", dim_count, kMaxDims));
    }
    if (key_length < 1 || key_length > kMaxKeyBytes) {
      throw at_param(fmt::format("key_length {}, expected 1 to {}", key_length, kMaxKeyBytes));
    }
    const auto type = rwkvcpp_type(type_code);
    if (!type) throw at_param(fmt::format("data_type {} is not an rwkv.cpp data type", type_code));
    size_t p = at + 12;
    if (size - p < size_t(dim_count) * 4 + key_length) {
      throw at_param("the shape and name run past the end of the file");
    }
    std::vector<int64_t> shape(dim_count);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < dim_count; ++d) {
      const uint32_t n = read_u32(base + p + 4 * d);
      if (n == 0 || n > (1u << 31)) throw at_param(fmt::format("dimension {} is {}", d, n));
      elements *= n;  // at most 2^93 before the check below: checked per step
      if (elements > (uint64_t(1) << 40)) throw at_param("more than 2^40 elements");
      shape[dim_count - 1 - d] = n;  // the file lists ggml's order, innermost first
    }
    p += size_t(dim_count) * 4;
    std::string name(reinterpret_cast<const char*>(base + p), key_length);
    p += key_length;
    const std::string shown = io::printable(name);
    if (version == 100 && type->ggml != kGgmlF32 && type->ggml != kGgmlF16) {
      throw fail(fmt::format("tensor '{}' is {} in file version 100, whose quantized blocks predate ggml's "
                             "2023-05 layout (rwkv.cpp no longer reads them either); quantize the FP16 file again",
                             shown, type->name));
    }
    const GgmlTypeInfo* info = ggml_type_info(type->ggml);
    if (elements % info->block_elements != 0) {
      throw fail(fmt::format("tensor '{}' has {} elements, not a whole number of {}-element {} blocks", shown, elements,
                             info->block_elements, type->name));
    }
    const uint64_t bytes = ggml_bytes(type->ggml, elements);
    if (size - p < bytes) {
      throw fail(fmt::format("tensor '{}' ({}, [{}]) needs {} bytes of data at byte {}, but the file ends after {}",
                             shown, type->name, fmt::join(shape, ", "), bytes, p, size - p));
    }
    if (!seen.emplace(name, index).second) throw fail(fmt::format("tensor '{}' appears twice", shown));
    params.push_back({std::move(name), std::move(shape), *type, elements, base + p});
    at = p + bytes;
  }

  const auto emb = seen.find("emb.weight");
  if (emb == seen.end()) throw fail("no tensor 'emb.weight'");
  const std::vector<int64_t> emb_shape = params[emb->second].shape;
  if (emb_shape != std::vector<int64_t>{n_vocab, n_embd}) {
    throw fail(fmt::format("header n_vocab {} and n_embd {} disagree with tensor 'emb.weight' of shape [{}]", n_vocab,
                           n_embd, fmt::join(emb_shape, ", ")));
  }
  if (n_layer == 0 || !seen.count(fmt::format("blocks.{}.ln1.weight", n_layer - 1)) ||
      seen.count(fmt::format("blocks.{}.ln1.weight", n_layer))) {
    throw fail(fmt::format("header n_layer {} disagrees with the blocks.N tensors", n_layer));
  }

  const bool v7 = seen.count("blocks.0.att.x_rwkvag") > 0;
  const bool v6 = seen.count("blocks.0.att.time_maa_x") > 0;
  const bool v5 = !v6 && !v7 && seen.count("blocks.0.att.ln_x.weight") > 0;

  SourceModel source;
  source.path = path;
  source.format = "rwkv.cpp";
  source.owner = file;
  auto shape_error = [&](const Parameter& p, const char* expected) {
    return fail(fmt::format("tensor '{}' has shape [{}], expected {}", io::printable(p.name), fmt::join(p.shape, ", "),
                            expected));
  };
  for (const Parameter& p : params) {
    SourceTensor t{p.name, p.shape, p.type.name, [p] { return dequantized(p); }};
    t.lossless = p.type.ggml == kGgmlF32 ? DType::F32 : p.type.ggml == kGgmlQ8_0 ? DType::Q8_0 : DType::F16;
    t.lossless_by_convention = p.type.ggml != kGgmlF32 && p.type.ggml != kGgmlQ8_0 && p.type.ggml != kGgmlF16;
    const size_t dot = p.name.rfind(".att.");
    const std::string local = dot == std::string::npos ? std::string() : p.name.substr(dot + 5);
    const std::string prefix = dot == std::string::npos ? std::string() : p.name.substr(0, dot + 5);
    if (v7 && local == "x_rwkvag") {
      // The six token-shift mixes x_r, x_w, x_k, x_v, x_a, x_g stacked as [6, 1, C].
      if (p.shape.size() != 3 || p.shape[0] != 6 || p.shape[1] != 1) throw shape_error(p, "[6, 1, n_embd]");
      const int64_t C = p.shape[2];
      const char* names[6] = {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"};
      for (int64_t m = 0; m < 6; ++m) {
        source.tensors.push_back({prefix + names[m], {1, 1, C}, p.type.name, [p, m, C] {
                                    const std::vector<float> all = dequantized(p);
                                    return std::vector<float>(all.begin() + m * C, all.begin() + (m + 1) * C);
                                  }});
      }
      continue;
    }
    const bool lora = (v6 && (local == "time_maa_w1" || local == "time_decay_w1" || local == "time_decay_w2")) ||
                      (v7 && local.size() == 2 && std::strchr("wavg", local[0]) && (local[1] == '1' || local[1] == '2'));
    if (lora) {
      // Stored [out, in] as this engine does; the checkpoint has [in, out].
      if (p.shape.size() != 2) throw shape_error(p, "a matrix");
      const int64_t rows = p.shape[0], cols = p.shape[1];
      t.shape = {cols, rows};
      t.values = [p, rows, cols] { return transposed(dequantized(p), rows, cols); };
    } else if (v6 && local == "time_maa_w2") {
      // [K, C, D] here, [K, D, C] in the checkpoint.
      if (p.shape.size() != 3) throw shape_error(p, "[5, n_embd, D_mix]");
      const int64_t K = p.shape[0], C = p.shape[1], D = p.shape[2];
      t.shape = {K, D, C};
      t.values = [p, K, C, D] {
        const std::vector<float> v = dequantized(p);
        std::vector<float> out(v.size());
        for (int64_t m = 0; m < K; ++m) {
          for (int64_t c = 0; c < C; ++c) {
            for (int64_t d = 0; d < D; ++d) out[(m * D + d) * C + c] = v[(m * C + c) * D + d];
          }
        }
        return out;
      };
    } else if (v6 && local == "time_decay") {
      t.shape = {int64_t(p.elements)};  // [H, N, 1] here, [1, 1, C] in the checkpoint
    } else if (local == "time_decay" || local == "time_first" || local == "time_faaaa") {
      // v4: -exp(time_decay); v5: exp(-exp(time_decay)) and exp(time_first), per head
      // [H, 1, 1] or per channel [H, N, 1]: the version table's own maps.
      t.shape = without_trailing_ones(p.shape);
      t.mapped = local == "time_decay" || (v5 && local == "time_first");
    } else if (p.type.ggml == kGgmlQ8_0 && p.shape.size() == 2) {
      t.q8_0_rows = [p] {
        const auto* bytes = p.data;
        return std::vector<std::byte>(bytes, bytes + ggml_bytes(kGgmlQ8_0, p.elements));
      };
    }
    source.tensors.push_back(std::move(t));
  }
  return source;
}

}  // namespace rwkv::convert
