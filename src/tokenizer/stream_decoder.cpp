#include "rwkv/tokenizer.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/utf8.hpp"

namespace rwkv {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool keep_special)
    : tokenizer_(tokenizer), keep_special_(keep_special) {}

std::string StreamDecoder::push(int32_t id) {
  std::string_view bytes = tokenizer_.token_bytes(id, keep_special_);
  std::string out;
  if (pending_.empty()) {
    size_t used = detail::append_utf8_lossy(bytes, out);
    pending_.assign(bytes.substr(used));
    return out;
  }
  pending_ += bytes;
  size_t used = detail::append_utf8_lossy(pending_, out);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  if (!pending_.empty()) out = utf8::kReplacement;
  pending_.clear();
  return out;
}

}  // namespace rwkv
