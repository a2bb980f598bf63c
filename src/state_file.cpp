#include "rwkv/state_file.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "convert/pth_checkpoint.hpp"
#include "io/files.hpp"
#include "io/printable.hpp"
#include "rwkv/error.hpp"

namespace rwkv {

namespace {

constexpr char kMagic[8] = {'R', 'W', 'K', 'V', 'S', 'T', 'A', 'T'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 64;
// States of released models are at most about 100 MB (14B RWKV-7: 82 MB).
constexpr uint64_t kMaxStateFileBytes = uint64_t(1) << 30;

// FNV-1a: enough to notice a damaged file; this is not a security boundary.
uint64_t checksum(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

struct Header {
  char arch[8] = {};
  uint32_t n_layer = 0, n_embd = 0, n_head = 0, head_size = 0, floats_per_layer = 0;
};

Header header_for(const Model& model, const State& state) {
  Header h;
  std::strncpy(h.arch, arch_name(model.info().arch), sizeof(h.arch));
  h.n_layer = model.info().n_layer;
  h.n_embd = model.info().n_embd;
  h.n_head = model.info().n_head;
  h.head_size = model.info().head_size;
  h.floats_per_layer = state.floats_per_layer;
  return h;
}

}  // namespace

std::string state_to_bytes(const Model& model, const State& state) {
  const State reference = model.new_state();
  if (state.floats_per_layer != reference.floats_per_layer || state.data.size() != reference.data.size()) {
    throw Error(fmt::format("the state does not belong to {}", model.path()));
  }
  const Header h = header_for(model, state);
  std::string bytes(kHeaderBytes, '\0');
  std::memcpy(bytes.data(), kMagic, 8);
  auto put32 = [&](size_t at, uint32_t v) { std::memcpy(bytes.data() + at, &v, 4); };
  put32(8, kVersion);
  std::memcpy(bytes.data() + 12, h.arch, 8);
  put32(20, h.n_layer);
  put32(24, h.n_embd);
  put32(28, h.n_head);
  put32(32, h.head_size);
  put32(36, h.floats_per_layer);
  const uint64_t n = state.data.size();
  std::memcpy(bytes.data() + 40, &n, 8);
  const uint64_t sum = checksum(state.data.data(), n * sizeof(float));
  std::memcpy(bytes.data() + 48, &sum, 8);
  bytes.append(reinterpret_cast<const char*>(state.data.data()), n * sizeof(float));
  return bytes;
}

void save_state(const std::string& path, const Model& model, const State& state) {
  std::string bytes;
  try {
    bytes = state_to_bytes(model, state);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path, e.what()));
  }
  io::write_file_replacing(path, "the state file", bytes);
}

State load_state(const std::string& path, const Model& model) {
  return state_from_bytes(io::read_regular_file(path, "the state file", kMaxStateFileBytes), model, path);
}

State state_from_bytes(std::string_view bytes, const Model& model, const std::string& path) {
  if (bytes.size() > kMaxStateFileBytes) {
    throw Error(fmt::format("{}: {} bytes, more than a state file may hold ({})", path, bytes.size(),
                            kMaxStateFileBytes));
  }
  if (bytes.size() < kHeaderBytes || std::memcmp(bytes.data(), kMagic, 8) != 0) {
    throw Error(fmt::format("{}: not an rwkv state file", path));
  }
  auto get32 = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    return v;
  };
  if (get32(8) != kVersion) {
    throw Error(fmt::format("{}: unsupported state file version {} (this build reads {})", path, get32(8), kVersion));
  }
  State state = model.new_state();
  const Header want = header_for(model, state);
  Header got;
  std::memcpy(got.arch, bytes.data() + 12, 8);
  got.n_layer = get32(20);
  got.n_embd = get32(24);
  got.n_head = get32(28);
  got.head_size = get32(32);
  got.floats_per_layer = get32(36);
  if (std::memcmp(got.arch, want.arch, 8) != 0 || got.n_layer != want.n_layer || got.n_embd != want.n_embd ||
      got.n_head != want.n_head || got.head_size != want.head_size || got.floats_per_layer != want.floats_per_layer) {
    throw Error(fmt::format("{}: the state was saved for another model (RWKV {}, {} layers, n_embd {}, {} heads); "
                            "{} is RWKV {}, {} layers, n_embd {}, {} heads",
                            path, io::printable(std::string_view(got.arch, strnlen(got.arch, 8))), got.n_layer, got.n_embd, got.n_head,
                            model.path(), want.arch, want.n_layer, want.n_embd, want.n_head));
  }
  uint64_t n, sum;
  std::memcpy(&n, bytes.data() + 40, 8);
  std::memcpy(&sum, bytes.data() + 48, 8);
  if (n != state.data.size() || bytes.size() != kHeaderBytes + n * sizeof(float)) {
    throw Error(fmt::format("{}: truncated or corrupt: {} bytes for {} floats", path, bytes.size(), n));
  }
  std::memcpy(state.data.data(), bytes.data() + kHeaderBytes, n * sizeof(float));
  if (checksum(state.data.data(), n * sizeof(float)) != sum) {
    throw Error(fmt::format("{}: corrupt: checksum mismatch", path));
  }
  return state;
}

State load_tuned_state(const std::string& pth_path, const Model& model) {
  const ModelInfo& info = model.info();
  if (info.arch == Arch::V4) {
    throw Error(fmt::format("{}: state tuning applies to RWKV 5, 6 and 7; {} is RWKV 4", pth_path, model.path()));
  }
  const auto ckpt = convert::PthCheckpoint::open(pth_path);
  State state = model.new_state();
  const uint32_t H = info.n_head, N = info.head_size, C = info.n_embd;
  for (uint32_t layer = 0; layer < info.n_layer; ++layer) {
    const std::string name = fmt::format("blocks.{}.att.time_state", layer);
    const convert::PthTensor* t = ckpt.find(name);
    if (t == nullptr) throw Error(fmt::format("{}: missing tensor '{}'", pth_path, name));
    if (t->shape != std::vector<int64_t>{H, N, N}) {
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected [{}, {}, {}] for {}", pth_path, name,
                              fmt::join(t->shape, ", "), H, N, N, model.path()));
    }
    const std::vector<float> values = t->to_float();
    float* kv = state.layer(layer).data() + C;  // att_kv follows att_x in every version with heads
    for (uint32_t h = 0; h < H; ++h) {
      for (uint32_t i = 0; i < N; ++i) {
        for (uint32_t j = 0; j < N; ++j) kv[(size_t(h) * N + i) * N + j] = values[(size_t(h) * N + j) * N + i];
      }
    }
  }
  return state;
}

}  // namespace rwkv
