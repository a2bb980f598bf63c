// What a model is: its architecture and sizes. Kept apart from model.hpp so that the
// parts of the library that describe or convert models need not see the Model class.
#pragma once

#include <cstdint>
#include <string_view>

#include "rwkv/tokenizer.hpp"

namespace rwkv {

// The model's architecture, named as the official code names it.
enum class Arch : uint32_t { V4, V5_0, V5_1, V5_2, V6_0, V7_0 };

// "4", "5.0", "5.1", "5.2", "6.0", "7.0".
const char* arch_name(Arch arch);
// Inverse of arch_name; throws rwkv::Error for an unknown name.
Arch parse_arch(std::string_view name);

struct ModelInfo {
  Arch arch = Arch::V7_0;
  uint32_t n_layer = 0;
  uint32_t n_embd = 0;
  uint32_t n_vocab = 0;
  uint32_t n_head = 0;     // 0 for v4, which has no heads
  uint32_t head_size = 0;  // 0 for v4
  uint32_t n_ffn = 0;      // rows of ffn.key
  TokenizerKind tokenizer = TokenizerKind::Bytes;
};

}  // namespace rwkv
