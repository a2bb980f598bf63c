// Internal: constructors of the three tokenizers and helpers they share.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "rwkv/tokenizer.hpp"

namespace rwkv::detail {

std::unique_ptr<Tokenizer> make_bytes_tokenizer();
std::unique_ptr<Tokenizer> load_world_tokenizer(const std::string& path);
// A World vocabulary given as its text; `name` stands for its file in messages.
std::unique_ptr<Tokenizer> load_world_tokenizer_text(const std::string& name, std::string_view text);
std::unique_ptr<Tokenizer> load_neox_tokenizer(const std::string& path);

// Vocabulary files are a few MB (the World vocabulary 1 MB, large tokenizer.json files
// about 10 MB); anything far beyond is not one.
inline constexpr uint64_t kMaxVocabFileBytes = uint64_t(256) << 20;
// The longest token a vocabulary may define (the World vocabulary's longest is 128 bytes).
inline constexpr size_t kMaxTokenBytes = 1024;

// The whole file, at most kMaxVocabFileBytes; throws rwkv::Error naming `what` and the
// path when it cannot be read or is not a regular file.
std::string read_whole_file(const std::string& path, std::string_view what);

// Throws rwkv::Error: "<kind> tokenizer: token id <id> is out of range (<valid>)".
[[noreturn]] void throw_bad_id(TokenizerKind kind, int64_t id, std::string_view valid);

// Appends the valid UTF-8 of `bytes` to `out`, replacing maximal invalid subparts by U+FFFD,
// and stops before an incomplete sequence at the end; returns the bytes consumed.
size_t append_utf8_lossy(std::string_view bytes, std::string& out);

}  // namespace rwkv::detail
