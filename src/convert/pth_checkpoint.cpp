#include "convert/pth_checkpoint.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "convert/byte_reader.hpp"
#include "convert/pickle_reader.hpp"
#include "convert/zip_reader.hpp"
#include "kernels/half.hpp"
#include "io/printable.hpp"
#include "rwkv/error.hpp"

namespace rwkv::convert {

const char* pth_dtype_name(PthDType t) {
  switch (t) {
    case PthDType::Float32: return "float32";
    case PthDType::Float16: return "float16";
    case PthDType::BFloat16: return "bfloat16";
    case PthDType::Float64: return "float64";
    case PthDType::Int64: return "int64";
    case PthDType::Int32: return "int32";
    case PthDType::Int8: return "int8";
    case PthDType::UInt8: return "uint8";
    case PthDType::Bool: return "bool";
  }
  return "unknown";
}

size_t pth_dtype_size(PthDType t) {
  switch (t) {
    case PthDType::Float64:
    case PthDType::Int64: return 8;
    case PthDType::Float32:
    case PthDType::Int32: return 4;
    case PthDType::Float16:
    case PthDType::BFloat16: return 2;
    case PthDType::Int8:
    case PthDType::UInt8:
    case PthDType::Bool: return 1;
  }
  return 0;
}

int64_t PthTensor::numel() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

bool PthTensor::is_contiguous() const {
  if (stride.size() != shape.size()) return false;
  if (numel() == 0) return true;
  int64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && stride[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

namespace {

template <typename T>
T load_unaligned(const std::byte* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

template <typename Load>
std::vector<float> gather_as_float(const PthTensor& tensor, Load load) {
  const size_t element_size = pth_dtype_size(tensor.dtype);
  const int64_t count = tensor.numel();
  std::vector<float> out(static_cast<size_t>(count));
  if (count == 0) return out;
  if (tensor.is_contiguous()) {
    for (int64_t i = 0; i < count; ++i) out[static_cast<size_t>(i)] = load(tensor.data + i * element_size);
    return out;
  }
  // Walk the index in row-major order like an odometer, tracking the element offset.
  const size_t rank = tensor.shape.size();
  std::vector<int64_t> index(rank, 0);
  int64_t offset = 0;
  for (int64_t i = 0; i < count; ++i) {
    out[static_cast<size_t>(i)] = load(tensor.data + offset * static_cast<int64_t>(element_size));
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < tensor.shape[d]) {
        offset += tensor.stride[d];
        break;
      }
      offset -= tensor.stride[d] * (tensor.shape[d] - 1);
      index[d] = 0;
    }
  }
  return out;
}

}  // namespace

std::vector<float> PthTensor::to_float() const {
  if (stride.size() != shape.size()) {
    throw Error(fmt::format("tensor '{}': {} strides for {} dimensions", io::printable(name), stride.size(), shape.size()));
  }
  if (data == nullptr && numel() > 0) throw Error(fmt::format("tensor '{}' has no data", io::printable(name)));
  switch (dtype) {
    case PthDType::Float32: return gather_as_float(*this, [](const std::byte* p) { return load_unaligned<float>(p); });
    case PthDType::Float16:
      return gather_as_float(*this, [](const std::byte* p) { return fp16_to_fp32(load_unaligned<uint16_t>(p)); });
    case PthDType::BFloat16:
      return gather_as_float(*this, [](const std::byte* p) { return bf16_to_fp32(load_unaligned<uint16_t>(p)); });
    case PthDType::Float64:
      return gather_as_float(*this, [](const std::byte* p) { return static_cast<float>(load_unaligned<double>(p)); });
    default:
      throw Error(fmt::format("tensor '{}' has dtype {}, which is not a floating-point type", io::printable(name), pth_dtype_name(dtype)));
  }
}

const PthTensor* PthCheckpoint::find(std::string_view name) const {
  auto it = std::find_if(tensors_.begin(), tensors_.end(), [&](const PthTensor& t) { return t.name == name; });
  return it == tensors_.end() ? nullptr : &*it;
}

namespace {

struct StorageType {
  const char* name;
  PthDType dtype;
};
constexpr std::array kStorageTypes{
    StorageType{"FloatStorage", PthDType::Float32},  StorageType{"HalfStorage", PthDType::Float16},
    StorageType{"BFloat16Storage", PthDType::BFloat16}, StorageType{"DoubleStorage", PthDType::Float64},
    StorageType{"LongStorage", PthDType::Int64},     StorageType{"IntStorage", PthDType::Int32},
    StorageType{"CharStorage", PthDType::Int8},      StorageType{"ByteStorage", PthDType::UInt8},
    StorageType{"BoolStorage", PthDType::Bool},
};

// dtype objects are only ever values (in tensor metadata), never called.
constexpr std::array kDTypeNames{"float32", "float", "float16", "half", "bfloat16", "float64", "double",
                                 "int64",   "long",  "int32",   "int",  "int8",     "uint8",   "bool"};

constexpr uint32_t kStorageObject = 1;
constexpr uint32_t kTensorObject = 2;

struct StorageRecord {
  std::string key;
  PthDType dtype = PthDType::Float32;
  int64_t numel = 0;
};

struct TensorRecord {
  size_t storage = 0;
  int64_t storage_offset = 0;
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;
};

std::optional<PthDType> storage_dtype(const PickleGlobal& global) {
  if (global.module != "torch") return std::nullopt;
  for (const auto& type : kStorageTypes) {
    if (global.name == type.name) return type.dtype;
  }
  return std::nullopt;
}

// Resolves the few globals a torch.save state dict uses; everything else is
// refused, which is what makes loading an untrusted checkpoint safe.
class TorchPickleHooks : public PickleHooks {
 public:
  std::vector<StorageRecord> storages;
  std::vector<TensorRecord> tensors;

  PickleValue find_class(const std::string& module, const std::string& name) override {
    const bool allowed =
        (module == "collections" && name == "OrderedDict") ||
        (module == "torch._utils" && (name == "_rebuild_tensor_v2" || name == "_rebuild_tensor" ||
                                      name == "_rebuild_parameter" || name == "_rebuild_parameter_with_state")) ||
        storage_dtype(PickleGlobal{module, name}).has_value() ||
        (module == "torch" && std::find(kDTypeNames.begin(), kDTypeNames.end(), name) != kDTypeNames.end());
    if (!allowed) {
      throw Error(fmt::format("refusing to load global '{}.{}': a state dict only needs torch's tensor-rebuilding "
                              "functions, storage types and collections.OrderedDict",
                              io::printable(module), io::printable(name)));
    }
    return PickleGlobal{module, name};
  }

  PickleValue call(const PickleGlobal& callable, const PickleContainer& args, PickleArena& arena) override {
    const std::string& name = callable.name;
    if (callable.module == "collections") {
      if (!args.items.empty()) throw Error("collections.OrderedDict called with arguments; only OrderedDict() is supported");
      return arena.make(PickleContainerKind::Dict);
    }
    if (callable.module == "torch._utils" && (name == "_rebuild_tensor_v2" || name == "_rebuild_tensor")) {
      return rebuild_tensor(name, args, arena);
    }
    if (callable.module == "torch._utils" && (name == "_rebuild_parameter" || name == "_rebuild_parameter_with_state")) {
      // A Parameter is its tensor plus training flags we don't need.
      if (args.items.empty() || !is_object(args.items[0], kTensorObject)) {
        throw Error(fmt::format("{} expects a tensor as its first argument", name));
      }
      return args.items[0];
    }
    throw Error(fmt::format("{}.{} cannot be called", callable.module, name));
  }

  // torch.save's persistent id: ('storage', storage type, key, location, numel).
  PickleValue persistent_load(const PickleValue& id, const PickleArena& arena) override {
    const PickleContainer* tuple = arena.as(id, PickleContainerKind::Tuple);
    if (tuple == nullptr || tuple->items.size() != 5) {
      throw Error(fmt::format("persistent id is a {}, not a 5-tuple ('storage', type, key, location, numel)",
                              pickle_type_name(id, arena)));
    }
    const auto& items = tuple->items;
    const auto* tag = std::get_if<std::string>(&items[0]);
    if (tag == nullptr || *tag != "storage") throw Error("persistent id does not start with 'storage'");
    const auto* type = std::get_if<PickleGlobal>(&items[1]);
    const std::optional<PthDType> dtype = type ? storage_dtype(*type) : std::nullopt;
    if (!dtype) {
      throw Error(fmt::format("persistent id names a {}, not a torch storage type", pickle_type_name(items[1], arena)));
    }
    const auto* key = std::get_if<std::string>(&items[2]);
    if (key == nullptr) throw Error(fmt::format("storage key is a {}, not a str", pickle_type_name(items[2], arena)));
    const auto* numel = std::get_if<int64_t>(&items[4]);
    if (numel == nullptr || *numel < 0) throw Error(fmt::format("storage '{}' has no valid element count", io::printable(*key)));
    storages.push_back(StorageRecord{*key, *dtype, *numel});
    return PickleExternal{kStorageObject, storages.size() - 1};
  }

  static bool is_object(const PickleValue& value, uint32_t kind) {
    const auto* object = std::get_if<PickleExternal>(&value);
    return object != nullptr && object->kind == kind;
  }

 private:
  static std::vector<int64_t> int_tuple(const PickleValue& value, const PickleArena& arena, const char* what) {
    const PickleContainer* tuple = arena.as(value, PickleContainerKind::Tuple);
    if (tuple == nullptr) throw Error(fmt::format("tensor {} is a {}, not a tuple", what, pickle_type_name(value, arena)));
    std::vector<int64_t> out;
    for (const PickleValue& item : tuple->items) {
      const auto* number = std::get_if<int64_t>(&item);
      if (number == nullptr || *number < 0) {
        throw Error(fmt::format("tensor {} holds a {}, not a non-negative int", what, pickle_type_name(item, arena)));
      }
      out.push_back(*number);
    }
    return out;
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]);
  // the older _rebuild_tensor takes just the first four.
  PickleValue rebuild_tensor(const std::string& name, const PickleContainer& args, const PickleArena& arena) {
    const auto& items = args.items;
    const bool v2 = name == "_rebuild_tensor_v2";
    if (v2 ? (items.size() != 6 && items.size() != 7) : items.size() != 4) {
      throw Error(fmt::format("{} called with {} arguments", name, items.size()));
    }
    if (!is_object(items[0], kStorageObject)) {
      throw Error(fmt::format("{} expects a storage, got a {}", name, pickle_type_name(items[0], arena)));
    }
    const auto* offset = std::get_if<int64_t>(&items[1]);
    if (offset == nullptr || *offset < 0) {
      throw Error(fmt::format("{} expects a non-negative int storage offset, got a {}", name, pickle_type_name(items[1], arena)));
    }
    TensorRecord tensor{std::get<PickleExternal>(items[0]).index, *offset, int_tuple(items[2], arena, "size"),
                        int_tuple(items[3], arena, "stride")};
    if (tensor.shape.size() != tensor.stride.size()) {
      throw Error(fmt::format("tensor has {} sizes but {} strides", tensor.shape.size(), tensor.stride.size()));
    }
    tensors.push_back(std::move(tensor));
    return PickleExternal{kTensorObject, tensors.size() - 1};
  }
};

// Checkpoints sometimes wrap the state dict: {'state_dict': {...}, 'epoch': 3}.
const PickleContainer& find_state_dict(const Unpickled& unpickled, const std::string& label) {
  const PickleContainer* dict = unpickled.arena.as(unpickled.root, PickleContainerKind::Dict);
  if (dict == nullptr) {
    throw Error(fmt::format("{}: the checkpoint holds a {}, not a state dict", label,
                            pickle_type_name(unpickled.root, unpickled.arena)));
  }
  constexpr int kMaxWrapperDepth = 4;
  for (int depth = 0; depth < kMaxWrapperDepth; ++depth) {
    const PickleContainer* inner = nullptr;
    for (size_t i = 0; i < dict->items.size(); i += 2) {
      if (TorchPickleHooks::is_object(dict->items[i + 1], kTensorObject)) return *dict;
      const auto* key = std::get_if<std::string>(&dict->items[i]);
      if (key != nullptr && (*key == "state_dict" || *key == "model") && inner == nullptr) {
        inner = unpickled.arena.as(dict->items[i + 1], PickleContainerKind::Dict);
      }
    }
    if (inner == nullptr) break;
    dict = inner;
  }
  return *dict;
}

bool checked_multiply_add(int64_t a, int64_t b, int64_t& sum) {
  int64_t product = 0;
  return !__builtin_mul_overflow(a, b, &product) && !__builtin_add_overflow(sum, product, &sum);
}

// Where `tensor` starts in its storage's bytes, once the storage is known to hold every element the tensor can reach.
const std::byte* tensor_data(const PthTensor& tensor, const TensorRecord& record, const StorageRecord& storage,
                             std::span<const std::byte> storage_bytes, const std::string& label) {
  const auto element_size = static_cast<int64_t>(pth_dtype_size(storage.dtype));
  int64_t declared_bytes = 0;
  if (!checked_multiply_add(storage.numel, element_size, declared_bytes) ||
      static_cast<uint64_t>(declared_bytes) > storage_bytes.size()) {
    throw Error(fmt::format("{}: storage '{}' of tensor '{}' declares {} {} elements but its archive entry holds only {} bytes",
                            label, io::printable(storage.key), io::printable(tensor.name), storage.numel,
                            pth_dtype_name(storage.dtype),
                            storage_bytes.size()));
  }
  // Zero strides (expanded tensors) let the element count exceed the storage's, so it needs its own check.
  int64_t element_count = 1;
  for (int64_t dim : record.shape) {
    if (__builtin_mul_overflow(element_count, dim, &element_count)) {
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], whose element count overflows", label,
                              io::printable(tensor.name),
                              fmt::join(record.shape, ", ")));
    }
  }
  const bool empty = element_count == 0;
  int64_t last_index = record.storage_offset;
  bool overflow = false;
  if (!empty) {
    for (size_t d = 0; d < record.shape.size(); ++d) {
      overflow = overflow || !checked_multiply_add(record.shape[d] - 1, record.stride[d], last_index);
    }
  }
  // An empty tensor reaches no element, but its offset must still point within (or just past) the storage.
  const bool fits_storage = empty ? record.storage_offset <= storage.numel : last_index < storage.numel;
  if (overflow || !fits_storage) {
    throw Error(fmt::format("{}: tensor '{}' (shape [{}], stride [{}], storage offset {}) reaches past the end of its "
                            "storage '{}', which holds {} elements",
                            label, io::printable(tensor.name), fmt::join(record.shape, ", "),
                            fmt::join(record.stride, ", "), record.storage_offset, io::printable(storage.key),
                            storage.numel));
  }
  return storage_bytes.data() + record.storage_offset * element_size;
}

bool is_legacy_pickle(std::span<const std::byte> bytes) {
  // Pre-1.6 torch.save wrote a bare pickle stream: PROTO opcode, then the magic number.
  return bytes.size() >= 2 && bytes[0] == std::byte{0x80} && std::to_integer<uint8_t>(bytes[1]) >= 2 &&
         std::to_integer<uint8_t>(bytes[1]) <= 5;
}

bool starts_like_zip(std::span<const std::byte> bytes) {
  return bytes.size() >= 4 && bytes[0] == std::byte{'P'} && bytes[1] == std::byte{'K'} &&
         (bytes[2] == std::byte{3} || bytes[2] == std::byte{5}) && (bytes[3] == std::byte{4} || bytes[3] == std::byte{6});
}

// The archive's entries share one top-level folder whose name torch takes from the file name at save time.
const ZipEntry& find_data_pickle(const ZipReader& zip, const std::string& label) {
  for (const ZipEntry& entry : zip.entries()) {
    const size_t slash = entry.name.find('/');
    if (slash != std::string::npos && slash > 0 && entry.name.substr(slash) == "/data.pkl") return entry;
  }
  throw Error(fmt::format("{}: zip archive has no '<name>/data.pkl' entry: not a PyTorch checkpoint", label));
}

}  // namespace

PthCheckpoint PthCheckpoint::open(const std::string& path) {
  PthCheckpoint checkpoint;
  checkpoint.file_ = MappedFile(path, "the checkpoint");
  const std::span<const std::byte> bytes = checkpoint.file_.bytes();
  if (bytes.empty()) throw Error(fmt::format("{}: empty file, not a PyTorch zip checkpoint", path));
  if (is_legacy_pickle(bytes)) {
    throw Error(fmt::format("{}: legacy (pre-PyTorch-1.6) checkpoint format is not supported; re-save it with "
                            "torch.save in a recent PyTorch",
                            path));
  }
  if (!starts_like_zip(bytes)) throw Error(fmt::format("{}: not a PyTorch zip checkpoint", path));

  const ZipReader zip(bytes, path);
  const ZipEntry& pickle_entry = find_data_pickle(zip, path);
  const std::string prefix = pickle_entry.name.substr(0, pickle_entry.name.find('/'));
  if (const ZipEntry* byteorder = zip.find(prefix + "/byteorder")) {
    const std::string_view order = as_chars(zip.stored_data(*byteorder));
    if (order != "little") throw Error(fmt::format("{}: storages are '{}'-endian; only little-endian is supported", path,
                                              io::printable(order)));
  }

  TorchPickleHooks hooks;
  const Unpickled unpickled = unpickle(zip.stored_data(pickle_entry), fmt::format("{}: {}", path, pickle_entry.name), hooks);
  const PickleContainer& state_dict = find_state_dict(unpickled, path);

  // A repeated key keeps its first position and takes its last value, as in a Python dict.
  std::unordered_map<std::string_view, size_t> last_value_of_key;
  for (size_t i = 0; i < state_dict.items.size(); i += 2) {
    if (const auto* key = std::get_if<std::string>(&state_dict.items[i])) last_value_of_key[*key] = i + 1;
  }
  std::vector<std::optional<std::span<const std::byte>>> storage_bytes(hooks.storages.size());
  for (size_t i = 0; i < state_dict.items.size(); i += 2) {
    const auto* name = std::get_if<std::string>(&state_dict.items[i]);
    if (name == nullptr) continue;
    const auto last_value = last_value_of_key.find(*name);
    if (last_value == last_value_of_key.end()) continue;  // listed already
    const auto* object = std::get_if<PickleExternal>(&state_dict.items[last_value->second]);
    last_value_of_key.erase(last_value);
    if (object == nullptr || object->kind != kTensorObject) continue;
    const TensorRecord& record = hooks.tensors[object->index];
    const StorageRecord& storage = hooks.storages[record.storage];
    PthTensor tensor;
    tensor.name = *name;
    tensor.dtype = storage.dtype;
    tensor.shape = record.shape;
    tensor.stride = record.stride;
    auto& bytes_of_storage = storage_bytes[record.storage];
    if (!bytes_of_storage) {
      const ZipEntry* entry = zip.find(prefix + "/data/" + storage.key);
      if (entry == nullptr) {
        throw Error(fmt::format("{}: storage '{}' of tensor '{}' is missing from the archive (no entry '{}/data/{}')", path,
                                io::printable(storage.key), io::printable(tensor.name), io::printable(prefix),
                                io::printable(storage.key)));
      }
      bytes_of_storage = zip.stored_data(*entry);
    }
    tensor.data = tensor_data(tensor, record, storage, *bytes_of_storage, path);
    checkpoint.tensors_.push_back(std::move(tensor));
  }
  if (checkpoint.tensors_.empty()) throw Error(fmt::format("{}: the checkpoint holds no tensors", path));
  return checkpoint;
}

}  // namespace rwkv::convert
