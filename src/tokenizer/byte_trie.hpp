// Internal: a byte trie for longest-prefix matching (World vocabulary, NeoX added tokens).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace rwkv::detail {

// A byte trie in one array. The children of a node are consecutive nodes sorted by label;
// nodes with many children also get a 256-entry table so that one step is one load.
class ByteTrie {
 public:
  ByteTrie() { build({}, {}); }

  // `keys[i]` is the byte string of token `ids[i]`; keys are sorted, unique and non-empty.
  void build(const std::vector<std::string_view>& keys, const std::vector<int32_t>& ids);

  // Whether some key starts with `byte` (a quick filter before longest_prefix).
  bool starts_a_key(unsigned char byte) const { return child(0, byte) != 0; }

  // Longest key that is a prefix of `text`: {length, id}, or {0, -1} when none is.
  std::pair<size_t, int32_t> longest_prefix(const unsigned char* text, size_t size) const {
    size_t best_len = 0;
    int32_t best_id = -1;
    uint32_t node = 0;
    for (size_t i = 0; i < size; ++i) {
      node = child(node, text[i]);
      if (node == 0) break;
      if (nodes_[node].token >= 0) {
        best_len = i + 1;
        best_id = nodes_[node].token;
      }
    }
    return {best_len, best_id};
  }

 private:
  static constexpr uint32_t kDenseFrom = 6;  // nodes with at least this many children get a table
  struct Node {
    uint32_t first_child = 0;
    uint32_t child_count = 0;
    int32_t token = -1;
    int32_t dense = -1;  // index into dense_ (in units of 256), or -1
  };

  uint32_t child(uint32_t node, unsigned char byte) const {
    const Node& n = nodes_[node];
    if (n.dense >= 0) return dense_[static_cast<size_t>(n.dense) * 256 + byte];
    const unsigned char* labels = labels_.data() + n.first_child;
    for (uint32_t k = 0; k < n.child_count; ++k) {
      if (labels[k] == byte) return n.first_child + k;
    }
    return 0;
  }

  std::vector<Node> nodes_;
  std::vector<unsigned char> labels_;  // label of each node (the byte leading to it)
  std::vector<uint32_t> dense_;
};

}  // namespace rwkv::detail
