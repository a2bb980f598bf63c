// libFuzzer target: the NeoX tokenizer.json reader, then encoding and decoding with it.
#include <cstddef>
#include <cstdint>

#include "tokenizer_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return rwkv_fuzz::fuzz_vocabulary_file(rwkv::TokenizerKind::NeoX, data, size, /*exact_round_trip=*/false);
}
