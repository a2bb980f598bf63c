// The server's prefix-state cache: longest strict prefix, start states kept apart, least
// recently used entries evicted within the byte budget.
#include <gtest/gtest.h>

#include "server/state_cache.hpp"

namespace {

using rwkv::State;
using rwkv::server::PrefixStateCache;

// A state of `floats` values, all `value`: what an entry holds is then easy to tell.
State filled(float value, size_t floats = 1000) {
  State state;
  state.n_layer = 1;
  state.floats_per_layer = static_cast<uint32_t>(floats);
  state.data.assign(floats, value);
  return state;
}

TEST(PrefixStateCache, FindsTheLongestStrictPrefix) {
  PrefixStateCache cache(1 << 20);
  const std::vector<int32_t> tokens = {5, 6, 7, 8, 9};
  cache.insert("", std::span(tokens).first(2), filled(2));
  cache.insert("", std::span(tokens).first(4), filled(4));
  cache.insert("", tokens, filled(5));
  State state = filled(-1);
  // Without logits the whole prompt is not taken: at least one token is fed, for them.
  EXPECT_EQ(cache.lookup("", tokens, state), 4u);
  EXPECT_EQ(state, filled(4));
  std::vector<float> logits;
  EXPECT_EQ(cache.lookup("", tokens, state, &logits), 4u);  // cached without logits
  EXPECT_EQ(cache.lookup("", std::span(tokens).first(4), state), 2u);
  EXPECT_EQ(state, filled(2));
  const std::vector<int32_t> longer = {5, 6, 7, 8, 9, 10};
  EXPECT_EQ(cache.lookup("", longer, state), 5u);
  EXPECT_EQ(state, filled(5));
  // Nothing shares the first token: a miss, the state untouched.
  const std::vector<int32_t> other = {6, 5};
  state = filled(-1);
  EXPECT_EQ(cache.lookup("", other, state), 0u);
  EXPECT_EQ(state, filled(-1));
  EXPECT_EQ(cache.stats().hits, 4u);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().hit_tokens, 4u + 4u + 2u + 5u);
  // With its logits cached, the whole prompt is taken, logits and all.
  const std::vector<float> prompt_logits = {0.5f, -1.0f, 2.0f};
  cache.insert("", tokens, filled(5), prompt_logits);
  EXPECT_EQ(cache.lookup("", tokens, state, &logits), 5u);
  EXPECT_EQ(logits, prompt_logits);
  EXPECT_EQ(cache.lookup("", tokens, state), 4u);
  EXPECT_TRUE(cache.contains("", std::span(tokens).first(4)));
  EXPECT_FALSE(cache.contains("", std::span(tokens).first(3)));
}

TEST(PrefixStateCache, KeepsStartStatesApart) {
  PrefixStateCache cache(1 << 20);
  const std::vector<int32_t> tokens = {1, 2, 3};
  cache.insert("tuned", std::span(tokens).first(2), filled(7));
  State state = filled(-1);
  EXPECT_EQ(cache.lookup("", tokens, state), 0u);
  EXPECT_EQ(cache.lookup("other", tokens, state), 0u);
  EXPECT_EQ(cache.lookup("tuned", tokens, state), 2u);
  EXPECT_EQ(state, filled(7));
}

TEST(PrefixStateCache, EvictsTheLeastRecentlyUsedWithinTheBudget) {
  // Each entry is ~4 KB of state: a 10 KB budget holds two.
  PrefixStateCache cache(10000);
  const std::vector<int32_t> a = {1, 1}, b = {2, 2}, c = {3, 3};
  cache.insert("", a, filled(1));
  cache.insert("", b, filled(2));
  State state;
  const std::vector<int32_t> a_longer = {1, 1, 9};
  EXPECT_EQ(cache.lookup("", a_longer, state), 2u);  // a is now the most recently used
  cache.insert("", c, filled(3));                      // evicts b
  EXPECT_TRUE(cache.contains("", a));
  EXPECT_FALSE(cache.contains("", b));
  EXPECT_TRUE(cache.contains("", c));
  EXPECT_EQ(cache.stats().entries, 2u);
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_LE(cache.stats().bytes, 10000u);
  // Inserting a cached prefix again only refreshes it.
  cache.insert("", c, filled(3));
  EXPECT_EQ(cache.stats().entries, 2u);
  EXPECT_EQ(cache.stats().inserts, 3u);
  // An entry larger than the budget is not kept, and evicts nothing.
  cache.insert("", std::vector<int32_t>{4}, filled(4, 5000));
  EXPECT_EQ(cache.stats().entries, 2u);
}

TEST(PrefixStateCache, ZeroBudgetIsOff) {
  PrefixStateCache cache(0);
  EXPECT_FALSE(cache.enabled());
  const std::vector<int32_t> tokens = {1, 2};
  cache.insert("", tokens, filled(1));
  State state;
  EXPECT_EQ(cache.lookup("", std::vector<int32_t>{1, 2, 3}, state), 0u);
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.stats().misses, 0u);
}

}  // namespace
