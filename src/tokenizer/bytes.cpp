#include <array>

#include "rwkv/tokenizer.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace rwkv::detail {
namespace {

// Id b is the byte b: the tokenizer of the tiny test models.
class BytesTokenizer final : public Tokenizer {
 public:
  BytesTokenizer() {
    for (int b = 0; b < 256; ++b) bytes_[b] = static_cast<char>(b);
  }
  TokenizerKind kind() const override { return TokenizerKind::Bytes; }
  int32_t vocab_size() const override { return 256; }
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }
  std::string_view token_bytes(int32_t id, bool) const override {
    if (id < 0 || id > 255) throw_bad_id(TokenizerKind::Bytes, id, "0..255");
    return {&bytes_[id], 1};
  }

 private:
  std::array<char, 256> bytes_{};
};

}  // namespace

std::unique_ptr<Tokenizer> make_bytes_tokenizer() { return std::make_unique<BytesTokenizer>(); }

}  // namespace rwkv::detail
