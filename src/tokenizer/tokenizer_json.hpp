// Internal: reading a Hugging Face tokenizer.json. The two bulky parts, model.vocab and
// model.merges, are streamed straight into vectors (a full DOM of them costs more than
// the 100 ms load budget); everything else becomes an ordinary nlohmann::json tree.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace rwkv::detail {

// Hugging Face tokenizer.json files nest about 6 levels deep; deeper is refused.
inline constexpr size_t kMaxJsonDepth = 128;

struct TokenizerJson {
  nlohmann::json root;  // the file without model.vocab and model.merges
  bool has_vocab = false;
  bool has_merges = false;
  std::vector<std::pair<std::string, int64_t>> vocab;          // model.vocab, in file order
  std::vector<std::pair<std::string, std::string>> merges;     // model.merges, in rank order
};

// Parses `text`, the contents of `path`; throws rwkv::Error naming the path and what is wrong
// (bad JSON with its position, a vocab entry that is not an id, a merge that is not a pair).
TokenizerJson parse_tokenizer_json(const std::string& text, const std::string& path);

}  // namespace rwkv::detail
