// Each sampling option on fixed logits.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "rwkv/error.hpp"
#include "rwkv/sampler.hpp"

namespace {

std::vector<float> ramp(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.01f * static_cast<float>(i % 97) - 0.3f * static_cast<float>(i % 7);
  return v;
}

std::vector<int32_t> draws(rwkv::SamplerParams p, const std::vector<float>& logits, int n) {
  rwkv::Sampler s(p, static_cast<uint32_t>(logits.size()));
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    std::vector<float> copy = logits;
    out.push_back(s.sample(copy));
  }
  return out;
}

TEST(Sampler, SameSeedRepeatsExactlyAndOtherSeedsDiffer) {
  rwkv::SamplerParams p;
  p.seed = 1234;
  const auto logits = ramp(65536);
  EXPECT_EQ(draws(p, logits, 300), draws(p, logits, 300));
  p.top_p = 0.9f;
  p.temperature = 0.7f;
  const auto a = draws(p, logits, 300);
  EXPECT_EQ(a, draws(p, logits, 300));
  p.seed = 1235;
  EXPECT_NE(a, draws(p, logits, 300));
}

TEST(Sampler, TemperatureZeroIsArgmax) {
  rwkv::SamplerParams p;
  p.temperature = 0;
  std::vector<float> logits = {0.1f, 3.0f, 2.9f, -1.0f};
  EXPECT_EQ(draws(p, logits, 5), std::vector<int32_t>(5, 1));
}

TEST(Sampler, TopKNeverReturnsAnExcludedToken) {
  for (auto order : {rwkv::SamplingOrder::Official, rwkv::SamplingOrder::Llama}) {
    rwkv::SamplerParams p;
    p.top_k = 5;
    p.temperature = 2.0f;
    p.order = order;
    std::vector<float> logits(1000, 0.0f);
    const std::set<int32_t> top = {10, 200, 300, 999, 4};
    float v = 1.0f;
    for (int32_t id : top) logits[id] = (v += 0.01f);
    std::set<int32_t> seen;
    for (int32_t t : draws(p, logits, 3000)) {
      ASSERT_TRUE(top.count(t)) << "token " << t;
      seen.insert(t);
    }
    EXPECT_EQ(seen, top);
  }
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  // Probabilities 0.5, 0.3, 0.15, 0.05: top-p 0.75 keeps the first two only.
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  for (auto order : {rwkv::SamplingOrder::Official, rwkv::SamplingOrder::Llama}) {
    rwkv::SamplerParams p;
    p.top_p = 0.75f;
    p.order = order;
    std::map<int32_t, int> counts;
    for (int32_t t : draws(p, logits, 20000)) counts[t]++;
    EXPECT_EQ(counts.count(2), 0u);
    EXPECT_EQ(counts.count(3), 0u);
    EXPECT_NEAR(counts[0] / 20000.0, 0.5 / 0.8, 0.02);
  }
}

TEST(Sampler, TopPOverALargeVocabularyWithTies) {
  // 65536 tokens, 100 of them tied at the top: top-p keeps exactly the tied ones.
  std::vector<float> logits(65536, -20.0f);
  for (int i = 0; i < 100; ++i) logits[i * 600] = 5.0f;
  rwkv::SamplerParams p;
  p.top_p = 0.5f;
  std::set<int32_t> seen;
  for (int32_t t : draws(p, logits, 4000)) {
    ASSERT_EQ(t % 600, 0) << t;
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  const std::vector<float> logits = {std::log(0.6f), std::log(0.3f), std::log(0.07f), std::log(0.03f)};
  rwkv::SamplerParams p;
  p.min_p = 0.1f;  // threshold 0.06: drops token 3 only
  std::set<int32_t> seen;
  for (int32_t t : draws(p, logits, 20000)) seen.insert(t);
  EXPECT_EQ(seen, (std::set<int32_t>{0, 1, 2}));
}

TEST(Sampler, OfficialTemperatureRaisesProbabilitiesToOneOverT) {
  const std::vector<float> logits = {std::log(0.6f), std::log(0.4f)};
  rwkv::SamplerParams p;
  p.temperature = 0.5f;  // p^2: 0.36 : 0.16 -> 0.692 : 0.308
  int zeros = 0;
  for (int32_t t : draws(p, logits, 40000)) zeros += t == 0;
  EXPECT_NEAR(zeros / 40000.0, 0.36 / 0.52, 0.01);
}

TEST(Sampler, PresencePenaltySubtractsOnceSeen) {
  rwkv::SamplerParams p;
  p.temperature = 0;
  p.presence_penalty = 0.5f;
  rwkv::Sampler s(p, 3);
  std::vector<float> logits = {2.0f, 1.7f, 0.0f};
  auto copy = logits;
  EXPECT_EQ(s.sample(copy), 0);
  s.accept(0);
  copy = logits;
  EXPECT_EQ(s.sample(copy), 1);  // 2.0 - 0.5 < 1.7
  EXPECT_FLOAT_EQ(copy[0], 1.5f);
}

TEST(Sampler, FrequencyPenaltyCountsWithDecay) {
  rwkv::SamplerParams p;
  p.temperature = 0;
  p.frequency_penalty = 0.3f;
  p.penalty_decay = 0.5f;
  rwkv::Sampler s(p, 2);
  const std::vector<float> logits = {1.0f, 0.0f};
  // Counts of token 0 after each accept: 1, 1.5, 1.75, 1.875 (decay before adding).
  const float expected[] = {1.0f - 0.3f * 1.0f, 1.0f - 0.3f * 1.5f, 1.0f - 0.3f * 1.75f, 1.0f - 0.3f * 1.875f};
  for (float e : expected) {
    s.accept(0);
    auto copy = logits;
    s.sample(copy);
    EXPECT_NEAR(copy[0], e, 1e-6);
  }
  // An exempt token (a space or digit in ChatRWKV) gets the presence term only.
  rwkv::SamplerParams q = p;
  q.presence_penalty = 0.25f;
  rwkv::Sampler t(q, 2);
  t.accept(1, /*exempt=*/true);
  t.accept(1, /*exempt=*/true);
  auto copy = logits;
  t.sample(copy);
  EXPECT_FLOAT_EQ(copy[1], -0.25f);
}

TEST(Sampler, RepetitionPenaltyBiasAndBans) {
  rwkv::SamplerParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0f;
  p.logit_bias = {{2, 5.0f}};
  p.banned_tokens = {3};
  rwkv::Sampler s(p, 4);
  s.accept(0);
  std::vector<float> logits = {2.0f, -1.0f, -4.0f, 100.0f};
  EXPECT_EQ(s.sample(logits), 0);  // 3 banned; 2 biased to 1.0; 0 halved to 1.0 (ties: lowest id)
  EXPECT_FLOAT_EQ(logits[0], 1.0f);
  EXPECT_FLOAT_EQ(logits[2], 1.0f);
  EXPECT_TRUE(std::isinf(logits[3]));
  s.accept(1);
  std::vector<float> again = {0.0f, -1.0f, -9.0f, 0.0f};
  s.sample(again);
  EXPECT_FLOAT_EQ(again[1], -2.0f);  // negative logits are multiplied
}

TEST(Sampler, BannedTokensAreNeverDrawn) {
  rwkv::SamplerParams p;
  p.temperature = 1.5f;
  std::vector<float> logits(50, 0.0f);
  for (int32_t i = 0; i < 50; i += 2) p.banned_tokens.push_back(i);
  for (int32_t t : draws(p, logits, 2000)) ASSERT_EQ(t % 2, 1);
}

TEST(Sampler, InvalidParametersAreRefused) {
  auto make = [](auto edit) {
    rwkv::SamplerParams p;
    edit(p);
    rwkv::Sampler s(p, 10);
  };
  EXPECT_THROW(make([](auto& p) { p.temperature = -1; }), rwkv::Error);
  EXPECT_THROW(make([](auto& p) { p.top_p = 0; }), rwkv::Error);
  EXPECT_THROW(make([](auto& p) { p.top_p = 1.5f; }), rwkv::Error);
  EXPECT_THROW(make([](auto& p) { p.top_k = -2; }), rwkv::Error);
  EXPECT_THROW(make([](auto& p) { p.min_p = 2; }), rwkv::Error);
  EXPECT_THROW(make([](auto& p) { p.logit_bias = {{10, 1.0f}}; }), rwkv::Error);
  EXPECT_THROW(make([](auto& p) { p.banned_tokens = {-1}; }), rwkv::Error);
  rwkv::SamplerParams p;
  rwkv::Sampler s(p, 4);
  std::vector<float> wrong(3);
  EXPECT_THROW(s.sample(wrong), rwkv::Error);
  EXPECT_THROW(s.accept(4), rwkv::Error);
}

}  // namespace
