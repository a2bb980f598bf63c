// Tokenizers for RWKV models: raw bytes, the RWKV World vocabulary and GPT-NeoX 20B BPE.
#pragma once

#include <string>
#include <string_view>

namespace rwkv {

// Which tokenizer a model was trained with; recorded in the native model file.
enum class TokenizerKind : unsigned { Bytes = 0, World = 1, NeoX = 2 };

// "bytes", "world", "neox".
const char* tokenizer_kind_name(TokenizerKind kind);
// Inverse of tokenizer_kind_name; throws rwkv::Error for an unknown name.
TokenizerKind parse_tokenizer_kind(std::string_view name);

}  // namespace rwkv
