// The prefix-state cache: the state a model reached after an exact token prefix (from
// a given start state), kept so that a request whose prompt extends that prefix feeds
// only the tokens after it. An RWKV state is the whole context in a fixed size, so one
// entry costs the same at any prefix length. Least recently used entries go first once
// the byte budget is reached. Not thread-safe: the scheduler's stepping thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "rwkv/state.hpp"

namespace rwkv::server {

struct StateCacheStats {
  size_t entries = 0;
  size_t bytes = 0;
  size_t budget_bytes = 0;
  uint64_t hits = 0;          // lookups that found a prefix
  uint64_t misses = 0;        // lookups that found none
  uint64_t hit_tokens = 0;    // prompt tokens not fed thanks to hits
  uint64_t inserts = 0;
  uint64_t evictions = 0;
};

class PrefixStateCache {
 public:
  explicit PrefixStateCache(size_t budget_bytes) { stats_.budget_bytes = budget_bytes; }

  bool enabled() const { return stats_.budget_bytes > 0; }

  // The longest cached prefix of `tokens` (from start state `origin`): copies its state
  // into `state` and returns its length, or returns 0 and leaves `state` alone. The whole
  // of `tokens` counts only with `logits` given and logits cached with it (then copied
  // there): a prompt must end with logits to sample from. Counts a hit or a miss when
  // `count`.
  size_t lookup(const std::string& origin, std::span<const int32_t> tokens, State& state,
                std::vector<float>* logits = nullptr, bool count = true);

  // Whether exactly this prefix is cached (no counting, no reordering).
  bool contains(const std::string& origin, std::span<const int32_t> tokens) const;

  // Caches `state` (and `logits`, when not empty) as what `tokens` lead to, evicting the
  // least recently used entries to stay within the budget. An entry larger than the
  // whole budget is not kept.
  void insert(const std::string& origin, std::span<const int32_t> tokens, const State& state,
              std::span<const float> logits = {});

  const StateCacheStats& stats() const { return stats_; }

 private:
  struct Entry {
    std::string origin;
    std::vector<int32_t> tokens;
    State state;
    std::vector<float> logits;  // empty unless given
    uint64_t hash = 0;
    size_t bytes = 0;
  };
  using Lru = std::list<Entry>;  // most recently used first

  // Hashes of every prefix of `tokens` from `origin`: hashes[n] covers tokens[0, n).
  static void prefix_hashes(const std::string& origin, std::span<const int32_t> tokens,
                            std::vector<uint64_t>& hashes);
  Lru::iterator find(uint64_t hash, const std::string& origin, std::span<const int32_t> tokens);
  void evict(Lru::iterator entry);

  Lru lru_;
  std::unordered_multimap<uint64_t, Lru::iterator> index_;
  StateCacheStats stats_;
  std::vector<uint64_t> hashes_;  // lookup's scratch
};

}  // namespace rwkv::server
