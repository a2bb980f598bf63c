// libFuzzer target: the NeoX tokenizer.json reader, then encoding and decoding with it.
#include <cstddef>
#include <cstdint>

#include "fuzz_support.hpp"
#include "rwkv/error.hpp"
#include "rwkv/tokenizer.hpp"
#include "tokenizer_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const rwkv_fuzz::MemFile file(data, size);
  std::unique_ptr<rwkv::Tokenizer> tok;
  try {
    tok = rwkv::load_tokenizer(rwkv::TokenizerKind::NeoX, file.path());
  } catch (const rwkv::Error&) {
    return 0;
  }
  rwkv_fuzz::exercise_tokenizer(*tok, data, size, /*exact_round_trip=*/false);
  return 0;
}
