// The NeoX BPE tokenizer on a small hand-written tokenizer.json
// (tests/fixtures/tokenizer/neox_small.json): merge ranks, added and special tokens, NFC,
// the GPT-2 split pattern, bad files.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tokenizer/gpt2_split.hpp"
#include "tokenizer_test_support.hpp"

namespace {

using rwkv_test::error_of;
using Ids = std::vector<int32_t>;

std::unique_ptr<rwkv::Tokenizer> small_neox() {
  return rwkv::load_tokenizer(rwkv::TokenizerKind::NeoX, rwkv_test::tokenizer_fixture("neox_small.json"));
}

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = rwkv::detail::gpt2_pretoken_end(text, pos);
    out.emplace_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

using Pieces = std::vector<std::string>;

TEST(TokenizerNeoxSplit, Gpt2Pattern) {
  EXPECT_EQ(split("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(split("DON'T don't we're I'll"), (Pieces{"DON", "'", "T", " don", "'t", " we", "'re", " I", "'ll"}));
  EXPECT_EQ(split(" 't"), (Pieces{" '", "t"}));
  EXPECT_EQ(split("''s"), (Pieces{"''", "s"}));
  EXPECT_EQ(split("1234567890 x2"), (Pieces{"1234567890", " x", "2"}));
  EXPECT_EQ(split("a\n\nb"), (Pieces{"a", "\n", "\n", "b"}));
  EXPECT_EQ(split("a\n\n\nb"), (Pieces{"a", "\n\n", "\n", "b"}));
  EXPECT_EQ(split("x   y"), (Pieces{"x", "  ", " y"}));
  EXPECT_EQ(split("\t\tx"), (Pieces{"\t", "\t", "x"}));
  EXPECT_EQ(split("a  "), (Pieces{"a", "  "}));
  EXPECT_EQ(split("??!! x"), (Pieces{"??!!", " x"}));
  EXPECT_EQ(split("héllo wörld"), (Pieces{"héllo", " wörld"}));
  EXPECT_EQ(split("中文,ok"), (Pieces{"中文", ",", "ok"}));
  EXPECT_EQ(split("a\u00A0b"), (Pieces{"a", "\u00A0", "b"}));   // NBSP is \s but not " "
  EXPECT_EQ(split("a\u3000 b"), (Pieces{"a", "\u3000", " b"}));
  EXPECT_EQ(split("x\u0663\u0664"), (Pieces{"x", "\u0663\u0664"}));  // Arabic-Indic digits are \p{N}
  EXPECT_EQ(split("\x1F\x1F" "a"), (Pieces{"\x1F\x1F", "a"}));    // U+001F is not White_Space
  EXPECT_EQ(split(" \U0001F600\U0001F600"), (Pieces{" \U0001F600\U0001F600"}));
}

TEST(TokenizerNeoxSplit, LongRunsAreLinear) {
  std::string spaces(1 << 20, ' ');
  EXPECT_EQ(split(spaces + "x"), (Pieces{std::string((1 << 20) - 1, ' '), " x"}));
  std::string word(1 << 20, 'a');
  EXPECT_EQ(split(word), Pieces{word});
}

TEST(TokenizerNeox, MergesByRank) {
  auto tok = small_neox();
  EXPECT_EQ(tok->kind(), rwkv::TokenizerKind::NeoX);
  EXPECT_EQ(tok->vocab_size(), 27);
  // Ranks: "b c" 0, "a b" 1, "ab c" 2. In "abc" b+c merges first, and "a bc" is no merge.
  EXPECT_EQ(tok->encode("abc"), (Ids{2, 14}));
  EXPECT_EQ(tok->encode("abd"), (Ids{13, 5}));
  EXPECT_EQ(tok->encode("ab abc"), (Ids{13, 16, 14}));  // " abc": "b c" (0), then "Ġ a" (3)
  EXPECT_EQ(tok->encode(" abd"), (Ids{6, 13, 5}));       // " abd": "a b" (1) first, then no "Ġ ab"
  EXPECT_EQ(tok->encode("a's"), (Ids{2, 21}));
  EXPECT_EQ(tok->encode("12!"), (Ids{10, 11, 12}));
  EXPECT_EQ(tok->encode("\n\na"), (Ids{7, 7, 2}));
  EXPECT_EQ(tok->decode(Ids{13, 16, 14}), "ab abc");
}

TEST(TokenizerNeox, AddedAndSpecialTokens) {
  auto tok = small_neox();
  // Runs of spaces are added tokens, cut leftmost-longest before BPE; the word after them
  // gets no "Ġ". A single space left over joins the next word.
  EXPECT_EQ(tok->encode("a  b"), (Ids{2, 23, 3}));
  EXPECT_EQ(tok->encode("a   b"), (Ids{2, 22, 3}));
  EXPECT_EQ(tok->encode("a    a"), (Ids{2, 22, 16}));
  EXPECT_EQ(tok->encode("a     b"), (Ids{2, 22, 23, 3}));
  // Special tokens are found in the raw text and skipped by default when decoding.
  Ids ids = tok->encode("<|endoftext|>ab<|padding|>");
  EXPECT_EQ(ids, (Ids{0, 13, 1}));
  EXPECT_EQ(tok->decode(ids), "ab");
  EXPECT_EQ(tok->decode(ids, true), "<|endoftext|>ab<|padding|>");
  EXPECT_EQ(tok->token_bytes(0), "");
  EXPECT_EQ(tok->token_bytes(0, true), "<|endoftext|>");
  EXPECT_EQ(tok->token_bytes(23), "  ");  // not special: always decoded
}

TEST(TokenizerNeox, NfcBeforeBpe) {
  auto tok = small_neox();
  // "e" + U+0301 becomes "é" (c3 a9 -> "Ã©"); U+0301 alone has no precomposed form.
  EXPECT_EQ(tok->encode("e\u0301"), (Ids{19}));
  EXPECT_EQ(tok->encode("\u00E9"), (Ids{19}));
  // "b" + U+0301 has no precomposed form: the mark stays, and is a pre-token of its own.
  EXPECT_EQ(tok->encode("b\u0301"), (Ids{3, 26}));
  // "a" + U+0301 is "á" (c3 a1); byte a1 has no token here and is dropped, as the
  // tokenizers library does when there is no unk_token.
  EXPECT_EQ(tok->encode("a\u0301"), (Ids{17}));
  EXPECT_EQ(tok->decode(tok->encode("e\u0301")), "\u00E9");
}

TEST(TokenizerNeox, InvalidUtf8AndBadIds) {
  auto tok = small_neox();
  std::string msg = error_of([&] { tok->encode("ab\xFF"); });
  EXPECT_NE(msg.find("not valid UTF-8 at byte offset 2"), std::string::npos) << msg;
  for (int32_t id : {27, 1000, -5}) {
    msg = error_of([&] { tok->decode(Ids{2, id}); });
    EXPECT_NE(msg.find("token id " + std::to_string(id)), std::string::npos) << msg;
  }
}

// Loads the fixture after `edit` changed its JSON; returns the error.
template <typename F>
std::string edited_fixture_error(F&& edit) {
  rwkv_test::ScratchDir dir;
  auto j = nlohmann::json::parse(rwkv_test::read_file(rwkv_test::tokenizer_fixture("neox_small.json")));
  edit(j);
  auto path = dir / "tok.json";
  rwkv_test::write_file(path, j.dump());
  return error_of([&] { rwkv::load_tokenizer(rwkv::TokenizerKind::NeoX, path.string()); });
}

TEST(TokenizerNeox, NormalizedAddedTokenIsMatchedInNfc) {
  rwkv_test::ScratchDir dir;
  auto j = nlohmann::json::parse(rwkv_test::read_file(rwkv_test::tokenizer_fixture("neox_small.json")));
  j["added_tokens"].push_back({{"id", 27}, {"content", "e\u0301"}, {"normalized", true}, {"special", false}});
  rwkv_test::write_file(dir / "tok.json", j.dump());
  auto tok = rwkv::load_tokenizer(rwkv::TokenizerKind::NeoX, (dir / "tok.json").string());
  EXPECT_EQ(tok->encode("a\u00E9e\u0301"), (Ids{2, 27, 27}));
  EXPECT_EQ(tok->decode(Ids{27}), "e\u0301");  // decoded as written in the file
}

TEST(TokenizerNeox, BadTokenizerFiles) {
  auto expect_error = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
    EXPECT_NE(msg.find("tok.json"), std::string::npos) << msg;
  };
  expect_error(edited_fixture_error([](auto& j) { j["model"]["merges"].push_back("a zz"); }),
               "model.merges[7] \"a zz\": token \"zz\" is not in model.vocab");
  expect_error(edited_fixture_error([](auto& j) { j["model"]["merges"].push_back("a d"); }),
               "model.merges[7] \"a d\": token \"ad\" is not in model.vocab");
  expect_error(edited_fixture_error([](auto& j) { j["model"]["merges"].push_back("abc"); }),
               "model.merges[7] \"abc\": expected two tokens separated by one space");
  expect_error(edited_fixture_error([](auto& j) { j["model"]["vocab"]["zz"] = "x"; }),
               "model.vocab \"zz\": the id is not an integer");
  expect_error(edited_fixture_error([](auto& j) { j["model"]["vocab"]["zz"] = 2; }),
               "model.vocab: id 2 is given to two tokens");
  expect_error(edited_fixture_error([](auto& j) { j["normalizer"] = {{"type", "NFKC"}}; }),
               "normalizer {\"type\":\"NFKC\"} is not supported");
  expect_error(edited_fixture_error([](auto& j) { j["model"]["type"] = "WordPiece"; }), "is not BPE");
  expect_error(edited_fixture_error([](auto& j) { j["model"].erase("merges"); }), "model.merges is missing");
  expect_error(edited_fixture_error([](auto& j) { j["added_tokens"][0]["lstrip"] = true; }),
               "added_tokens[0] (id 0): lstrip=true is not supported");

  rwkv_test::ScratchDir dir;
  auto path = dir / "tok.json";
  rwkv_test::write_file(path, "{\"model\": {\"vocab\": {\"a\": 0,}}}");
  expect_error(error_of([&] { rwkv::load_tokenizer(rwkv::TokenizerKind::NeoX, path.string()); }), "not valid JSON");
  std::string msg = error_of([] { rwkv::load_tokenizer(rwkv::TokenizerKind::NeoX, "/nonexistent/tok.json"); });
  EXPECT_NE(msg.find("/nonexistent/tok.json: cannot open tokenizer.json: No such file or directory"), std::string::npos) << msg;
}

TEST(TokenizerNeox, MergesAsPairs) {
  // Newer tokenizer.json files write merges as ["a", "b"]; the result is the same.
  rwkv_test::ScratchDir dir;
  auto j = nlohmann::json::parse(rwkv_test::read_file(rwkv_test::tokenizer_fixture("neox_small.json")));
  for (auto& m : j["model"]["merges"]) {
    std::string s = m.get<std::string>();
    m = nlohmann::json::array({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  rwkv_test::write_file(dir / "tok.json", j.dump());
  auto tok = rwkv::load_tokenizer(rwkv::TokenizerKind::NeoX, (dir / "tok.json").string());
  EXPECT_EQ(tok->encode("abc abd"), (Ids{2, 14, 6, 13, 5}));
}

TEST(TokenizerNeox, SharedTokenizerLongInputs) {
  RWKV_SKIP_WITHOUT_SHARED();
  auto tok = rwkv::load_tokenizer(rwkv::TokenizerKind::NeoX,
                                  (*rwkv_test::shared_dir() / "tokenizers" / "20B_tokenizer.json").string());
  EXPECT_EQ(tok->vocab_size(), 50277);
  // A long word without spaces and a long run of CJK go through BPE in one piece.
  std::string word(20000, 'x'), cjk;
  for (int i = 0; i < 5000; ++i) cjk += "中文";
  for (const std::string& text : {word, cjk, word + " " + cjk + "\n\n" + std::string(100, ' ')}) {
    EXPECT_EQ(tok->decode(tok->encode(text)), text);
  }
}

}  // namespace
