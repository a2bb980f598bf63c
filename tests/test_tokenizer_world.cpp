// The World tokenizer on a small hand-written vocabulary (tests/fixtures/tokenizer/world_small.txt):
// the vocabulary file's literals and escapes, greedy longest match, bad files.
#include <gtest/gtest.h>

#include "tokenizer_test_support.hpp"

namespace {

using rwkv_test::error_of;
using Ids = std::vector<int32_t>;

std::unique_ptr<rwkv::Tokenizer> small_world() {
  return rwkv::load_tokenizer(rwkv::TokenizerKind::World, rwkv_test::tokenizer_fixture("world_small.txt"));
}

TEST(TokenizerWorld, LiteralsAndEscapes) {
  auto tok = small_world();
  EXPECT_EQ(tok->kind(), rwkv::TokenizerKind::World);
  EXPECT_EQ(tok->vocab_size(), 65536);
  EXPECT_EQ(tok->token_bytes(9), "\n");
  EXPECT_EQ(tok->token_bytes(11), "\\");
  EXPECT_EQ(tok->token_bytes(12), "'");
  EXPECT_EQ(tok->token_bytes(13), "\"");
  EXPECT_EQ(tok->token_bytes(14), "it's");
  EXPECT_EQ(tok->token_bytes(15), "\xC2\x80");  // '\x80' in a str literal is U+0080
  EXPECT_EQ(tok->token_bytes(16), "\x80");      // b'\x80' is one byte
  EXPECT_EQ(tok->token_bytes(17), "\xE4\xB8");
  EXPECT_EQ(tok->token_bytes(19), "中");
  EXPECT_EQ(tok->token_bytes(20), "文");        // '\u6587'
  EXPECT_EQ(tok->token_bytes(22), "a b");       // spaces inside the literal
  EXPECT_EQ(tok->token_bytes(23), "\r\n");
  EXPECT_EQ(tok->token_bytes(24), "é");
  EXPECT_EQ(tok->token_bytes(25), std::string(1, '\0'));
  EXPECT_EQ(tok->token_bytes(29), "A");         // octal '\101'
  EXPECT_EQ(tok->token_bytes(30), "\\n");       // an escaped backslash, then n
  EXPECT_EQ(tok->token_bytes(31), "😀!");       // '\U0001F600!'
}

TEST(TokenizerWorld, GreedyLongestMatch) {
  auto tok = small_world();
  EXPECT_EQ(tok->encode(""), Ids{});
  EXPECT_EQ(tok->encode("abcd"), (Ids{7}));
  EXPECT_EQ(tok->encode("abcx"), (Ids{6, 8}));
  EXPECT_EQ(tok->encode("abab"), (Ids{5, 5}));
  EXPECT_EQ(tok->encode("a bb a"), (Ids{22, 2, 4, 1}));
  EXPECT_EQ(tok->encode("it's 中文"), (Ids{14, 4, 19, 20}));
  EXPECT_EQ(tok->encode("😀!😀"), (Ids{31, 28}));
  // Greedy, not optimal: "abc"+"d..." is taken even where another split would be shorter.
  EXPECT_EQ(tok->encode("abcdabc"), (Ids{7, 6}));
}

TEST(TokenizerWorld, InvalidUtf8Input) {
  auto tok = small_world();
  // e4 b8 without its last byte, then ff: matched as bytes.
  const std::string raw = "\xE4\xB8\xFF" "a\x80";
  Ids ids = tok->encode(raw);
  EXPECT_EQ(ids, (Ids{17, 21, 1, 16}));
  EXPECT_EQ(tok->decode(ids), raw);
  // A byte with no token of its own is an error naming it and its offset.
  std::string msg = error_of([&] { tok->encode("ab\x01"); });
  EXPECT_NE(msg.find("0x01"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset 2"), std::string::npos) << msg;
}

TEST(TokenizerWorld, DecodeAndIdsOutOfRange) {
  auto tok = small_world();
  EXPECT_EQ(tok->decode(Ids{19, 20}), "中文");
  EXPECT_EQ(tok->decode(Ids{0, 1}), "a");  // 0 is end of text
  EXPECT_EQ(tok->decode(Ids{0, 1}, true), "<|endoftext|>a");
  for (int32_t id : {35, 65535, 65536, -1}) {
    std::string msg = error_of([&] { tok->decode(Ids{1, id}); });
    EXPECT_NE(msg.find("token id " + std::to_string(id)), std::string::npos) << msg;
  }
}

// Writes `content` as a vocabulary file and returns the error that loading it gives.
std::string load_error(const rwkv_test::ScratchDir& dir, const std::string& content) {
  auto path = dir / "vocab.txt";
  rwkv_test::write_file(path, content);
  return error_of([&] { rwkv::load_tokenizer(rwkv::TokenizerKind::World, path.string()); });
}

TEST(TokenizerWorld, BadVocabularyFiles) {
  rwkv_test::ScratchDir dir;
  struct Case {
    std::string content;
    std::string expected;
  } cases[] = {
      {"1 'a' 1\n2 'b' 2\n", "vocab.txt:2: the literal is 1 bytes but the line says 2"},
      {"1 'a' 1\n2 'b'\n", "vocab.txt:2: expected '<id> <Python string or bytes literal> <byte length>'"},
      {"x 'a' 1\n", "vocab.txt:1: bad token id 'x'"},
      {"0 'a' 1\n", "vocab.txt:1: bad token id '0'"},
      {"70000 'a' 1\n", "vocab.txt:1: bad token id '70000'"},
      {"1 'a' one\n", "vocab.txt:1: bad byte length 'one'"},
      {"1 'a 1\n", "vocab.txt:1: unterminated literal"},
      {"1 a 1\n", "vocab.txt:1: not a Python string or bytes literal"},
      {"1 '\\x4' 1\n", "vocab.txt:1: truncated \\x escape"},
      {"1 '\\ud800' 3\n", "vocab.txt:1: surrogate U+D800"},
      {"1 b'\\u00e9' 6\n2 b'é' 2\n", "vocab.txt:2: bytes literals can only contain ASCII"},
      {"1 'a' 1\n1 'b' 1\n", "vocab.txt:2: token id 1 already defined on line 1"},
      {"1 'a' 1\n2 b'a' 1\n", "vocab.txt:2: token 2 has the same bytes as token 1 on line 1"},
      {"1 'it's' 4\n", "vocab.txt:1: unescaped ' inside the literal"},
      {"", "no tokens"},
  };
  for (const Case& c : cases) {
    std::string msg = load_error(dir, c.content);
    EXPECT_NE(msg.find(c.expected), std::string::npos) << "content: " << c.content << "\nmessage: " << msg;
  }
  std::string msg = error_of([] { rwkv::load_tokenizer(rwkv::TokenizerKind::World, "/nonexistent/vocab.txt"); });
  EXPECT_NE(msg.find("/nonexistent/vocab.txt: cannot open World vocabulary: No such file or directory"), std::string::npos) << msg;
}

TEST(TokenizerWorld, PythonLiteralDetails) {
  rwkv_test::ScratchDir dir;
  auto path = dir / "vocab.txt";
  // Unknown escapes keep their backslash, as in Python; CRLF line ends; a u prefix.
  rwkv_test::write_file(path, "1 '\\q' 2\r\n2 u'\\a\\b\\f\\v' 4\r\n3 b'\\0\\377' 2\r\n4 \"a'b\" 3\r\n");
  auto tok = rwkv::load_tokenizer(rwkv::TokenizerKind::World, path.string());
  EXPECT_EQ(tok->token_bytes(1), "\\q");
  EXPECT_EQ(tok->token_bytes(2), "\a\b\f\v");
  EXPECT_EQ(tok->token_bytes(3), std::string("\0\xFF", 2));
  EXPECT_EQ(tok->token_bytes(4), "a'b");
}

TEST(TokenizerWorld, SharedVocabularyLoads) {
  RWKV_SKIP_WITHOUT_SHARED();
  auto tok = rwkv::load_tokenizer(rwkv::TokenizerKind::World,
                                  (*rwkv_test::shared_dir() / "tokenizers" / "rwkv_vocab_v20230424.txt").string());
  for (int b = 0; b < 256; ++b) EXPECT_EQ(tok->token_bytes(b + 1), std::string(1, static_cast<char>(b)));
  EXPECT_EQ(tok->token_bytes(65529), std::string(128, ' '));
  EXPECT_EQ(tok->token_bytes(2423), "\xC2\x80");
  EXPECT_NE(error_of([&] { tok->token_bytes(65530); }), "(no error)");
  // All 256 bytes are tokens, so any bytes encode and decode back.
  std::string all;
  for (int b = 255; b >= 0; --b) all += static_cast<char>(b);
  EXPECT_EQ(tok->decode(tok->encode(all + all)), all + all);
}

}  // namespace
