#include "weights/format.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "io/printable.hpp"
#include "kernels/finite_check.hpp"
#include "kernels/thread_pool.hpp"
#include "rwkv/error.hpp"

namespace rwkv {

uint64_t NativeTensor::numel() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

const NativeTensor* NativeFile::find(const std::string& name) const {
  for (const NativeTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

namespace {

// Bounds-checked little-endian reads over the mapped bytes; every failure names the file.
class Reader {
 public:
  Reader(const std::string& path, const std::byte* data, size_t size, size_t pos)
      : path_(path), data_(data), size_(size), pos_(pos) {}

  template <typename T>
  T read(const char* what) {
    if (size_ - pos_ < sizeof(T) || pos_ > size_) {
      throw Error(fmt::format("{}: truncated tensor table while reading {} at offset {}", path_, what, pos_));
    }
    T value;
    std::memcpy(&value, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string read_string(size_t n, const char* what) {
    if (pos_ > size_ || size_ - pos_ < n) {
      throw Error(fmt::format("{}: truncated tensor table while reading {} at offset {}", path_, what, pos_));
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  size_t pos() const { return pos_; }

 private:
  const std::string& path_;
  const std::byte* data_;
  size_t size_;
  size_t pos_;
};

template <typename T>
T load_le(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void append_le(std::vector<std::byte>& out, T v) {
  const auto* p = reinterpret_cast<const std::byte*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

constexpr uint32_t kMaxDim = 1u << 20;  // no RWKV dimension comes near this; larger means corruption

// Two tensors sharing bytes would each be read as the other's values.
void check_no_overlap(const std::string& path, const std::vector<NativeTensor>& tensors) {
  std::vector<const NativeTensor*> by_offset;
  for (const NativeTensor& t : tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const NativeTensor* a, const NativeTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const NativeTensor& a = *by_offset[i - 1];
    const NativeTensor& b = *by_offset[i];
    if (b.offset < a.offset + a.bytes) {
      throw Error(fmt::format("{}: tensor '{}' (bytes {} to {}) overlaps tensor '{}' (bytes {} to {})", path,
                              io::printable(b.name), b.offset, b.offset + b.bytes, io::printable(a.name), a.offset,
                              a.offset + a.bytes));
    }
  }
}

// Every stored value is read once, spread over the kernel threads: this costs about what
// the page faults of the first token would, and that token then finds the pages mapped.
void check_finite(const std::string& path, const std::vector<NativeTensor>& tensors) {
  constexpr uint64_t kPieceBytes = uint64_t(1) << 20;
  struct Piece {
    uint32_t tensor;
    uint64_t begin, end;  // bytes of the tensor, on block boundaries
  };
  std::vector<Piece> pieces;
  for (uint32_t i = 0; i < tensors.size(); ++i) {
    const uint64_t block = dtype_block_bytes(tensors[i].dtype);
    const uint64_t step = std::max<uint64_t>(kPieceBytes / block, 1) * block;
    for (uint64_t b = 0; b < tensors[i].bytes; b += step) pieces.push_back({i, b, std::min(b + step, tensors[i].bytes)});
  }
  std::atomic<size_t> first_bad{pieces.size()};
  std::vector<uint64_t> bad_index(pieces.size(), kAllFinite);
  parallel_for(static_cast<uint32_t>(pieces.size()), 1, [&](uint32_t begin, uint32_t end) {
    for (uint32_t p = begin; p < end; ++p) {
      const Piece& piece = pieces[p];
      const NativeTensor& t = tensors[piece.tensor];
      bad_index[p] = find_non_finite(t.dtype, t.data + piece.begin, piece.end - piece.begin);
      if (bad_index[p] != kAllFinite) {
        size_t seen = first_bad.load();
        while (p < seen && !first_bad.compare_exchange_weak(seen, p)) {
        }
        return;
      }
    }
  });
  if (first_bad.load() == pieces.size()) return;
  const Piece& piece = pieces[first_bad.load()];
  const NativeTensor& t = tensors[piece.tensor];
  const uint64_t index = bad_index[first_bad.load()];
  if (dtype_is_blocked(t.dtype)) {
    throw Error(fmt::format("{}: tensor '{}' ({}) has a scale that is NaN or infinite, or overflows, in block {}", path,
                            io::printable(t.name), dtype_name(t.dtype),
                            piece.begin / dtype_block_bytes(t.dtype) + index));
  }
  throw Error(fmt::format("{}: tensor '{}' ({}) holds a NaN or infinite value at element {}", path,
                          io::printable(t.name), dtype_name(t.dtype),
                          piece.begin / dtype_block_bytes(t.dtype) + index));
}

}  // namespace

NativeFile read_native_file(const std::string& path) {
  NativeFile nf;
  nf.file = MappedFile(path, "the model file");
  const std::byte* base = nf.file.data();
  const size_t size = nf.file.size();
  if (size < kNativeHeaderBytes) {
    if (size >= 8 && std::memcmp(base, kNativeMagic, 8) != 0) {
      throw Error(fmt::format("{}: not an rwkv native model file (wrong magic)", path));
    }
    throw Error(fmt::format("{}: truncated: {} bytes, smaller than the {}-byte header", path, size, kNativeHeaderBytes));
  }
  if (std::memcmp(base, kNativeMagic, 8) != 0) {
    throw Error(fmt::format("{}: not an rwkv native model file (wrong magic; convert .pth checkpoints with "
                            "'rwkv-cli convert')",
                            path));
  }
  const uint32_t version = load_le<uint32_t>(base + 8);
  if (version == 1) {
    throw Error(fmt::format("{}: format version 1, written by an earlier build; convert the checkpoint again (this "
                            "build reads version {})",
                            path, kNativeFormatVersion));
  }
  if (version != kNativeFormatVersion) {
    throw Error(fmt::format("{}: unsupported format version {} (this build reads version {})", path, version,
                            kNativeFormatVersion));
  }
  const uint32_t header_bytes = load_le<uint32_t>(base + 12);
  if (header_bytes != kNativeHeaderBytes) {
    throw Error(fmt::format("{}: corrupt header: header size {} (expected {})", path, header_bytes, kNativeHeaderBytes));
  }
  char arch[9] = {};
  std::memcpy(arch, base + 16, 8);
  ModelInfo& info = nf.info;
  try {
    info.arch = parse_arch(arch);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path, e.what()));
  }
  info.n_layer = load_le<uint32_t>(base + 24);
  info.n_embd = load_le<uint32_t>(base + 28);
  info.n_vocab = load_le<uint32_t>(base + 32);
  info.n_head = load_le<uint32_t>(base + 36);
  info.head_size = load_le<uint32_t>(base + 40);
  info.n_ffn = load_le<uint32_t>(base + 44);
  const uint32_t tokenizer = load_le<uint32_t>(base + 48);
  if (tokenizer > static_cast<uint32_t>(TokenizerKind::NeoX)) {
    throw Error(fmt::format("{}: corrupt header: unknown tokenizer kind {}", path, tokenizer));
  }
  info.tokenizer = static_cast<TokenizerKind>(tokenizer);
  const uint32_t n_tensors = load_le<uint32_t>(base + 52);
  const uint64_t table_offset = load_le<uint64_t>(base + 56);
  const uint64_t table_bytes = load_le<uint64_t>(base + 64);
  const uint64_t data_offset = load_le<uint64_t>(base + 72);
  const uint64_t file_bytes = load_le<uint64_t>(base + 80);
  const uint64_t vocabulary_offset = load_le<uint64_t>(base + 88);
  const uint64_t vocabulary_bytes = load_le<uint64_t>(base + 96);

  if (file_bytes != size) {
    if (file_bytes > size) {
      throw Error(fmt::format("{}: truncated: the header records {} bytes but the file has {}", path, file_bytes, size));
    }
    throw Error(fmt::format("{}: corrupt: the header records {} bytes but the file has {}", path, file_bytes, size));
  }
  for (auto [name, value] : {std::pair{"n_layer", info.n_layer}, {"n_embd", info.n_embd}, {"n_vocab", info.n_vocab}}) {
    if (value == 0 || value > kMaxDim) {
      throw Error(fmt::format("{}: corrupt header: {} = {} (expected 1 to {})", path, name, value, kMaxDim));
    }
  }
  for (auto [name, value] : {std::pair{"n_head", info.n_head}, {"head_size", info.head_size}, {"n_ffn", info.n_ffn}}) {
    if (value > kMaxDim) {
      throw Error(fmt::format("{}: corrupt header: {} = {} is implausible (at most {})", path, name, value, kMaxDim));
    }
  }
  if (info.arch != Arch::V4 && (info.n_head == 0 || uint64_t(info.n_head) * info.head_size != info.n_embd)) {
    throw Error(fmt::format("{}: corrupt header: n_head {} x head_size {} != n_embd {}", path, info.n_head,
                            info.head_size, info.n_embd));
  }
  if (table_offset != kNativeHeaderBytes || table_bytes > size - table_offset || data_offset > size ||
      data_offset < table_offset + table_bytes) {
    throw Error(fmt::format("{}: corrupt header: tensor table at {} (+{} bytes) / data at {} outside the {}-byte file",
                            path, table_offset, table_bytes, data_offset, size));
  }
  if (n_tensors > table_bytes / 12) {
    throw Error(fmt::format("{}: corrupt header: {} tensors cannot fit a {}-byte table", path, n_tensors, table_bytes));
  }

  Reader reader(path, base, table_offset + table_bytes, table_offset);
  std::set<std::string> seen;
  nf.tensors.reserve(n_tensors);
  for (uint32_t i = 0; i < n_tensors; ++i) {
    NativeTensor t;
    const auto name_len = reader.read<uint16_t>("a tensor name length");
    t.name = reader.read_string(name_len, "a tensor name");
    const auto dtype = reader.read<uint8_t>("a tensor type");
    t.dtype = dtype_from_code(dtype, fmt::format("{}: tensor '{}'", path, io::printable(t.name)));
    const auto ndim = reader.read<uint8_t>("a tensor rank");
    if (ndim == 0 || ndim > 4) throw Error(fmt::format("{}: tensor '{}' has rank {}", path, io::printable(t.name), ndim));
    uint64_t numel = 1;
    for (uint8_t d = 0; d < ndim; ++d) {
      const auto dim = reader.read<uint64_t>("a tensor dimension");
      if (dim == 0 || dim > (uint64_t(1) << 32)) {
        throw Error(fmt::format("{}: tensor '{}' has dimension {} = {}", path, io::printable(t.name), d, dim));
      }
      if (numel > std::numeric_limits<uint64_t>::max() / dim) {
        throw Error(fmt::format("{}: tensor '{}' is too large", path, io::printable(t.name)));
      }
      numel *= dim;
      t.shape.push_back(dim);
    }
    t.offset = reader.read<uint64_t>("a tensor offset");
    t.bytes = reader.read<uint64_t>("a tensor size");
    // Block types store each row (last dimension) as whole blocks, the last one padded.
    const uint64_t expected_bytes = dtype_tensor_bytes(t.dtype, t.shape);
    if (expected_bytes == 0 || t.bytes != expected_bytes) {
      throw Error(fmt::format("{}: tensor '{}' records {} bytes, but [{}] {} values need {}", path, io::printable(t.name), t.bytes,
                              fmt::join(t.shape, ", "), dtype_name(t.dtype), expected_bytes));
    }
    if (t.offset % kTensorAlignment != 0) {
      throw Error(fmt::format("{}: tensor '{}' at offset {} is not {}-byte aligned", path, io::printable(t.name), t.offset,
                              kTensorAlignment));
    }
    if (t.offset < data_offset || t.offset > size || t.bytes > size - t.offset) {
      throw Error(fmt::format("{}: tensor '{}' ({} bytes at offset {}) lies outside the file's data ({} to {})", path,
                              io::printable(t.name), t.bytes, t.offset, data_offset, size));
    }
    if (!seen.insert(t.name).second) throw Error(fmt::format("{}: tensor '{}' appears twice", path, io::printable(t.name)));
    t.data = base + t.offset;
    nf.tensors.push_back(std::move(t));
  }
  check_no_overlap(path, nf.tensors);
  if (vocabulary_bytes > 0) {
    uint64_t tensors_end = data_offset;
    for (const NativeTensor& t : nf.tensors) tensors_end = std::max(tensors_end, t.offset + t.bytes);
    if (info.tokenizer != TokenizerKind::World || vocabulary_offset < tensors_end || vocabulary_offset > size ||
        vocabulary_bytes > size - vocabulary_offset) {
      throw Error(fmt::format("{}: corrupt header: embedded vocabulary of {} bytes at {} (expected a World model's, "
                              "after the tensors, which end at {}, inside the {}-byte file)",
                              path, vocabulary_bytes, vocabulary_offset, tensors_end, size));
    }
    nf.vocabulary = std::string_view(reinterpret_cast<const char*>(base + vocabulary_offset), vocabulary_bytes);
  }
  check_finite(path, nf.tensors);
  return nf;
}

uint64_t TensorPlan::bytes() const { return dtype_tensor_bytes(dtype, shape); }

void write_native_file(const std::string& path, const ModelInfo& info, const std::vector<TensorPlan>& plan,
                       const TensorProducer& produce, std::string_view vocabulary) {
  auto align = [](uint64_t x) { return (x + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment; };
  uint64_t table_bytes = 0;
  for (const TensorPlan& t : plan) {
    if (t.name.size() > std::numeric_limits<uint16_t>::max()) throw Error("tensor name too long: " + t.name);
    table_bytes += 2 + t.name.size() + 2 + 8 * t.shape.size() + 16;
  }
  const uint64_t table_offset = kNativeHeaderBytes;
  const uint64_t data_offset = align(table_offset + table_bytes);
  std::vector<uint64_t> offsets;
  uint64_t end = data_offset;
  for (const TensorPlan& t : plan) {
    offsets.push_back(align(end));
    end = offsets.back() + t.bytes();
  }

  std::vector<std::byte> head(kNativeHeaderBytes, std::byte{0});
  std::memcpy(head.data(), kNativeMagic, 8);
  auto put32 = [&](size_t at, uint32_t v) { std::memcpy(head.data() + at, &v, 4); };
  auto put64 = [&](size_t at, uint64_t v) { std::memcpy(head.data() + at, &v, 8); };
  put32(8, kNativeFormatVersion);
  put32(12, kNativeHeaderBytes);
  const char* arch = arch_name(info.arch);
  std::memcpy(head.data() + 16, arch, std::strlen(arch));
  put32(24, info.n_layer);
  put32(28, info.n_embd);
  put32(32, info.n_vocab);
  put32(36, info.n_head);
  put32(40, info.head_size);
  put32(44, info.n_ffn);
  put32(48, static_cast<uint32_t>(info.tokenizer));
  put32(52, static_cast<uint32_t>(plan.size()));
  put64(56, table_offset);
  put64(64, table_bytes);
  put64(72, data_offset);
  const uint64_t vocabulary_offset = end;
  if (!vocabulary.empty()) end += vocabulary.size();
  put64(80, end);
  put64(88, vocabulary.empty() ? 0 : vocabulary_offset);
  put64(96, vocabulary.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    const TensorPlan& t = plan[i];
    append_le<uint16_t>(head, static_cast<uint16_t>(t.name.size()));
    const auto* name = reinterpret_cast<const std::byte*>(t.name.data());
    head.insert(head.end(), name, name + t.name.size());
    append_le<uint8_t>(head, static_cast<uint8_t>(t.dtype));
    append_le<uint8_t>(head, static_cast<uint8_t>(t.shape.size()));
    for (uint64_t d : t.shape) append_le<uint64_t>(head, d);
    append_le<uint64_t>(head, offsets[i]);
    append_le<uint64_t>(head, t.bytes());
  }

  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw Error(fmt::format("{}: cannot create: {}", tmp, std::strerror(errno)));
  auto fail = [&](const std::string& why) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw Error(fmt::format("{}: {}", path, why));
  };
  auto write = [&](const void* p, size_t n) {
    if (std::fwrite(p, 1, n, f) != n) fail(fmt::format("write failed: {}", std::strerror(errno)));
  };
  static const std::byte zeros[kTensorAlignment] = {};
  uint64_t pos = 0;
  write(head.data(), head.size());
  pos = head.size();
  for (size_t i = 0; i < plan.size(); ++i) {
    std::vector<std::byte> bytes;
    try {
      bytes = produce(i);
    } catch (...) {
      std::fclose(f);
      std::remove(tmp.c_str());
      throw;
    }
    if (bytes.size() != plan[i].bytes()) {
      fail(fmt::format("tensor '{}' produced {} bytes, expected {}", plan[i].name, bytes.size(), plan[i].bytes()));
    }
    write(zeros, offsets[i] - pos);
    write(bytes.data(), bytes.size());
    pos = offsets[i] + bytes.size();
  }
  if (!vocabulary.empty()) write(vocabulary.data(), vocabulary.size());
  if (std::fflush(f) != 0 || ::fsync(::fileno(f)) != 0) fail(fmt::format("write failed: {}", std::strerror(errno)));
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    throw Error(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(fmt::format("{}: cannot rename {} into place: {}", path, tmp, ec.message()));
  }
}

}  // namespace rwkv
