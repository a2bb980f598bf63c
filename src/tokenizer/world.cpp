// The RWKV World tokenizer: greedy longest match over bytes against rwkv_vocab_v20230424.txt.
// Reference: BlinkDL/ChatRWKV rwkv_pip_package/src/rwkv/rwkv_tokenizer.py (TRIE_TOKENIZER).
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "io/printable.hpp"
#include "rwkv/error.hpp"
#include "tokenizer/byte_trie.hpp"
#include "tokenizer/python_literal.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace rwkv::detail {
namespace {

constexpr int32_t kWorldVocabSize = 65536;  // ids 1..65529 in the file, 0 = end of text
constexpr std::string_view kEndOfText = "<|endoftext|>";

class WorldTokenizer final : public Tokenizer {
 public:
  WorldTokenizer(const std::string& path, std::string_view file);

  TokenizerKind kind() const override { return TokenizerKind::World; }
  int32_t vocab_size() const override { return kWorldVocabSize; }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 1);
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    size_t pos = 0;
    while (pos < text.size()) {
      auto [len, id] = trie_.longest_prefix(p + pos, text.size() - pos);
      if (id < 0) {
        throw Error(fmt::format("world tokenizer: byte 0x{:02x} at offset {} has no token in '{}'", p[pos], pos,
                                path_));
      }
      ids.push_back(id);
      pos += len;
    }
    return ids;
  }

  std::string_view token_bytes(int32_t id, bool keep_special) const override {
    if (id == 0) return keep_special ? kEndOfText : std::string_view();
    if (id < 0 || id >= kWorldVocabSize || length_[id] == 0) {
      throw_bad_id(TokenizerKind::World, id, fmt::format("not in '{}'; 0 is end of text", path_));
    }
    return std::string_view(blob_).substr(offset_[id], length_[id]);
  }

 private:
  std::string path_;
  std::string blob_;               // all token bytes, back to back
  std::vector<uint32_t> offset_;   // (vocab) start of each token in blob_
  std::vector<uint32_t> length_;   // (vocab) 0 for ids not in the file
  ByteTrie trie_;
};

std::optional<int64_t> parse_decimal(std::string_view s) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

WorldTokenizer::WorldTokenizer(const std::string& path, std::string_view file)
    : path_(path), offset_(kWorldVocabSize, 0), length_(kWorldVocabSize, 0) {
  std::vector<uint32_t> line_of_id(kWorldVocabSize, 0);
  std::vector<int32_t> ids;
  blob_.reserve(file.size() / 2);
  size_t line_start = 0;
  for (uint32_t line_no = 1; line_start < file.size(); ++line_no) {
    size_t line_end = file.find('\n', line_start);
    if (line_end == std::string::npos) line_end = file.size();
    std::string_view line(file.data() + line_start, line_end - line_start);
    line_start = line_end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto fail = [&](const std::string& what) -> Error {
      return Error(fmt::format("{}:{}: {}", path, line_no, what));
    };
    size_t first_space = line.find(' ');
    size_t last_space = line.rfind(' ');
    if (first_space == std::string_view::npos || last_space == first_space) {
      throw fail("expected '<id> <Python string or bytes literal> <byte length>'");
    }
    std::optional<int64_t> id = parse_decimal(line.substr(0, first_space));
    if (!id || *id < 1 || *id >= kWorldVocabSize) {
      throw fail(fmt::format("bad token id '{}' (expected 1..{})", io::printable(line.substr(0, first_space)),
                             kWorldVocabSize - 1));
    }
    std::optional<int64_t> length = parse_decimal(line.substr(last_space + 1));
    if (!length || *length < 1) {
      throw fail(fmt::format("bad byte length '{}'", io::printable(line.substr(last_space + 1))));
    }
    if (*length > static_cast<int64_t>(kMaxTokenBytes)) {
      throw fail(fmt::format("token {} is {} bytes long, more than the {} a token may have", *id, *length,
                             kMaxTokenBytes));
    }
    std::string bytes;
    try {
      bytes = parse_python_literal(line.substr(first_space + 1, last_space - first_space - 1));
    } catch (const Error& e) {
      throw fail(e.what());
    }
    if (static_cast<int64_t>(bytes.size()) != *length) {
      throw fail(fmt::format("the literal is {} bytes but the line says {}", bytes.size(), *length));
    }
    if (line_of_id[*id] != 0) throw fail(fmt::format("token id {} already defined on line {}", *id, line_of_id[*id]));
    line_of_id[*id] = line_no;
    offset_[*id] = static_cast<uint32_t>(blob_.size());
    length_[*id] = static_cast<uint32_t>(bytes.size());
    blob_ += bytes;
    ids.push_back(static_cast<int32_t>(*id));
  }
  if (ids.empty()) throw Error(fmt::format("{}: no tokens in the World vocabulary file", path));

  auto key = [&](int32_t id) { return std::string_view(blob_).substr(offset_[id], length_[id]); };
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return key(a) < key(b); });
  std::vector<std::string_view> keys;
  keys.reserve(ids.size());
  for (int32_t id : ids) keys.push_back(key(id));
  for (size_t k = 1; k < keys.size(); ++k) {
    if (keys[k] == keys[k - 1]) {
      int32_t a = ids[k - 1], b = ids[k];
      throw Error(fmt::format("{}:{}: token {} has the same bytes as token {} on line {}", path,
                              line_of_id[std::max(a, b)], std::max(a, b), std::min(a, b), line_of_id[std::min(a, b)]));
    }
  }
  trie_.build(keys, ids);
}

}  // namespace

std::unique_ptr<Tokenizer> load_world_tokenizer(const std::string& path) {
  return std::make_unique<WorldTokenizer>(path, read_whole_file(path, "World vocabulary"));
}

std::unique_ptr<Tokenizer> load_world_tokenizer_text(const std::string& name, std::string_view text) {
  if (text.size() > kMaxVocabFileBytes) {
    throw Error(fmt::format("{}: World vocabulary of {} bytes, more than the {} allowed", name, text.size(),
                            kMaxVocabFileBytes));
  }
  return std::make_unique<WorldTokenizer>(name, text);
}

}  // namespace rwkv::detail
