#include <fmt/format.h>

#include "rwkv/error.hpp"
#include "rwkv/tokenizer.hpp"

namespace rwkv {
namespace {

struct KindInfo {
  TokenizerKind kind;
  const char* name;
  const char* vocab_filename;
};

constexpr KindInfo kKinds[] = {
    {TokenizerKind::Bytes, "bytes", ""},
    {TokenizerKind::World, "world", "rwkv_vocab_v20230424.txt"},
    {TokenizerKind::NeoX, "neox", "20B_tokenizer.json"},
};

const KindInfo* find_kind(TokenizerKind kind) {
  for (const KindInfo& k : kKinds) {
    if (k.kind == kind) return &k;
  }
  return nullptr;
}

}  // namespace

const char* tokenizer_kind_name(TokenizerKind kind) {
  const KindInfo* k = find_kind(kind);
  return k ? k->name : "unknown";
}

const char* default_vocab_filename(TokenizerKind kind) {
  const KindInfo* k = find_kind(kind);
  return k ? k->vocab_filename : "";
}

TokenizerKind parse_tokenizer_kind(std::string_view name) {
  for (const KindInfo& k : kKinds) {
    if (name == k.name) return k.kind;
  }
  throw Error(fmt::format("unknown tokenizer '{}': expected bytes, world or neox", name));
}

}  // namespace rwkv
