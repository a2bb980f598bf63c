// Tokenizers for RWKV models: raw bytes, the RWKV World vocabulary and GPT-NeoX 20B BPE.
//
//   auto tok = rwkv::load_tokenizer(rwkv::TokenizerKind::World, "rwkv_vocab_v20230424.txt");
//   std::vector<int32_t> ids = tok->encode("Hello, world!");   // {33155, 45, 40213, 34}
//   std::string text = tok->decode(ids);                       // "Hello, world!"
//
//   rwkv::StreamDecoder stream(*tok);                  // while generating:
//   for (int32_t id : ids) std::cout << stream.push(id);  // only whole UTF-8 characters
//   std::cout << stream.flush();                         // what is left at the end
//
// A loaded Tokenizer is immutable: one instance may be used from several threads.
// Every function reports errors by throwing rwkv::Error with the file and line, or the id.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rwkv {

// Which tokenizer a model was trained with; recorded in the native model file.
enum class TokenizerKind : unsigned { Bytes = 0, World = 1, NeoX = 2 };

// "bytes", "world", "neox".
const char* tokenizer_kind_name(TokenizerKind kind);
// Inverse of tokenizer_kind_name; throws rwkv::Error for an unknown name.
TokenizerKind parse_tokenizer_kind(std::string_view name);

// The usual file name of a kind's vocabulary: "rwkv_vocab_v20230424.txt" (World),
// "20B_tokenizer.json" (NeoX), "" (Bytes needs no file).
const char* default_vocab_filename(TokenizerKind kind);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual TokenizerKind kind() const = 0;

  // Number of ids: valid ids are 0 .. vocab_size()-1 (some of them may be unused:
  // World ids 65530..65535). Bytes: 256, World: 65536, NeoX: 50277.
  virtual int32_t vocab_size() const = 0;

  // Text (UTF-8 bytes) to ids. World and Bytes accept any bytes; NeoX requires valid
  // UTF-8 (it normalizes to NFC) and throws rwkv::Error naming the offset otherwise.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;

  // The bytes of one token. Special tokens (NeoX <|endoftext|> = 0 and <|padding|> = 1,
  // World 0 = end of text) give "" unless keep_special, then their text.
  // Throws rwkv::Error naming the id when it is not in the vocabulary.
  virtual std::string_view token_bytes(int32_t id, bool keep_special = false) const = 0;

  // Ids to bytes: the concatenation of token_bytes. The result is exactly the bytes the
  // tokens stand for and need not be valid UTF-8 (a World token may hold part of a
  // character); use StreamDecoder for text that is always valid UTF-8.
  std::string decode(std::span<const int32_t> ids, bool keep_special = false) const;
};

// Loads a tokenizer. `vocab_path` is the World vocabulary file or the NeoX tokenizer.json;
// it is ignored for Bytes. Throws rwkv::Error naming the file (and line) on any problem.
std::unique_ptr<Tokenizer> load_tokenizer(TokenizerKind kind, const std::string& vocab_path);

// A World tokenizer from the text of a vocabulary file (as Model::embedded_vocabulary
// gives it); `name` stands for the file in error messages.
std::unique_ptr<Tokenizer> load_world_tokenizer_text(const std::string& name, std::string_view text);

// Turns ids into text as they arrive, never emitting part of a UTF-8 character.
//
// Rule: bytes are held back only while they are a proper prefix of a valid UTF-8
// sequence. Bytes that can never become valid are replaced by U+FFFD, one per maximal
// invalid subpart (as Python's bytes.decode("utf-8", errors="replace") does), and
// flush() emits an incomplete sequence left at the end as one U+FFFD. So the
// concatenated output of push() and flush() is always valid UTF-8 and equals the lossy
// UTF-8 decoding of Tokenizer::decode(ids); for valid text it is exactly that text.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool keep_special = false);

  // Adds one id; returns the text that is now complete (possibly "").
  std::string push(int32_t id);
  // Returns the held-back bytes under the rule above and starts over.
  std::string flush();
  // Bytes currently held back (0 to 3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  bool keep_special_;
  std::string pending_;
};

// Lossy UTF-8: every maximal invalid subpart of `bytes` becomes U+FFFD (the rule above).
std::string utf8_replace_invalid(std::string_view bytes);

}  // namespace rwkv
