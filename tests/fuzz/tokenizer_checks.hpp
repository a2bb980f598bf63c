// What the tokenizer targets do with a vocabulary that loaded: encode and decode a few
// bytes of the input itself (so the text tends to use the vocabulary's own tokens) and
// check the promises of include/rwkv/tokenizer.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "rwkv/error.hpp"
#include "rwkv/tokenizer.hpp"

namespace rwkv_fuzz {

// At most this many bytes are encoded: enough to reach multi-token paths, small enough
// that a large vocabulary input still runs quickly.
inline constexpr size_t kTextBytes = 64;

// Streamed decoding equals the lossy decoding of the whole (the StreamDecoder rule).
inline void check_stream_decoder(const rwkv::Tokenizer& tok, const std::vector<int32_t>& ids, bool keep_special) {
  rwkv::StreamDecoder stream(tok, keep_special);
  std::string streamed;
  for (int32_t id : ids) {
    streamed += stream.push(id);
    if (stream.pending_bytes() > 3) property_failed("StreamDecoder holds back more than 3 bytes");
  }
  streamed += stream.flush();
  if (streamed != rwkv::utf8_replace_invalid(tok.decode(ids, keep_special))) {
    property_failed("StreamDecoder output differs from utf8_replace_invalid(decode(ids))");
  }
}

// `exact_round_trip`: decode(encode(text)) == text (World: greedy matching covers every
// byte; NeoX normalizes to NFC first, so it does not promise this).
inline void exercise_tokenizer(const rwkv::Tokenizer& tok, const uint8_t* data, size_t size, bool exact_round_trip) {
  // The tail of the file rather than its head: the head is mostly syntax (ids, quotes,
  // JSON keys) while the tail of a mutated vocabulary is as likely to be token text.
  const size_t n = std::min(size, kTextBytes);
  const std::string_view text(reinterpret_cast<const char*>(data + size - n), n);
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text);
  } catch (const rwkv::Error&) {
    ids.clear();  // a byte the vocabulary cannot spell, or (NeoX) invalid UTF-8: expected
  }
  for (int32_t id : ids) {
    if (id < 0 || id >= tok.vocab_size()) property_failed("encode returned an id outside 0..vocab_size()-1");
  }
  if (!ids.empty() || text.empty()) {
    const std::string decoded = tok.decode(ids, /*keep_special=*/false);
    if (exact_round_trip && decoded != text) property_failed("decode(encode(text)) != text");
    check_stream_decoder(tok, ids, false);
    check_stream_decoder(tok, ids, true);
  }
  // Ids read from the input bytes: in or out of range, used or not.
  for (size_t i = 0; i + 1 < std::min<size_t>(size, 16); i += 2) {
    const int32_t id = static_cast<int32_t>(data[i] | (data[i + 1] << 8)) - 8;
    try {
      (void)tok.token_bytes(id, (data[i] & 1) != 0);
    } catch (const rwkv::Error&) {
      // an id the vocabulary does not have: expected
    }
  }
}

// One fuzz input as a vocabulary file of `kind`: loading may fail with rwkv::Error;
// a tokenizer that loads must then encode and decode correctly.
inline int fuzz_vocabulary_file(rwkv::TokenizerKind kind, const uint8_t* data, size_t size, bool exact_round_trip) {
  const MemFile file(data, size);
  std::unique_ptr<rwkv::Tokenizer> tok;
  try {
    tok = rwkv::load_tokenizer(kind, file.path());
  } catch (const rwkv::Error&) {
    return 0;
  }
  exercise_tokenizer(*tok, data, size, exact_round_trip);
  return 0;
}

}  // namespace rwkv_fuzz
