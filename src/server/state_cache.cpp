#include "server/state_cache.hpp"

#include <algorithm>

namespace rwkv::server {

namespace {

uint64_t mix(uint64_t hash, uint64_t value) {
  // splitmix64's finalizer over a running hash: cheap, and every token changes every bit.
  hash ^= value + 0x9e3779b97f4a7c15ull + (hash << 6) + (hash >> 2);
  hash ^= hash >> 30;
  hash *= 0xbf58476d1ce4e5b9ull;
  hash ^= hash >> 27;
  hash *= 0x94d049bb133111ebull;
  hash ^= hash >> 31;
  return hash;
}

uint64_t origin_hash(const std::string& origin) {
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : origin) hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

size_t entry_bytes(const std::string& origin, size_t tokens, const State& state) {
  // What the entry holds, plus a fixed allowance for the list node and index entry.
  return state.data.size() * sizeof(float) + tokens * sizeof(int32_t) + origin.size() + 128;
}

// The hash of the whole key: prefix_hashes' last value, without keeping the others.
uint64_t key_hash(const std::string& origin, std::span<const int32_t> tokens) {
  uint64_t hash = origin_hash(origin);
  for (int32_t t : tokens) hash = mix(hash, static_cast<uint32_t>(t));
  return hash;
}

}  // namespace

void PrefixStateCache::prefix_hashes(const std::string& origin, std::span<const int32_t> tokens,
                                     std::vector<uint64_t>& hashes) {
  hashes.resize(tokens.size() + 1);
  hashes[0] = origin_hash(origin);
  for (size_t i = 0; i < tokens.size(); ++i) hashes[i + 1] = mix(hashes[i], static_cast<uint32_t>(tokens[i]));
}

PrefixStateCache::Lru::iterator PrefixStateCache::find(uint64_t hash, const std::string& origin,
                                                       std::span<const int32_t> tokens) {
  auto [first, last] = index_.equal_range(hash);
  for (auto it = first; it != last; ++it) {
    const Entry& entry = *it->second;
    if (entry.origin == origin && std::ranges::equal(entry.tokens, tokens)) return it->second;
  }
  return lru_.end();
}

size_t PrefixStateCache::lookup(const std::string& origin, std::span<const int32_t> tokens, State& state,
                                std::vector<float>* logits, bool count) {
  if (!enabled()) return 0;
  if (!lru_.empty()) {
    prefix_hashes(origin, tokens, hashes_);
    for (size_t n = tokens.size(); n > 0; --n) {
      const bool whole = n == tokens.size();
      if ((whole && logits == nullptr) || index_.count(hashes_[n]) == 0) continue;
      auto entry = find(hashes_[n], origin, tokens.first(n));
      if (entry == lru_.end() || (whole && entry->logits.empty())) continue;
      lru_.splice(lru_.begin(), lru_, entry);
      state = entry->state;
      if (whole) *logits = entry->logits;
      if (count) {
        ++stats_.hits;
        stats_.hit_tokens += n;
      }
      return n;
    }
  }
  if (count) ++stats_.misses;
  return 0;
}

bool PrefixStateCache::contains(const std::string& origin, std::span<const int32_t> tokens) const {
  auto [first, last] = index_.equal_range(key_hash(origin, tokens));
  for (auto it = first; it != last; ++it) {
    if (it->second->origin == origin && std::ranges::equal(it->second->tokens, tokens)) return true;
  }
  return false;
}

void PrefixStateCache::evict(Lru::iterator entry) {
  auto [first, last] = index_.equal_range(entry->hash);
  for (auto it = first; it != last; ++it) {
    if (it->second == entry) {
      index_.erase(it);
      break;
    }
  }
  stats_.bytes -= entry->bytes;
  lru_.erase(entry);
  stats_.entries = lru_.size();
}

void PrefixStateCache::insert(const std::string& origin, std::span<const int32_t> tokens, const State& state,
                              std::span<const float> logits) {
  if (!enabled() || tokens.empty()) return;
  const size_t bytes = entry_bytes(origin, tokens.size(), state) + logits.size() * sizeof(float);
  if (bytes > stats_.budget_bytes) return;
  const uint64_t hash = key_hash(origin, tokens);
  if (auto existing = find(hash, origin, tokens); existing != lru_.end()) {
    // The same prefix from the same start always gives the same state: refresh it, and
    // keep logits that it did not have.
    lru_.splice(lru_.begin(), lru_, existing);
    if (existing->logits.empty() && !logits.empty() && stats_.bytes + logits.size() * sizeof(float) <= stats_.budget_bytes) {
      existing->logits.assign(logits.begin(), logits.end());
      existing->bytes += logits.size() * sizeof(float);
      stats_.bytes += logits.size() * sizeof(float);
    }
    return;
  }
  while (!lru_.empty() && stats_.bytes + bytes > stats_.budget_bytes) {
    evict(std::prev(lru_.end()));
    ++stats_.evictions;
  }
  lru_.push_front(Entry{origin, std::vector<int32_t>(tokens.begin(), tokens.end()), state,
                        std::vector<float>(logits.begin(), logits.end()), hash, bytes});
  index_.emplace(hash, lru_.begin());
  stats_.bytes += bytes;
  stats_.entries = lru_.size();
  ++stats_.inserts;
}

}  // namespace rwkv::server
