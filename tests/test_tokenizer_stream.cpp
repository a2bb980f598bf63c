// StreamDecoder: characters split across tokens, invalid bytes, the flush rule; and the
// Bytes tokenizer it is easiest to drive byte by byte.
#include <gtest/gtest.h>

#include <random>

#include "tokenizer_test_support.hpp"

namespace {

using rwkv_test::error_of;
using rwkv_test::stream_pieces;
using Ids = std::vector<int32_t>;
using Pieces = std::vector<std::string>;

const std::string kFFFD = "\xEF\xBF\xBD";

Ids byte_ids(std::string_view bytes) {
  Ids ids;
  for (char c : bytes) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

TEST(TokenizerBytes, Identity) {
  auto tok = rwkv::load_tokenizer(rwkv::TokenizerKind::Bytes, "ignored");
  EXPECT_EQ(tok->vocab_size(), 256);
  const std::string raw("a\0\xFF\xC3", 4);
  EXPECT_EQ(tok->encode(raw), (Ids{97, 0, 255, 195}));
  EXPECT_EQ(tok->decode(tok->encode(raw)), raw);
  EXPECT_NE(error_of([&] { tok->decode(Ids{256}); }).find("token id 256 is out of range (0..255)"), std::string::npos);
  EXPECT_NE(error_of([&] { tok->decode(Ids{-1}); }).find("token id -1"), std::string::npos);
}

TEST(TokenizerStream, HoldsBackSplitCharacters) {
  auto tok = rwkv::load_tokenizer(rwkv::TokenizerKind::Bytes, "");
  EXPECT_EQ(stream_pieces(*tok, byte_ids("h\xC3\xA9!")), (Pieces{"h", "", "\xC3\xA9", "!", ""}));
  EXPECT_EQ(stream_pieces(*tok, byte_ids("😀")), (Pieces{"", "", "", "😀", ""}));
  rwkv::StreamDecoder stream(*tok);
  EXPECT_EQ(stream.push(0xE4), "");
  EXPECT_EQ(stream.pending_bytes(), 1u);
  EXPECT_EQ(stream.push(0xB8), "");
  EXPECT_EQ(stream.pending_bytes(), 2u);
  EXPECT_EQ(stream.push(0xAD), "中");
  EXPECT_EQ(stream.pending_bytes(), 0u);
}

TEST(TokenizerStream, InvalidBytesAndFlushRule) {
  auto tok = rwkv::load_tokenizer(rwkv::TokenizerKind::Bytes, "");
  // A byte that can never start a character is replaced at once.
  EXPECT_EQ(stream_pieces(*tok, byte_ids("a\xFF" "b")), (Pieces{"a", kFFFD, "b", ""}));
  // A truncated character followed by ASCII: one U+FFFD for the truncated part.
  EXPECT_EQ(stream_pieces(*tok, byte_ids("\xE4\xB8" "a")), (Pieces{"", "", kFFFD + "a", ""}));
  // A surrogate's encoding is three maximal invalid subparts.
  EXPECT_EQ(stream_pieces(*tok, byte_ids("\xED\xA0\x80")), (Pieces{"", kFFFD + kFFFD, kFFFD, ""}));
  // At the end, an incomplete character is flushed as one U+FFFD, and the decoder starts over.
  rwkv::StreamDecoder stream(*tok);
  EXPECT_EQ(stream.push(0xF0), "");
  EXPECT_EQ(stream.push(0x9F), "");
  EXPECT_EQ(stream.flush(), kFFFD);
  EXPECT_EQ(stream.flush(), "");
  EXPECT_EQ(stream.push('x'), "x");
}

TEST(TokenizerStream, EqualsLossyDecodeOfTheWhole) {
  auto tok = rwkv::load_tokenizer(rwkv::TokenizerKind::Bytes, "");
  std::mt19937 rng(1234);
  // Bytes drawn mostly from UTF-8's lead and continuation ranges, so that valid,
  // truncated and invalid sequences all occur.
  const unsigned char alphabet[] = {'a', ' ', 0x80, 0x8F, 0x9F, 0xA0, 0xBF, 0xC2, 0xC3, 0xDF, 0xE0,
                                    0xE4, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xC0, 0xFF};
  for (int round = 0; round < 2000; ++round) {
    std::string bytes;
    for (int k = static_cast<int>(rng() % 12); k > 0; --k) bytes += static_cast<char>(alphabet[rng() % sizeof(alphabet)]);
    std::string streamed;
    for (const std::string& piece : stream_pieces(*tok, byte_ids(bytes))) streamed += piece;
    ASSERT_EQ(streamed, rwkv::utf8_replace_invalid(bytes)) << "round " << round;
  }
  EXPECT_EQ(rwkv::utf8_replace_invalid("\xE4\xB8\xAD\xE6"), "中" + kFFFD);
}

TEST(TokenizerStream, WorldTokensSplitCharacters) {
  auto tok = rwkv::load_tokenizer(rwkv::TokenizerKind::World, rwkv_test::tokenizer_fixture("world_small.txt"));
  // 😀 as f0 9f + 98 + 80, then "!"; 中 as e4 b8 + ad; 文 split e6 + (nothing): flushed.
  EXPECT_EQ(stream_pieces(*tok, Ids{26, 27, 16, 1, 17, 18, 40}), (Pieces{"", "", "😀", "a", "", "中", "", kFFFD}));
  // Special tokens: skipped by default, their text on request.
  EXPECT_EQ(stream_pieces(*tok, Ids{1, 0}), (Pieces{"a", "", ""}));
  EXPECT_EQ(stream_pieces(*tok, Ids{1, 0}, true), (Pieces{"a", "<|endoftext|>", ""}));
  rwkv::StreamDecoder stream(*tok);
  EXPECT_NE(error_of([&] { stream.push(12345); }).find("token id 12345"), std::string::npos);
}

}  // namespace
