#include "tokenizer/byte_trie.hpp"

namespace rwkv::detail {

// Iterative, so that a key's length never becomes the depth of the call stack
// (a vocabulary file can hold a token of any length).
void ByteTrie::build(const std::vector<std::string_view>& keys, const std::vector<int32_t>& ids) {
  nodes_.assign(1, Node{});
  labels_.assign(1, 0);
  dense_.clear();
  struct Pending {
    uint32_t node;
    size_t lo, hi;  // keys[lo, hi) share the node's prefix of `depth` bytes
    size_t depth;
  };
  std::vector<Pending> pending = {{0, 0, keys.size(), 0}};
  std::vector<std::pair<size_t, size_t>> groups;
  while (!pending.empty()) {
    auto [node, lo, hi, depth] = pending.back();
    pending.pop_back();
    if (lo < hi && keys[lo].size() == depth) {
      nodes_[node].token = ids[lo];
      ++lo;
    }
    groups.clear();
    for (size_t i = lo; i < hi;) {
      unsigned char b = static_cast<unsigned char>(keys[i][depth]);
      size_t j = i + 1;
      while (j < hi && static_cast<unsigned char>(keys[j][depth]) == b) ++j;
      groups.emplace_back(i, j);
      i = j;
    }
    auto first = static_cast<uint32_t>(nodes_.size());
    nodes_[node].first_child = first;
    nodes_[node].child_count = static_cast<uint32_t>(groups.size());
    nodes_.resize(nodes_.size() + groups.size());
    for (const auto& [i, j] : groups) labels_.push_back(static_cast<unsigned char>(keys[i][depth]));
    if (groups.size() >= kDenseFrom || node == 0) {
      nodes_[node].dense = static_cast<int32_t>(dense_.size() / 256);
      dense_.resize(dense_.size() + 256, 0);
      uint32_t* table = dense_.data() + dense_.size() - 256;
      for (uint32_t k = 0; k < groups.size(); ++k) table[labels_[first + k]] = first + k;
    }
    for (uint32_t k = 0; k < groups.size(); ++k) {
      pending.push_back({first + k, groups[k].first, groups[k].second, depth + 1});
    }
  }
}

}  // namespace rwkv::detail
