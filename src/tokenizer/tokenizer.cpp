#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "io/files.hpp"
#include "rwkv/error.hpp"
#include "rwkv/tokenizer.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/utf8.hpp"

namespace rwkv {

std::string Tokenizer::decode(std::span<const int32_t> ids, bool keep_special) const {
  std::string out;
  out.reserve(ids.size() * 4);
  for (int32_t id : ids) out += token_bytes(id, keep_special);
  return out;
}

std::unique_ptr<Tokenizer> load_tokenizer(TokenizerKind kind, const std::string& vocab_path) {
  switch (kind) {
    case TokenizerKind::Bytes: return detail::make_bytes_tokenizer();
    case TokenizerKind::World: return detail::load_world_tokenizer(vocab_path);
    case TokenizerKind::NeoX: return detail::load_neox_tokenizer(vocab_path);
  }
  throw Error(fmt::format("unknown tokenizer kind {}", static_cast<unsigned>(kind)));
}

std::unique_ptr<Tokenizer> load_world_tokenizer_text(const std::string& name, std::string_view text) {
  return detail::load_world_tokenizer_text(name, text);
}

std::string utf8_replace_invalid(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t used = detail::append_utf8_lossy(bytes, out);
  if (used < bytes.size()) out += utf8::kReplacement;
  return out;
}

namespace detail {

std::string read_whole_file(const std::string& path, std::string_view what) {
  return io::read_regular_file(path, what, kMaxVocabFileBytes);
}

void throw_bad_id(TokenizerKind kind, int64_t id, std::string_view valid) {
  throw Error(fmt::format("{} tokenizer: token id {} is out of range ({})", tokenizer_kind_name(kind), id, valid));
}

size_t append_utf8_lossy(std::string_view bytes, std::string& out) {
  size_t i = 0;
  while (i < bytes.size()) {
    size_t ascii = i;
    while (ascii < bytes.size() && static_cast<unsigned char>(bytes[ascii]) < 0x80) ++ascii;
    out.append(bytes.data() + i, ascii - i);
    i = ascii;
    if (i == bytes.size()) break;
    utf8::Step st = utf8::step(bytes.substr(i));
    if (st.status == utf8::Status::Incomplete) return i;
    if (st.status == utf8::Status::Complete) {
      out.append(bytes.data() + i, st.length);
    } else {
      out += utf8::kReplacement;
    }
    i += st.length;
  }
  return i;
}

}  // namespace detail
}  // namespace rwkv
