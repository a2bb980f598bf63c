// Every case of ../shared/reference/tokenizer/{world,neox20b}.jsonl: ids, decoded text and
// bytes, token bytes, and the stream decoder. Skipped when ../shared is absent.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "rwkv/tokenizer.hpp"
#include "test_support.hpp"

namespace {

using nlohmann::json;

std::vector<json> read_jsonl(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::vector<json> cases;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) cases.push_back(json::parse(line));
  }
  return cases;
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::string stream_decode(const rwkv::Tokenizer& tok, const std::vector<int32_t>& ids, bool keep_special) {
  rwkv::StreamDecoder stream(tok, keep_special);
  std::string out;
  for (int32_t id : ids) out += stream.push(id);
  return out + stream.flush();
}

// Checks one case; returns whether everything matched (failures are reported by gtest).
bool check_case(const rwkv::Tokenizer& tok, const json& c, bool neox) {
  const std::string name = c.at("case_id").get<std::string>() + " (" + c.at("category").get<std::string>() + ")";
  SCOPED_TRACE(name);
  const bool raw = c.contains("bytes_hex");
  const std::string input = raw ? from_hex(c["bytes_hex"].get<std::string>()) : c.at("text").get<std::string>();
  const auto expected_ids = c.at("ids").get<std::vector<int32_t>>();
  bool ok = true;
  // EXPECT_EQ that also counts the case as failed.
#define CASE_EXPECT_EQ(a, b) \
  do {                       \
    ok &= ((a) == (b));      \
    EXPECT_EQ(a, b);         \
  } while (0)

  std::vector<int32_t> ids = tok.encode(input);
  CASE_EXPECT_EQ(ids, expected_ids);

  const auto hexes = c.at("token_bytes_hex").get<std::vector<std::string>>();
  CASE_EXPECT_EQ(hexes.size(), expected_ids.size());
  for (size_t k = 0; k < std::min(hexes.size(), expected_ids.size()); ++k) {
    // Special tokens appear as their text in token_bytes_hex.
    CASE_EXPECT_EQ(std::string(tok.token_bytes(expected_ids[k], true)), from_hex(hexes[k]));
  }

  const std::string decoded = tok.decode(expected_ids);
  if (raw) {
    CASE_EXPECT_EQ(decoded, from_hex(c.at("decoded_bytes_hex").get<std::string>()));
    CASE_EXPECT_EQ(decoded, input);
    CASE_EXPECT_EQ(stream_decode(tok, expected_ids, false), rwkv::utf8_replace_invalid(decoded));
  } else {
    CASE_EXPECT_EQ(decoded, c.at("decoded").get<std::string>());
    CASE_EXPECT_EQ(stream_decode(tok, expected_ids, false), c.at("decoded").get<std::string>());
  }
  if (neox) {
    const std::string keep = c.at("decoded_keep_special").get<std::string>();
    CASE_EXPECT_EQ(tok.decode(expected_ids, true), keep);
    CASE_EXPECT_EQ(stream_decode(tok, expected_ids, true), keep);
  }
#undef CASE_EXPECT_EQ
  return ok;
}

void run_reference(rwkv::TokenizerKind kind, const char* vocab, const char* jsonl, size_t expected_cases) {
  const auto shared = *rwkv_test::shared_dir();
  auto tok = rwkv::load_tokenizer(kind, (shared / "tokenizers" / vocab).string());
  auto cases = read_jsonl(shared / "reference" / "tokenizer" / jsonl);
  ASSERT_EQ(cases.size(), expected_cases);
  size_t passed = 0;
  for (const json& c : cases) passed += check_case(*tok, c, kind == rwkv::TokenizerKind::NeoX);
  EXPECT_EQ(passed, cases.size());
  std::printf("%s: %zu of %zu reference cases pass\n", jsonl, passed, cases.size());
}

TEST(TokenizerReference, WorldAllCases) {
  RWKV_SKIP_WITHOUT_SHARED();
  run_reference(rwkv::TokenizerKind::World, "rwkv_vocab_v20230424.txt", "world.jsonl", 90);
}

TEST(TokenizerReference, NeoxAllCases) {
  RWKV_SKIP_WITHOUT_SHARED();
  run_reference(rwkv::TokenizerKind::NeoX, "20B_tokenizer.json", "neox20b.jsonl", 84);
}

}  // namespace
