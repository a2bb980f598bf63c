#include <fmt/format.h>

#include "rwkv/error.hpp"
#include "rwkv/tokenizer.hpp"

namespace rwkv {

const char* tokenizer_kind_name(TokenizerKind kind) {
  switch (kind) {
    case TokenizerKind::Bytes: return "bytes";
    case TokenizerKind::World: return "world";
    case TokenizerKind::NeoX: return "neox";
  }
  return "unknown";
}

TokenizerKind parse_tokenizer_kind(std::string_view name) {
  if (name == "bytes") return TokenizerKind::Bytes;
  if (name == "world") return TokenizerKind::World;
  if (name == "neox") return TokenizerKind::NeoX;
  throw Error(fmt::format("unknown tokenizer '{}': expected bytes, world or neox", name));
}

}  // namespace rwkv
