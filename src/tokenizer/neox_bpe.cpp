// The GPT-NeoX 20B tokenizer: what a Hugging Face tokenizer.json with a byte-level BPE
// model declares (20B_tokenizer.json). Encoding follows the tokenizers library:
//   1. added tokens with normalized=false (<|endoftext|>, <|padding|>) are cut out of the raw text;
//   2. each remaining piece is normalized (NFC), then added tokens with normalized=true
//      (the runs of 2..24 spaces) are cut out, leftmost-longest;
//   3. what remains is split by the GPT-2 pattern, each pre-token is mapped to bytes
//      and merged by BPE in merge-rank order.
#include <fmt/format.h>
#include <utf8proc.h>

#include <array>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "io/printable.hpp"
#include "rwkv/error.hpp"
#include "tokenizer/byte_trie.hpp"
#include "tokenizer/gpt2_split.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/tokenizer_json.hpp"
#include "tokenizer/utf8.hpp"

namespace rwkv::detail {
namespace {

// Token ids index dense tables, so an id sets their size; released vocabularies stay
// far below this (NeoX has 50277 ids, the largest Hugging Face ones about 260K).
constexpr int64_t kMaxId = int64_t(1) << 21;

using nlohmann::json;

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68
// bytes for U+0100.. in byte order, so that every token is a printable string.
std::array<char32_t, 256> byte_to_char_table() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    table[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return table;
}

// A token string of the byte-level alphabet as the bytes it stands for. A string with a
// character outside the alphabet stands for its own UTF-8 (as the ByteLevel decoder does).
std::string byte_level_to_bytes(std::string_view token) {
  static const std::array<int, 324> char_to_byte = [] {
    std::array<int, 324> inverse{};
    inverse.fill(-1);
    auto table = byte_to_char_table();
    for (int b = 0; b < 256; ++b) inverse[table[b]] = b;
    return inverse;
  }();
  std::string out;
  for (size_t i = 0; i < token.size();) {
    utf8::Step st = utf8::step(token.substr(i));
    if (st.status != utf8::Status::Complete || st.code_point >= char_to_byte.size() ||
        char_to_byte[st.code_point] < 0) {
      return std::string(token);
    }
    out += static_cast<char>(char_to_byte[st.code_point]);
    i += st.length;
  }
  return out;
}

// Merge ranks keyed by the pair of ids: open addressing, linear probing.
class MergeTable {
 public:
  struct Merge {
    uint32_t rank;
    int32_t merged;
  };

  void reserve(size_t count) {
    size_t capacity = 16;
    while (capacity < count * 2) capacity *= 2;
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(capacity));
    slots_.assign(capacity, Slot{kEmpty, {0, 0}});
  }
  // Later entries replace earlier ones for the same pair, as in the tokenizers library.
  void insert(int32_t left, int32_t right, Merge merge) {
    uint64_t key = pack(left, right);
    for (size_t i = index(key);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].key == kEmpty || slots_[i].key == key) {
        slots_[i] = {key, merge};
        return;
      }
    }
  }
  const Merge* find(int32_t left, int32_t right) const {
    uint64_t key = pack(left, right);
    for (size_t i = index(key);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].key == key) return &slots_[i].merge;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static uint64_t pack(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  size_t index(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }

  std::vector<Slot> slots_;
  unsigned shift_ = 60;
};

// model.vocab's token strings -> ids while loading: open addressing with 8-byte slots,
// since std::unordered_map's node chasing was a fifth of the load time.
class TokenIdTable {
 public:
  explicit TokenIdTable(const std::vector<std::pair<std::string, int64_t>>& vocab) : vocab_(vocab) {
    size_t capacity = 16;
    while (capacity < vocab.size() * 2) capacity *= 2;
    slots_.assign(capacity, Slot{0, -1});
  }
  // Adds vocab[index]; returns the index of an earlier entry with the same token, or -1.
  int32_t insert(int32_t index) {
    std::string_view token = vocab_[index].first;
    auto h = hash(token);
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      Slot& s = slots_[i];
      if (s.index < 0) {
        s = {h, index};
        return -1;
      }
      if (s.hash == h && vocab_[s.index].first == token) return s.index;
    }
  }
  // The id of `token`, or -1.
  int32_t find(std::string_view token) const {
    auto h = hash(token);
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      const Slot& s = slots_[i];
      if (s.index < 0) return -1;
      if (s.hash == h && vocab_[s.index].first == token) return static_cast<int32_t>(vocab_[s.index].second);
    }
  }

 private:
  struct Slot {
    uint32_t hash;
    int32_t index;  // into vocab_, -1 for an empty slot
  };
  static uint32_t hash(std::string_view s) { return static_cast<uint32_t>(std::hash<std::string_view>{}(s)); }

  const std::vector<std::pair<std::string, int64_t>>& vocab_;
  std::vector<Slot> slots_;
};

// Per-call scratch space: the BPE work lists and a cache of pre-tokens already merged.
struct EncodeScratch {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    uint32_t len;  // bytes; 0 once merged into the symbol on its left
  };
  struct Candidate {
    uint32_t rank;
    uint32_t pos;
    int32_t merged;
    // std heaps are max-heaps: "less" means a later merge (higher rank, then further right).
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::string nfc;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, StringHash, std::equal_to<>> cache;
  std::vector<int32_t> cached_ids;
};

class NeoxTokenizer final : public Tokenizer {
 public:
  explicit NeoxTokenizer(const std::string& path);

  TokenizerKind kind() const override { return TokenizerKind::NeoX; }
  int32_t vocab_size() const override { return static_cast<int32_t>(token_bytes_.size()); }
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string_view token_bytes(int32_t id, bool keep_special) const override {
    if (id < 0 || id >= vocab_size() || !has_id_[id]) {
      throw_bad_id(TokenizerKind::NeoX, id, fmt::format("not in '{}'", path_));
    }
    if (is_special_[id] && !keep_special) return {};
    return token_bytes_[id];
  }

 private:
  void check_model(const json& model);
  void load_vocab_and_merges(TokenizerJson& file);
  void load_added_tokens(const json& added);
  void encode_normalized(std::string_view piece, EncodeScratch& scratch, std::vector<int32_t>& ids) const;
  void encode_pretoken(std::string_view bytes, EncodeScratch& scratch, std::vector<int32_t>& ids) const;
  void bpe(std::string_view bytes, EncodeScratch& scratch, std::vector<int32_t>& ids) const;
  std::string_view normalize(std::string_view text, std::string& buffer) const;

  std::string path_;
  bool nfc_ = false;
  bool use_regex_ = true;
  bool ignore_merges_ = false;
  bool has_unk_ = false;
  std::vector<std::string> token_bytes_;  // (vocab) what each id decodes to
  std::vector<bool> has_id_;              // (vocab)
  std::vector<bool> is_special_;          // (vocab)
  std::array<int32_t, 256> byte_id_{};    // id of each single byte
  std::unordered_map<std::string, int32_t> bytes_to_id_;  // only used with ignore_merges
  MergeTable merges_;
  ByteTrie raw_added_;         // added tokens matched before normalization
  ByteTrie normalized_added_;  // added tokens matched after it
  bool any_raw_added_ = false;
  bool any_normalized_added_ = false;
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(fmt::format("{}: {}", path, what));
}

// The member `key` of `object` by reference, or null: copying a subtree would recurse
// once per level of nesting.
const json& member(const json& object, const char* key) {
  static const json null_value;
  auto it = object.find(key);
  return it == object.end() ? null_value : *it;
}

// A JSON value echoed in a message: short, one line, no control characters.
std::string shown(const json& value) { return io::printable(value.dump(), 120); }

bool flag_or(const json& object, const char* key, bool fallback) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  return it->get<bool>();
}

NeoxTokenizer::NeoxTokenizer(const std::string& path) : path_(path) {
  TokenizerJson file = parse_tokenizer_json(read_whole_file(path, "tokenizer.json"), path);
  const json& root = file.root;
  try {
    if (!root.is_object()) fail(path, "expected a JSON object");
    const json& normalizer = member(root, "normalizer");
    if (!normalizer.is_null()) {
      if (normalizer.value("type", "") != "NFC") {
        fail(path, fmt::format("normalizer {} is not supported (only NFC or null)", shown(normalizer)));
      }
      nfc_ = true;
    }
    const json& pre = member(root, "pre_tokenizer");
    if (!pre.is_object() || pre.value("type", "") != "ByteLevel") {
      fail(path, fmt::format("pre_tokenizer {} is not supported (only ByteLevel)", shown(pre)));
    }
    if (flag_or(pre, "add_prefix_space", false)) fail(path, "pre_tokenizer.add_prefix_space=true is not supported");
    use_regex_ = flag_or(pre, "use_regex", true);
    for (const char* part : {"decoder", "post_processor"}) {
      const json& p = member(root, part);
      if (!p.is_null() && p.value("type", "") != "ByteLevel") {
        fail(path, fmt::format("{} {} is not supported (only ByteLevel or null)", part, shown(p)));
      }
    }
    if (!root.contains("model") || !root["model"].is_object()) fail(path, "no \"model\" object");
    check_model(root["model"]);
    if (!file.has_vocab || file.vocab.empty()) fail(path_, "model.vocab must be a non-empty object");
    if (!file.has_merges) fail(path_, "model.merges is missing");
    load_vocab_and_merges(file);
    const json& added = member(root, "added_tokens");
    load_added_tokens(added.is_null() ? json::array() : added);
  } catch (const json::exception& e) {
    fail(path, fmt::format("unexpected structure: {}", e.what()));
  }
}

void NeoxTokenizer::check_model(const json& model) {
  if (model.value("type", "BPE") != "BPE") fail(path_, fmt::format("model.type {} is not BPE", shown(model["type"])));
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0) {
    fail(path_, "model.dropout is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model[key].is_null() && !model[key].get<std::string>().empty()) {
      fail(path_, fmt::format("model.{} is not supported", key));
    }
  }
  if (flag_or(model, "byte_fallback", false)) fail(path_, "model.byte_fallback=true is not supported");
  ignore_merges_ = flag_or(model, "ignore_merges", false);
  has_unk_ = model.contains("unk_token") && !model["unk_token"].is_null();
}

void NeoxTokenizer::load_vocab_and_merges(TokenizerJson& file) {
  TokenIdTable id_of(file.vocab);
  int64_t max_id = -1;
  for (size_t k = 0; k < file.vocab.size(); ++k) {
    const auto& [token, id] = file.vocab[k];
    if (id < 0 || id > kMaxId) {
      fail(path_, fmt::format("model.vocab \"{}\": bad id {} (expected 0..{})", io::printable(token), id, kMaxId));
    }
    if (id_of.insert(static_cast<int32_t>(k)) >= 0) {
      fail(path_, fmt::format("model.vocab: token \"{}\" appears twice", io::printable(token)));
    }
    max_id = std::max(max_id, id);
  }
  token_bytes_.assign(static_cast<size_t>(max_id + 1), std::string());
  has_id_.assign(token_bytes_.size(), false);
  is_special_.assign(token_bytes_.size(), false);
  for (const auto& [token, id] : file.vocab) {
    if (has_id_[id]) fail(path_, fmt::format("model.vocab: id {} is given to two tokens", id));
    has_id_[id] = true;
    token_bytes_[id] = byte_level_to_bytes(token);
  }
  // Bytes without a token are dropped by BPE, as the tokenizers library does when there
  // is no unk_token. 20B_tokenizer.json lacks exactly the bytes that valid UTF-8 never holds.
  auto table = byte_to_char_table();
  bool all_bytes = true;
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8::append(ch, table[b]);
    byte_id_[b] = id_of.find(ch);
    all_bytes &= byte_id_[b] >= 0;
  }
  if (!all_bytes && has_unk_) fail(path_, "model.unk_token is not supported when model.vocab lacks some bytes");
  if (ignore_merges_) {
    for (const auto& [token, id] : file.vocab) bytes_to_id_.emplace(token_bytes_[id], static_cast<int32_t>(id));
  }

  merges_.reserve(file.merges.size());
  std::string merged;
  for (size_t rank = 0; rank < file.merges.size(); ++rank) {
    const auto& [left, right] = file.merges[rank];
    merged = left;
    merged += right;
    const int32_t l = id_of.find(left), r = id_of.find(right), t = id_of.find(merged);
    for (auto [id, name] : {std::pair{l, std::string_view(left)}, std::pair{r, std::string_view(right)},
                            std::pair{t, std::string_view(merged)}}) {
      if (id < 0) {
        fail(path_, fmt::format("model.merges[{}] \"{} {}\": token \"{}\" is not in model.vocab", rank,
                                io::printable(left), io::printable(right), io::printable(name)));
      }
    }
    merges_.insert(l, r, {static_cast<uint32_t>(rank), t});
  }
}

void NeoxTokenizer::load_added_tokens(const json& added) {
  if (!added.is_array()) fail(path_, "added_tokens must be an array");
  std::vector<std::pair<std::string, int32_t>> raw, normalized;
  for (size_t k = 0; k < added.size(); ++k) {
    const json& t = added[k];
    const json& id_value = t.at("id");
    if (!id_value.is_number_integer() || (id_value.is_number_unsigned() && id_value.get<uint64_t>() > kMaxId) ||
        (!id_value.is_number_unsigned() && (id_value.get<int64_t>() < 0 || id_value.get<int64_t>() > kMaxId))) {
      fail(path_, fmt::format("added_tokens[{}]: bad id {} (expected 0..{})", k, shown(id_value), kMaxId));
    }
    const int64_t id = id_value.get<int64_t>();
    const std::string& content = t.at("content").get_ref<const std::string&>();
    if (content.size() > kMaxTokenBytes) {
      fail(path_, fmt::format("added_tokens[{}] (id {}): content is {} bytes, more than the {} a token may have", k,
                              id, content.size(), kMaxTokenBytes));
    }
    if (content.empty()) fail(path_, fmt::format("added_tokens[{}] (id {}): empty content", k, id));
    if (utf8::first_invalid(content) != content.size()) {
      fail(path_, fmt::format("added_tokens[{}] (id {}): content is not valid UTF-8", k, id));
    }
    for (const char* key : {"single_word", "lstrip", "rstrip"}) {
      if (flag_or(t, key, false)) fail(path_, fmt::format("added_tokens[{}] (id {}): {}=true is not supported", k, id, key));
    }
    if (static_cast<size_t>(id) >= token_bytes_.size()) {
      token_bytes_.resize(id + 1);
      has_id_.resize(id + 1, false);
      is_special_.resize(id + 1, false);
    }
    token_bytes_[id] = content;
    has_id_[id] = true;
    is_special_[id] = flag_or(t, "special", false);
    if (flag_or(t, "normalized", !is_special_[id])) {
      // Matched in normalized text, so the pattern is normalized too (decoding keeps the original).
      std::string buffer;
      normalized.emplace_back(std::string(normalize(content, buffer)), static_cast<int32_t>(id));
    } else {
      raw.emplace_back(content, static_cast<int32_t>(id));
    }
  }
  auto build = [&](std::vector<std::pair<std::string, int32_t>>& list, ByteTrie& trie, const char* which) {
    std::sort(list.begin(), list.end());
    std::vector<std::string_view> keys;
    std::vector<int32_t> ids;
    for (size_t k = 0; k < list.size(); ++k) {
      if (k > 0 && list[k].first == list[k - 1].first) {
        // The tokenizers library keeps one of them; which one is not worth guessing.
        fail(path_, fmt::format("added_tokens: ids {} and {} have the same {} content", list[k - 1].second,
                                list[k].second, which));
      }
      keys.push_back(list[k].first);
      ids.push_back(list[k].second);
    }
    trie.build(keys, ids);
    return !list.empty();
  };
  any_raw_added_ = build(raw, raw_added_, "non-normalized");
  any_normalized_added_ = build(normalized, normalized_added_, "normalized");
}

// Calls on_piece(text, id) for the stretches between matches of `trie` (id -1) and for the
// matches themselves (their id), leftmost-longest, left to right.
template <typename F>
void split_on_added(std::string_view text, const ByteTrie& trie, F&& on_piece) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    if (!trie.starts_a_key(p[i])) {
      ++i;
      continue;
    }
    auto [len, id] = trie.longest_prefix(p + i, text.size() - i);
    if (id < 0) {
      ++i;
      continue;
    }
    if (i > start) on_piece(text.substr(start, i - start), -1);
    on_piece(text.substr(i, len), id);
    i += len;
    start = i;
  }
  if (start < text.size()) on_piece(text.substr(start), -1);
}

std::vector<int32_t> NeoxTokenizer::encode(std::string_view text) const {
  if (size_t bad = utf8::first_invalid(text); bad != text.size()) {
    throw Error(fmt::format("neox tokenizer: the input is not valid UTF-8 at byte offset {}", bad));
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 4 + 1);
  EncodeScratch scratch;
  auto on_raw_piece = [&](std::string_view piece, int32_t id) {
    if (id >= 0) {
      ids.push_back(id);
      return;
    }
    std::string_view normalized = normalize(piece, scratch.nfc);
    if (!any_normalized_added_) {
      encode_normalized(normalized, scratch, ids);
      return;
    }
    split_on_added(normalized, normalized_added_, [&](std::string_view sub, int32_t sub_id) {
      if (sub_id >= 0) {
        ids.push_back(sub_id);
      } else {
        encode_normalized(sub, scratch, ids);
      }
    });
  };
  if (any_raw_added_) {
    split_on_added(text, raw_added_, on_raw_piece);
  } else if (!text.empty()) {
    on_raw_piece(text, -1);
  }
  return ids;
}

// NFC, done only on the stretches that hold non-ASCII characters: a position before an
// ASCII character is a normalization boundary (ASCII characters are starters that never
// compose with what precedes them), so each stretch starts one character early, at the
// ASCII character that may compose with the marks after it, and ends before the next one.
std::string_view NeoxTokenizer::normalize(std::string_view text, std::string& buffer) const {
  auto is_ascii = [&](size_t i) { return static_cast<unsigned char>(text[i]) < 0x80; };
  size_t i = 0;
  while (i < text.size() && is_ascii(i)) ++i;
  if (!nfc_ || i == text.size()) return text;
  buffer.clear();
  size_t copied = 0;
  while (i < text.size()) {
    size_t begin = i > copied ? i - 1 : i;
    size_t end = i;
    while (end < text.size() && !is_ascii(end)) ++end;
    buffer.append(text.substr(copied, begin - copied));
    utf8proc_uint8_t* out = nullptr;
    utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + begin),
                                      static_cast<utf8proc_ssize_t>(end - begin), &out,
                                      static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n < 0) {
      throw Error(fmt::format("neox tokenizer: NFC failed at byte offset {}: {}", begin, utf8proc_errmsg(n)));
    }
    buffer.append(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
    copied = end;
    i = end;
    while (i < text.size() && is_ascii(i)) ++i;
  }
  buffer.append(text.substr(copied));
  return buffer;
}

void NeoxTokenizer::encode_normalized(std::string_view piece, EncodeScratch& scratch,
                                      std::vector<int32_t>& ids) const {
  if (!use_regex_) {
    encode_pretoken(piece, scratch, ids);
    return;
  }
  for (size_t pos = 0; pos < piece.size();) {
    size_t end = gpt2_pretoken_end(piece, pos);
    encode_pretoken(piece.substr(pos, end - pos), scratch, ids);
    pos = end;
  }
}

void NeoxTokenizer::encode_pretoken(std::string_view bytes, EncodeScratch& scratch, std::vector<int32_t>& ids) const {
  if (bytes.size() == 1 && byte_id_[static_cast<unsigned char>(bytes[0])] >= 0) {
    ids.push_back(byte_id_[static_cast<unsigned char>(bytes[0])]);
    return;
  }
  constexpr size_t kMaxCachedLength = 64;
  if (bytes.size() > kMaxCachedLength) {
    bpe(bytes, scratch, ids);
    return;
  }
  if (auto it = scratch.cache.find(bytes); it != scratch.cache.end()) {
    auto [offset, count] = it->second;
    ids.insert(ids.end(), scratch.cached_ids.begin() + offset, scratch.cached_ids.begin() + offset + count);
    return;
  }
  size_t before = ids.size();
  bpe(bytes, scratch, ids);
  auto offset = static_cast<uint32_t>(scratch.cached_ids.size());
  scratch.cached_ids.insert(scratch.cached_ids.end(), ids.begin() + static_cast<ptrdiff_t>(before), ids.end());
  scratch.cache.emplace(std::string(bytes), std::pair{offset, static_cast<uint32_t>(ids.size() - before)});
}

// BPE as in the tokenizers library: a heap of candidate merges ordered by rank, then by
// position; an entry is skipped when its symbols have changed since it was pushed.
void NeoxTokenizer::bpe(std::string_view bytes, EncodeScratch& scratch, std::vector<int32_t>& ids) const {
  if (ignore_merges_) {
    if (auto it = bytes_to_id_.find(std::string(bytes)); it != bytes_to_id_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  auto& symbols = scratch.symbols;
  auto& heap = scratch.heap;
  symbols.clear();
  heap.clear();
  for (char c : bytes) {
    int32_t id = byte_id_[static_cast<unsigned char>(c)];
    if (id < 0) continue;
    auto i = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, i - 1, i + 1, 1});
  }
  const auto n = static_cast<int32_t>(symbols.size());
  if (n == 0) return;
  symbols.back().next = -1;
  auto push_candidate = [&](int32_t pos) {
    int32_t next = symbols[pos].next;
    if (const MergeTable::Merge* m = merges_.find(symbols[pos].id, symbols[next].id)) {
      heap.push_back({m->rank, static_cast<uint32_t>(pos), m->merged});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) {
    if (const MergeTable::Merge* m = merges_.find(symbols[i].id, symbols[i + 1].id)) {
      heap.push_back({m->rank, static_cast<uint32_t>(i), m->merged});
    }
  }
  std::make_heap(heap.begin(), heap.end());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    EncodeScratch::Candidate top = heap.back();
    heap.pop_back();
    auto& left = symbols[top.pos];
    if (left.len == 0 || left.next < 0) continue;
    auto& right = symbols[left.next];
    const MergeTable::Merge* m = merges_.find(left.id, right.id);
    if (m == nullptr || m->merged != top.merged) continue;
    left.id = top.merged;
    left.len += right.len;
    left.next = right.next;
    right.len = 0;
    if (left.next >= 0) symbols[left.next].prev = static_cast<int32_t>(top.pos);
    if (left.prev >= 0) push_candidate(left.prev);
    if (left.next >= 0) push_candidate(static_cast<int32_t>(top.pos));
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids.push_back(symbols[i].id);
}

}  // namespace

std::unique_ptr<Tokenizer> load_neox_tokenizer(const std::string& path) {
  return std::make_unique<NeoxTokenizer>(path);
}

}  // namespace rwkv::detail
