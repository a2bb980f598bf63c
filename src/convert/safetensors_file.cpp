#include "convert/safetensors_file.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <set>
#include <span>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "convert/byte_reader.hpp"
#include "io/files.hpp"
#include "io/printable.hpp"
#include "kernels/half.hpp"
#include "rwkv/error.hpp"

namespace rwkv::convert {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The safetensors library refuses headers above 100 MB; so does this reader.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr uint64_t kMaxIndexBytes = 64 << 20;
constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

// Bytes per element of the dtypes the safetensors format defines; 0 for an unknown one.
uint64_t dtype_size(std::string_view dtype) {
  static constexpr std::pair<std::string_view, uint64_t> kSizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
      {"F32", 4},  {"I64", 8}, {"U64", 8}, {"F64", 8},
  };
  for (const auto& [name, size] : kSizes) {
    if (name == dtype) return size;
  }
  return 0;
}

uint16_t load_u16(const std::byte* p) {
  return static_cast<uint16_t>(static_cast<uint16_t>(p[0]) | static_cast<uint16_t>(static_cast<uint16_t>(p[1]) << 8));
}

// A JSON value as a non-negative integer that fits int64, or false.
bool as_count(const json& value, uint64_t& out) {
  if (!value.is_number_unsigned()) return false;  // negative numbers and floats are not
  out = value.get<uint64_t>();
  return out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

std::string shown_json(const json& value) { return io::printable(value.dump(), 60); }

}  // namespace

uint64_t SafetensorsTensor::elements() const {
  uint64_t count = 1;
  for (int64_t dim : shape) count *= static_cast<uint64_t>(dim);  // checked at open
  return count;
}

std::vector<float> SafetensorsTensor::to_float() const {
  const uint64_t size = dtype_size(dtype);
  const uint64_t count = size == 0 ? 0 : bytes / size;
  std::vector<float> out;
  if (dtype == "F32") {
    out.resize(count);
    if (count > 0) std::memcpy(out.data(), data, count * sizeof(float));
  } else if (dtype == "F16") {
    out.resize(count);
    for (uint64_t i = 0; i < count; ++i) out[i] = fp16_to_fp32(load_u16(data + 2 * i));
  } else if (dtype == "BF16") {
    out.resize(count);
    for (uint64_t i = 0; i < count; ++i) out[i] = bf16_to_fp32(load_u16(data + 2 * i));
  } else if (dtype == "F64") {
    // fla-hub's converter can write float64; rounded to the nearest float32 (exact for
    // weights that were float32).
    out.resize(count);
    for (uint64_t i = 0; i < count; ++i) {
      double v;
      std::memcpy(&v, data + 8 * i, 8);
      out[i] = static_cast<float>(v);
    }
  } else {
    throw Error(fmt::format("{}: tensor '{}' has dtype {}; only F32, F16, BF16 and F64 tensors can be read", path,
                            io::printable(name), dtype));
  }
  return out;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile st;
  st.file_ = MappedFile(path, "the safetensors file");
  const std::span<const std::byte> bytes = st.file_.bytes();
  if (bytes.size() < 8) {
    throw Error(fmt::format("{}: truncated safetensors file: {} bytes, too short for the 8-byte header length", path,
                            bytes.size()));
  }
  const uint64_t header_length = load_le<uint64_t>(bytes, 0);
  if (header_length > kMaxHeaderBytes) {
    throw Error(fmt::format("{}: safetensors header length {} is more than the {} bytes allowed", path,
                            header_length, kMaxHeaderBytes));
  }
  if (!fits(bytes, 8, header_length)) {
    throw Error(fmt::format("{}: truncated safetensors file: a header of {} bytes runs past the end of the {}-byte file",
                            path, header_length, bytes.size()));
  }
  const std::string_view header_text = as_chars(bytes.subspan(8, header_length));
  const std::span<const std::byte> data = bytes.subspan(8 + header_length);

  json header;
  try {
    header = json::parse(header_text);
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: the safetensors header is not valid JSON: {}", path, io::printable(e.what(), 200)));
  }
  if (!header.is_object()) {
    throw Error(fmt::format("{}: the safetensors header is a JSON {}, expected an object", path, header.type_name()));
  }

  for (const auto& [key, entry] : header.items()) {
    const std::string shown = io::printable(key);
    if (key == "__metadata__") {
      if (!entry.is_object()) {
        throw Error(fmt::format("{}: __metadata__ is a JSON {}, expected an object of strings", path, entry.type_name()));
      }
      for (const auto& [meta_key, meta_value] : entry.items()) {
        if (!meta_value.is_string()) {
          throw Error(fmt::format("{}: __metadata__ key '{}' is a JSON {}, expected a string", path,
                                  io::printable(meta_key), meta_value.type_name()));
        }
        st.metadata_.emplace(meta_key, meta_value.get<std::string>());
      }
      continue;
    }
    if (!entry.is_object()) {
      throw Error(fmt::format("{}: tensor '{}' is described by a JSON {}, expected an object with dtype, shape and "
                              "data_offsets",
                              path, shown, entry.type_name()));
    }
    SafetensorsTensor tensor;
    tensor.name = key;
    tensor.path = path;

    const auto dtype = entry.find("dtype");
    if (dtype == entry.end() || !dtype->is_string()) {
      throw Error(fmt::format("{}: tensor '{}' has no dtype string", path, shown));
    }
    tensor.dtype = dtype->get<std::string>();
    const uint64_t element_size = dtype_size(tensor.dtype);
    if (element_size == 0) {
      throw Error(fmt::format("{}: tensor '{}' has unknown dtype '{}'", path, shown, io::printable(tensor.dtype)));
    }

    const auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array()) {
      throw Error(fmt::format("{}: tensor '{}' has no shape array", path, shown));
    }
    uint64_t elements = 1;
    for (const json& dim_value : *shape) {
      uint64_t dim = 0;
      if (!as_count(dim_value, dim)) {
        throw Error(fmt::format("{}: tensor '{}' has shape {}, expected non-negative integers", path, shown,
                                shown_json(*shape)));
      }
      if (dim != 0 && elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim) {
        throw Error(fmt::format("{}: tensor '{}' has shape {}, whose element count overflows", path, shown,
                                shown_json(*shape)));
      }
      elements *= dim;
      tensor.shape.push_back(static_cast<int64_t>(dim));
    }
    if (elements > std::numeric_limits<uint64_t>::max() / element_size) {
      throw Error(fmt::format("{}: tensor '{}' of shape {} and dtype {} takes more bytes than a 64-bit size holds",
                              path, shown, shown_json(*shape), tensor.dtype));
    }
    const uint64_t expected_bytes = elements * element_size;

    const auto offsets = entry.find("data_offsets");
    uint64_t begin = 0, end = 0;
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 || !as_count((*offsets)[0], begin) ||
        !as_count((*offsets)[1], end)) {
      throw Error(fmt::format("{}: tensor '{}' has data_offsets {}, expected [begin, end]", path, shown,
                              offsets == entry.end() ? std::string("missing") : shown_json(*offsets)));
    }
    if (begin > end || end > data.size()) {
      throw Error(fmt::format("{}: tensor '{}' has data_offsets [{}, {}], outside the {}-byte data section", path,
                              shown, begin, end, data.size()));
    }
    if (end - begin != expected_bytes) {
      throw Error(fmt::format("{}: tensor '{}': dtype {} and shape {} take {} bytes, but data_offsets [{}, {}] hold {} "
                              "(the dtype does not match the bytes)",
                              path, shown, tensor.dtype, shown_json(*shape), expected_bytes, begin, end, end - begin));
    }
    tensor.data = data.data() + begin;
    tensor.bytes = expected_bytes;
    st.tensors_.push_back(std::move(tensor));
  }

  std::sort(st.tensors_.begin(), st.tensors_.end(),
            [&](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.data < b.data; });
  const SafetensorsTensor* furthest = nullptr;  // the tensor that ends last among those seen
  for (const SafetensorsTensor& tensor : st.tensors_) {
    if (tensor.bytes == 0) continue;
    if (furthest != nullptr && tensor.data < furthest->data + furthest->bytes) {
      const auto offset = [&](const SafetensorsTensor& t) { return static_cast<uint64_t>(t.data - data.data()); };
      throw Error(fmt::format("{}: tensors '{}' (data bytes {} to {}) and '{}' (data bytes {} to {}) overlap", path,
                              io::printable(furthest->name), offset(*furthest), offset(*furthest) + furthest->bytes,
                              io::printable(tensor.name), offset(tensor), offset(tensor) + tensor.bytes));
    }
    if (furthest == nullptr || tensor.data + tensor.bytes > furthest->data + furthest->bytes) furthest = &tensor;
  }
  for (size_t i = 0; i < st.tensors_.size(); ++i) st.index_.emplace(st.tensors_[i].name, i);  // JSON keys: unique
  return st;
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// A shard name from an index must name a file in the index's own directory.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

}  // namespace

SafetensorsModel SafetensorsModel::open(const std::string& dir_or_file) {
  SafetensorsModel model;
  std::vector<std::pair<std::string, std::string>> listed;  // tensor, shard: from the index
  std::vector<std::string> shard_names;
  std::string index_path;

  std::error_code ec;
  const fs::path root(dir_or_file);
  if (!fs::is_directory(root, ec)) {
    model.files_.push_back(SafetensorsFile::open(dir_or_file));
  } else if (fs::exists(root / kIndexName, ec)) {
    index_path = (root / kIndexName).string();
    const std::string text = io::read_regular_file(index_path, "the safetensors index", kMaxIndexBytes);
    json index;
    try {
      index = json::parse(text);
    } catch (const json::exception& e) {
      throw Error(fmt::format("{}: the safetensors index is not valid JSON: {}", index_path,
                              io::printable(e.what(), 200)));
    }
    const auto weight_map = index.is_object() ? index.find("weight_map") : index.end();
    if (weight_map == index.end() || !weight_map->is_object()) {
      throw Error(fmt::format("{}: no weight_map object in the safetensors index", index_path));
    }
    std::set<std::string> seen_shards;
    for (const auto& [tensor, shard_value] : weight_map->items()) {
      if (!shard_value.is_string()) {
        throw Error(fmt::format("{}: weight_map gives tensor '{}' a JSON {}, expected a shard file name", index_path,
                                io::printable(tensor), shard_value.type_name()));
      }
      const std::string shard = shard_value.get<std::string>();
      if (!is_plain_file_name(shard)) {
        throw Error(fmt::format("{}: weight_map names shard '{}' for tensor '{}': expected a file name inside the "
                                "directory",
                                index_path, io::printable(shard), io::printable(tensor)));
      }
      if (seen_shards.insert(shard).second) {
        if (!fs::exists(root / shard, ec)) {
          throw Error(fmt::format("{}: missing shard '{}' (named for tensor '{}'): {} does not exist", index_path,
                                  io::printable(shard), io::printable(tensor), (root / shard).string()));
        }
        shard_names.push_back(shard);
      }
      listed.emplace_back(tensor, shard);
    }
    for (const std::string& shard : shard_names) model.files_.push_back(SafetensorsFile::open((root / shard).string()));
  } else if (fs::exists(root / kSingleName, ec)) {
    model.files_.push_back(SafetensorsFile::open((root / kSingleName).string()));
  } else {
    throw Error(fmt::format("{}: no {} or {} in the directory", dir_or_file, kSingleName, kIndexName));
  }

  for (const SafetensorsFile& file : model.files_) {
    for (const SafetensorsTensor& tensor : file.tensors()) {
      const auto [it, inserted] = model.index_.try_emplace(tensor.name, model.tensors_.size());
      if (!inserted) {
        throw Error(fmt::format("{}: tensor '{}' is in two shards, {} and {}", dir_or_file, io::printable(tensor.name),
                                model.tensors_[it->second].path, file.path()));
      }
      model.tensors_.push_back(tensor);
    }
  }
  for (const auto& [tensor, shard] : listed) {
    const SafetensorsTensor* found = model.find(tensor);
    if (found == nullptr || fs::path(found->path).filename() != shard) {
      throw Error(fmt::format("{}: weight_map puts tensor '{}' in shard '{}', which does not hold it", index_path,
                              io::printable(tensor), io::printable(shard)));
    }
  }
  return model;
}

const SafetensorsTensor* SafetensorsModel::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace rwkv::convert
