#include "convert/gguf_file.hpp"

#include <algorithm>
#include <bit>
#include <limits>
#include <numeric>
#include <span>
#include <string_view>
#include <tuple>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "convert/byte_reader.hpp"
#include "convert/ggml_types.hpp"
#include "io/printable.hpp"
#include "rwkv/error.hpp"

namespace rwkv::convert {

namespace {

constexpr uint64_t kMaxKeyBytes = 65535;       // the GGUF specification's limit on keys
constexpr uint64_t kMaxTensorNameBytes = 65535;
constexpr uint32_t kMaxDims = 4;               // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;              // arrays of arrays of ...
// The fewest bytes an entry can take, which bounds the counts read from the header.
constexpr uint64_t kMinMetadataBytes = 8 + 4 + 1;        // empty key, type, a u8
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // empty name, no dims, type, offset
constexpr uint64_t kMinStringBytes = 8;
constexpr uint64_t kMinArrayBytes = 4 + 8;

bool is_integer(GgufValueType t) {
  switch (t) {
    case GgufValueType::UInt8:
    case GgufValueType::Int8:
    case GgufValueType::UInt16:
    case GgufValueType::Int16:
    case GgufValueType::UInt32:
    case GgufValueType::Int32:
    case GgufValueType::UInt64:
    case GgufValueType::Int64: return true;
    default: return false;
  }
}

bool is_signed(GgufValueType t) {
  return t == GgufValueType::Int8 || t == GgufValueType::Int16 || t == GgufValueType::Int32 ||
         t == GgufValueType::Int64;
}

// Bytes of a fixed-size value; 0 for strings and arrays.
uint64_t fixed_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UInt8:
    case GgufValueType::Int8:
    case GgufValueType::Bool: return 1;
    case GgufValueType::UInt16:
    case GgufValueType::Int16: return 2;
    case GgufValueType::UInt32:
    case GgufValueType::Int32:
    case GgufValueType::Float32: return 4;
    case GgufValueType::UInt64:
    case GgufValueType::Int64:
    case GgufValueType::Float64: return 8;
    case GgufValueType::String:
    case GgufValueType::Array: return 0;
  }
  return 0;
}

bool is_known_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::Float64); }

std::string type_description(const GgufMetadata& entry) {
  if (entry.type != GgufValueType::Array) return gguf_value_type_name(entry.type);
  return fmt::format("array of {}", gguf_value_type_name(entry.element_type));
}

// Reads through the file front to back. Every read is checked against the end of the
// file; `context` names what is being read for the message when it runs past the end.
class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  uint64_t position() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  void set_context(std::string context) { context_ = std::move(context); }

  void need(uint64_t length, std::string_view what) const {
    if (!fits(bytes_, pos_, length)) {
      throw Error(fmt::format("{}: truncated GGUF file: {} ({}) needs {} bytes at offset {}, past the end of the "
                              "{}-byte file",
                              path_, context_, what, length, pos_, bytes_.size()));
    }
  }

  template <typename UInt>
  UInt read(std::string_view what) {
    need(sizeof(UInt), what);
    const UInt value = load_le<UInt>(bytes_, pos_);
    pos_ += sizeof(UInt);
    return value;
  }

  void skip(uint64_t length, std::string_view what) {
    need(length, what);
    pos_ += length;
  }

  std::string_view read_string(std::string_view what, uint64_t max_length) {
    const uint64_t length = read<uint64_t>(what);
    if (length > max_length) {
      throw Error(fmt::format("{}: {}: {} of {} bytes at offset {}, longer than the {} bytes allowed", path_, context_,
                              what, length, pos_ - 8, max_length));
    }
    need(length, what);
    const std::string_view text = as_chars(bytes_.subspan(pos_, length));
    pos_ += length;
    return text;
  }

  // Walks over one value of type `type`, checking that all of it lies in the file.
  void skip_value(GgufValueType type, int depth) {
    if (type == GgufValueType::String) {
      const uint64_t length = read<uint64_t>("string length");
      skip(length, "string");
      return;
    }
    if (type != GgufValueType::Array) {
      skip(fixed_size(type), gguf_value_type_name(type));
      return;
    }
    const auto [element_type, count] = read_array_header(depth);
    skip_array_elements(element_type, count, depth);
  }

  // The elements of an array whose header was just read.
  void skip_array_elements(GgufValueType element_type, uint64_t count, int depth) {
    if (element_type == GgufValueType::String || element_type == GgufValueType::Array) {
      for (uint64_t i = 0; i < count; ++i) skip_value(element_type, depth + 1);
    } else {
      skip(count * fixed_size(element_type), "array elements");  // count bounded by read_array_header
    }
  }

  // An array's element type and count, refused when the elements cannot fit in what is
  // left of the file (so that the count can size a reservation) or nest too deep.
  std::pair<GgufValueType, uint64_t> read_array_header(int depth) {
    if (depth >= kMaxArrayDepth) {
      throw Error(fmt::format("{}: {}: arrays nested more than {} deep", path_, context_, kMaxArrayDepth));
    }
    const uint32_t raw_type = read<uint32_t>("array element type");
    if (!is_known_type(raw_type)) {
      throw Error(fmt::format("{}: {}: unknown array element type {} (expected 0 to 12)", path_, context_, raw_type));
    }
    const auto element_type = static_cast<GgufValueType>(raw_type);
    const uint64_t count = read<uint64_t>("array length");
    const uint64_t element_bytes = element_type == GgufValueType::String  ? kMinStringBytes
                                   : element_type == GgufValueType::Array ? kMinArrayBytes
                                                                          : fixed_size(element_type);
    if (count > remaining() / element_bytes) {
      throw Error(fmt::format("{}: truncated GGUF file: {}: an array of {} {} values cannot fit in the {} bytes left "
                              "of the file",
                              path_, context_, count, gguf_value_type_name(element_type), remaining()));
    }
    return {element_type, count};
  }

 private:
  std::span<const std::byte> bytes_;
  const std::string& path_;
  uint64_t pos_ = 0;
  std::string context_ = "the header";
};

}  // namespace

const char* gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::UInt8: return "u8";
    case GgufValueType::Int8: return "i8";
    case GgufValueType::UInt16: return "u16";
    case GgufValueType::Int16: return "i16";
    case GgufValueType::UInt32: return "u32";
    case GgufValueType::Int32: return "i32";
    case GgufValueType::Float32: return "f32";
    case GgufValueType::Bool: return "bool";
    case GgufValueType::String: return "string";
    case GgufValueType::Array: return "array";
    case GgufValueType::UInt64: return "u64";
    case GgufValueType::Int64: return "i64";
    case GgufValueType::Float64: return "f64";
  }
  return "unknown";
}

GgufFile GgufFile::open(const std::string& path) {
  GgufFile gguf;
  gguf.file_ = MappedFile(path, "the GGUF file");
  const std::span<const std::byte> bytes = gguf.file_.bytes();
  const uint64_t size = bytes.size();

  if (size < 4 || as_chars(bytes.first(4)) != "GGUF") {
    throw Error(fmt::format("{}: not a GGUF file: expected the magic 'GGUF' at its start, found '{}'", path,
                            io::printable(as_chars(bytes.first(std::min<uint64_t>(size, 4))))));
  }
  Cursor cursor(bytes, path);
  cursor.skip(4, "magic");
  gguf.version_ = cursor.read<uint32_t>("version");
  if (gguf.version_ != 2 && gguf.version_ != 3) {
    // A big-endian file (as written for s390x) has the version's bytes swapped.
    const bool swapped = gguf.version_ > 0xffff && (gguf.version_ & 0xffff) == 0;
    throw Error(fmt::format("{}: GGUF version {}{}, expected 2 or 3", path, gguf.version_,
                            swapped ? " (a big-endian file, which is not supported)" : ""));
  }
  const uint64_t tensor_count = cursor.read<uint64_t>("tensor count");
  const uint64_t metadata_count = cursor.read<uint64_t>("metadata count");
  if (metadata_count > cursor.remaining() / kMinMetadataBytes) {
    throw Error(fmt::format("{}: truncated GGUF file: {} metadata entries cannot fit in the {}-byte file", path,
                            metadata_count, size));
  }
  if (tensor_count > cursor.remaining() / kMinTensorInfoBytes) {
    throw Error(fmt::format("{}: truncated GGUF file: {} tensor infos cannot fit in the {}-byte file", path,
                            tensor_count, size));
  }

  gguf.metadata_.reserve(metadata_count);
  for (uint64_t i = 0; i < metadata_count; ++i) {
    cursor.set_context(fmt::format("metadata entry {} of {}", i, metadata_count));
    GgufMetadata entry;
    entry.key = std::string(cursor.read_string("key", kMaxKeyBytes));
    cursor.set_context(fmt::format("metadata key '{}'", io::printable(entry.key)));
    const uint32_t raw_type = cursor.read<uint32_t>("value type");
    if (!is_known_type(raw_type)) {
      throw Error(fmt::format("{}: metadata key '{}' has unknown value type {} (expected 0 to 12)", path,
                              io::printable(entry.key), raw_type));
    }
    entry.type = static_cast<GgufValueType>(raw_type);
    entry.value_offset = cursor.position();
    if (entry.type == GgufValueType::Array) {
      std::tie(entry.element_type, entry.count) = cursor.read_array_header(0);
      cursor.skip_array_elements(entry.element_type, entry.count, 0);
    } else {
      cursor.skip_value(entry.type, 0);
    }
    if (!gguf.metadata_index_.try_emplace(entry.key, gguf.metadata_.size()).second) {
      throw Error(fmt::format("{}: metadata key '{}' appears twice", path, io::printable(entry.key)));
    }
    gguf.metadata_.push_back(std::move(entry));
  }

  if (const GgufMetadata* entry = gguf.find_metadata("general.alignment")) {
    if (!is_integer(entry->type)) gguf.wrong_type(*entry, "an unsigned integer");
    gguf.alignment_ = gguf.get_uint("general.alignment");
    if (!std::has_single_bit(gguf.alignment_)) {
      throw Error(fmt::format("{}: general.alignment is {}, expected a power of two", path, gguf.alignment_));
    }
  }

  gguf.tensors_.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    cursor.set_context(fmt::format("tensor info {} of {}", i, tensor_count));
    GgufTensor tensor;
    tensor.name = std::string(cursor.read_string("name", kMaxTensorNameBytes));
    const std::string shown = io::printable(tensor.name);
    cursor.set_context(fmt::format("tensor info {} of {} ('{}')", i, tensor_count, shown));
    const uint32_t n_dims = cursor.read<uint32_t>("dimension count");
    if (n_dims > kMaxDims) {
      throw Error(fmt::format("{}: tensor '{}' has {} dimensions, at most {} are supported", path, shown, n_dims,
                              kMaxDims));
    }
    tensor.elements = 1;
    bool overflow = false;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = cursor.read<uint64_t>("dimension");
      tensor.dims.push_back(dim);
      // ggml counts elements in int64.
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) overflow = true;
      if (!overflow && dim != 0 &&
          tensor.elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim) {
        overflow = true;
      }
      if (!overflow) tensor.elements *= dim;
    }
    if (overflow) {
      throw Error(fmt::format("{}: tensor '{}' has dimensions [{}] whose product overflows a 64-bit count", path,
                              shown, fmt::join(tensor.dims, ", ")));
    }
    tensor.type = cursor.read<uint32_t>("ggml type");
    const GgmlTypeInfo* info = ggml_type_info(tensor.type);
    if (info == nullptr) {
      const char* name = ggml_type_name(tensor.type);
      throw Error(fmt::format("{}: tensor '{}' has ggml type {} ({}), which is not supported (supported: F32, F16, "
                              "BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)",
                              path, shown, tensor.type, name != nullptr ? name : "not a ggml type"));
    }
    const uint64_t row = tensor.dims.empty() ? 1 : tensor.dims[0];
    if (row % info->block_elements != 0) {
      throw Error(fmt::format("{}: tensor '{}' has rows of {} values, not a whole number of the {}-value blocks of {}",
                              path, shown, row, info->block_elements, info->name));
    }
    tensor.bytes = ggml_bytes(tensor.type, tensor.elements);  // elements < 2^63: cannot overflow
    tensor.offset = cursor.read<uint64_t>("data offset");
    if (!gguf.tensor_index_.try_emplace(tensor.name, gguf.tensors_.size()).second) {
      throw Error(fmt::format("{}: tensor '{}' appears twice", path, shown));
    }
    gguf.tensors_.push_back(std::move(tensor));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t infos_end = cursor.position();
  const uint64_t padding = (gguf.alignment_ - infos_end % gguf.alignment_) % gguf.alignment_;
  if (padding > std::numeric_limits<uint64_t>::max() - infos_end) {
    throw Error(fmt::format("{}: general.alignment {} puts the data section past any file", path, gguf.alignment_));
  }
  gguf.data_offset_ = infos_end + padding;

  for (GgufTensor& tensor : gguf.tensors_) {
    const std::string shown = io::printable(tensor.name);
    if (tensor.offset % gguf.alignment_ != 0) {
      throw Error(fmt::format("{}: tensor '{}' starts at data offset {}, not a multiple of the alignment {}", path,
                              shown, tensor.offset, gguf.alignment_));
    }
    if (gguf.data_offset_ > size || !fits(bytes.subspan(gguf.data_offset_), tensor.offset, tensor.bytes)) {
      throw Error(fmt::format("{}: truncated GGUF file: tensor '{}' ({} bytes at data offset {}, data section at {}) "
                              "runs past the end of the {}-byte file",
                              path, shown, tensor.bytes, tensor.offset, gguf.data_offset_, size));
    }
    tensor.data = bytes.data() + gguf.data_offset_ + tensor.offset;
  }

  // No two tensors may share bytes: sorted by offset, each must start after the ends of
  // all before it.
  std::vector<size_t> order(gguf.tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return gguf.tensors_[a].offset < gguf.tensors_[b].offset; });
  const GgufTensor* furthest = nullptr;  // the tensor that ends last among those seen
  for (size_t index : order) {
    const GgufTensor& tensor = gguf.tensors_[index];
    if (tensor.bytes == 0) continue;
    if (furthest != nullptr && tensor.offset < furthest->offset + furthest->bytes) {
      throw Error(fmt::format("{}: tensors '{}' (data bytes {} to {}) and '{}' (data bytes {} to {}) overlap", path,
                              io::printable(furthest->name), furthest->offset, furthest->offset + furthest->bytes,
                              io::printable(tensor.name), tensor.offset, tensor.offset + tensor.bytes));
    }
    if (furthest == nullptr || tensor.offset + tensor.bytes > furthest->offset + furthest->bytes) furthest = &tensor;
  }
  return gguf;
}

const GgufMetadata* GgufFile::find_metadata(const std::string& key) const {
  const auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second];
}

const GgufMetadata& GgufFile::require(const std::string& key) const {
  const GgufMetadata* entry = find_metadata(key);
  if (entry == nullptr) throw Error(fmt::format("{}: metadata key '{}' is missing", path(), io::printable(key)));
  return *entry;
}

void GgufFile::wrong_type(const GgufMetadata& entry, const char* expected) const {
  throw Error(fmt::format("{}: metadata key '{}' has type {}, expected {}", path(), io::printable(entry.key),
                          type_description(entry), expected));
}

namespace {

// One integer of `type` at `offset` (inside the file: checked at open), widened; `negative`
// tells a signed value below zero apart from a huge unsigned one.
struct WideInteger {
  uint64_t magnitude_bits;  // the value as uint64 (two's complement for negatives)
  bool negative;
};

WideInteger load_integer(std::span<const std::byte> bytes, uint64_t offset, GgufValueType type) {
  switch (type) {
    case GgufValueType::UInt8: return {load_le<uint8_t>(bytes, offset), false};
    case GgufValueType::UInt16: return {load_le<uint16_t>(bytes, offset), false};
    case GgufValueType::UInt32: return {load_le<uint32_t>(bytes, offset), false};
    case GgufValueType::UInt64: return {load_le<uint64_t>(bytes, offset), false};
    case GgufValueType::Int8: {
      const int64_t v = static_cast<int8_t>(load_le<uint8_t>(bytes, offset));
      return {static_cast<uint64_t>(v), v < 0};
    }
    case GgufValueType::Int16: {
      const int64_t v = static_cast<int16_t>(load_le<uint16_t>(bytes, offset));
      return {static_cast<uint64_t>(v), v < 0};
    }
    case GgufValueType::Int32: {
      const int64_t v = static_cast<int32_t>(load_le<uint32_t>(bytes, offset));
      return {static_cast<uint64_t>(v), v < 0};
    }
    case GgufValueType::Int64: {
      const int64_t v = static_cast<int64_t>(load_le<uint64_t>(bytes, offset));
      return {static_cast<uint64_t>(v), v < 0};
    }
    default: return {0, false};
  }
}

double load_float(std::span<const std::byte> bytes, uint64_t offset, GgufValueType type) {
  if (type == GgufValueType::Float32) return std::bit_cast<float>(load_le<uint32_t>(bytes, offset));
  return std::bit_cast<double>(load_le<uint64_t>(bytes, offset));
}

std::string load_string(std::span<const std::byte> bytes, uint64_t offset) {
  const uint64_t length = load_le<uint64_t>(bytes, offset);
  return std::string(as_chars(bytes.subspan(offset + 8, length)));
}

constexpr uint64_t kArrayHeaderBytes = 12;  // element type, count

}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  const GgufMetadata& entry = require(key);
  if (entry.type != GgufValueType::String) wrong_type(entry, "string");
  return load_string(file_.bytes(), entry.value_offset);
}

uint64_t GgufFile::get_uint(const std::string& key) const {
  const GgufMetadata& entry = require(key);
  if (!is_integer(entry.type)) wrong_type(entry, "an unsigned integer");
  const WideInteger v = load_integer(file_.bytes(), entry.value_offset, entry.type);
  if (v.negative) {
    throw Error(fmt::format("{}: metadata key '{}' is {}, expected a non-negative integer", path(),
                            io::printable(key), static_cast<int64_t>(v.magnitude_bits)));
  }
  return v.magnitude_bits;
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufMetadata& entry = require(key);
  if (!is_integer(entry.type)) wrong_type(entry, "an integer");
  const WideInteger v = load_integer(file_.bytes(), entry.value_offset, entry.type);
  if (!is_signed(entry.type) && v.magnitude_bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw Error(fmt::format("{}: metadata key '{}' is {}, more than a signed 64-bit integer holds", path(),
                            io::printable(key), v.magnitude_bits));
  }
  return static_cast<int64_t>(v.magnitude_bits);
}

double GgufFile::get_float(const std::string& key) const {
  const GgufMetadata& entry = require(key);
  if (entry.type != GgufValueType::Float32 && entry.type != GgufValueType::Float64) {
    wrong_type(entry, "f32 or f64");
  }
  return load_float(file_.bytes(), entry.value_offset, entry.type);
}

bool GgufFile::get_bool(const std::string& key) const {
  const GgufMetadata& entry = require(key);
  if (entry.type != GgufValueType::Bool) wrong_type(entry, "bool");
  return load_le<uint8_t>(file_.bytes(), entry.value_offset) != 0;
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const GgufMetadata& entry = require(key);
  if (entry.type != GgufValueType::Array || entry.element_type != GgufValueType::String) {
    wrong_type(entry, "array of string");
  }
  std::vector<std::string> out;
  out.reserve(entry.count);
  uint64_t at = entry.value_offset + kArrayHeaderBytes;
  for (uint64_t i = 0; i < entry.count; ++i) {
    out.push_back(load_string(file_.bytes(), at));
    at += 8 + out.back().size();
  }
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufMetadata& entry = require(key);
  if (entry.type != GgufValueType::Array || !is_integer(entry.element_type)) {
    wrong_type(entry, "array of integers");
  }
  const uint64_t element_bytes = fixed_size(entry.element_type);
  std::vector<int64_t> out;
  out.reserve(entry.count);
  for (uint64_t i = 0; i < entry.count; ++i) {
    const WideInteger v =
        load_integer(file_.bytes(), entry.value_offset + kArrayHeaderBytes + i * element_bytes, entry.element_type);
    if (!is_signed(entry.element_type) &&
        v.magnitude_bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw Error(fmt::format("{}: metadata key '{}': element {} is {}, more than a signed 64-bit integer holds",
                              path(), io::printable(key), i, v.magnitude_bits));
    }
    out.push_back(static_cast<int64_t>(v.magnitude_bits));
  }
  return out;
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  const GgufMetadata& entry = require(key);
  if (entry.type != GgufValueType::Array ||
      (entry.element_type != GgufValueType::Float32 && entry.element_type != GgufValueType::Float64)) {
    wrong_type(entry, "array of f32 or f64");
  }
  const uint64_t element_bytes = fixed_size(entry.element_type);
  std::vector<double> out;
  out.reserve(entry.count);
  for (uint64_t i = 0; i < entry.count; ++i) {
    out.push_back(load_float(file_.bytes(), entry.value_offset + kArrayHeaderBytes + i * element_bytes,
                             entry.element_type));
  }
  return out;
}

const GgufTensor* GgufFile::find(const std::string& name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::vector<float> GgufFile::to_float(const GgufTensor& tensor) const {
  // Checked at open: the bytes lie in the file and hold exactly `elements` values.
  std::vector<float> out(static_cast<size_t>(tensor.elements));
  dequantize_ggml(tensor.type, tensor.data, tensor.elements, out.data());
  return out;
}

}  // namespace rwkv::convert
