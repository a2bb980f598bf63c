#include "tokenizer/tokenizer_json.hpp"

#include <fmt/format.h>

#include "io/printable.hpp"
#include "rwkv/error.hpp"

namespace rwkv::detail {
namespace {

using nlohmann::json;

class Reader final : public nlohmann::json_sax<json> {
 public:
  Reader(TokenizerJson& out, const std::string& path) : out_(out), path_(path) {}

  bool null() override { return value(json()); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override { return integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    if (v <= static_cast<number_unsigned_t>(INT64_MAX)) return integer(static_cast<int64_t>(v));
    if (mode_ == Mode::Vocab) fail(fmt::format("model.vocab \"{}\": bad id {}", io::printable(key_), v));
    return value(json(v));
  }
  bool number_float(number_float_t v, const string_t&) override {
    if (mode_ == Mode::Vocab) {
      fail(fmt::format("model.vocab \"{}\": the id {} is not an integer", io::printable(key_), v));
    }
    return value(json(v));
  }
  bool string(string_t& v) override {
    if (mode_ == Mode::Merges) {
      size_t space = v.find(' ');
      if (space == std::string::npos || v.find(' ', space + 1) != std::string::npos) {
        fail(fmt::format("model.merges[{}] \"{}\": expected two tokens separated by one space", out_.merges.size(),
                         io::printable(v)));
      }
      out_.merges.emplace_back(v.substr(0, space), v.substr(space + 1));
      return true;
    }
    if (mode_ == Mode::MergePair) {
      pair_.push_back(std::move(v));
      return true;
    }
    return value(json(std::move(v)));
  }
  bool binary(binary_t&) override { return value(json()); }

  bool start_object(std::size_t) override {
    enter();
    if (starts_bulk("vocab")) {
      mode_ = Mode::Vocab;
      out_.has_vocab = true;
      return true;
    }
    return open(json::object());
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override {
    --depth_;
    if (mode_ == Mode::Vocab) {
      mode_ = Mode::Dom;
      return true;
    }
    return close();
  }
  bool start_array(std::size_t) override {
    enter();
    if (mode_ == Mode::Merges) {
      mode_ = Mode::MergePair;
      pair_.clear();
      return true;
    }
    if (starts_bulk("merges")) {
      mode_ = Mode::Merges;
      out_.has_merges = true;
      return true;
    }
    return open(json::array());
  }
  bool end_array() override {
    --depth_;
    if (mode_ == Mode::MergePair) {
      if (pair_.size() != 2) fail(fmt::format("model.merges[{}]: expected a pair of tokens", out_.merges.size()));
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::Merges;
      return true;
    }
    if (mode_ == Mode::Merges) {
      mode_ = Mode::Dom;
      return true;
    }
    return close();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    fail(fmt::format("not valid JSON: {}", io::printable(e.what(), 200)));
  }

 private:
  enum class Mode { Dom, Vocab, Merges, MergePair };

  // Refused while parsing, before anything recurses over the tree (copies, dumps and
  // destructors of nlohmann::json recurse once per level).
  void enter() {
    if (++depth_ > kMaxJsonDepth) fail(fmt::format("JSON nested deeper than {} levels", kMaxJsonDepth));
  }
  [[noreturn]] void fail(const std::string& what) const { throw Error(fmt::format("{}: {}", path_, what)); }

  // Whether the container about to open is model.<name> at the top level.
  bool starts_bulk(const char* name) const {
    return mode_ == Mode::Dom && stack_.size() == 2 && keys_[1] == "model" && key_ == name;
  }
  bool integer(int64_t v) {
    if (mode_ == Mode::Vocab) {
      out_.vocab.emplace_back(std::move(key_), v);
      return true;
    }
    return value(json(v));
  }
  // Places a scalar in the current container.
  bool value(json v) {
    require_dom();
    place(std::move(v));
    return true;
  }
  void require_dom() const {
    if (mode_ == Mode::Vocab) fail(fmt::format("model.vocab \"{}\": the id is not an integer", io::printable(key_)));
    if (mode_ != Mode::Dom) fail(fmt::format("model.merges[{}]: expected tokens", out_.merges.size()));
  }
  json* place(json v) {
    if (stack_.empty()) {
      out_.root = std::move(v);
      return &out_.root;
    }
    json& parent = *stack_.back();
    if (parent.is_object()) return &(parent[key_] = std::move(v));
    parent.push_back(std::move(v));
    return &parent.back();
  }
  bool open(json container) {
    require_dom();
    std::string k = !stack_.empty() && stack_.back()->is_object() ? key_ : std::string();
    stack_.push_back(place(std::move(container)));
    keys_.push_back(std::move(k));
    return true;
  }

  bool close() {
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }

  TokenizerJson& out_;
  const std::string& path_;
  Mode mode_ = Mode::Dom;
  size_t depth_ = 0;               // containers open, bulk ones included
  std::vector<json*> stack_;       // open containers outside the bulk parts
  std::vector<std::string> keys_;  // the key each open container sits under
  std::string key_;                // the last object key read
  std::vector<std::string> pair_;  // a merge given as ["a", "b"]
};

}  // namespace

TokenizerJson parse_tokenizer_json(const std::string& text, const std::string& path) {
  TokenizerJson out;
  Reader reader(out, path);
  json::sax_parse(text, &reader);
  return out;
}

}  // namespace rwkv::detail
