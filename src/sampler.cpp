// Follows ChatRWKV rwkv/utils.py (`sample_logits`, the penalty bookkeeping of
// `generate`) for the official order; llama.cpp's common sampler chain for the other.
#include "rwkv/sampler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "rwkv/error.hpp"

namespace rwkv {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Uniform in [0, 1) from 53 random bits: the same on every platform and library.
double uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

using Candidates = std::vector<std::pair<float, int32_t>>;  // (probability or logit, token)

bool higher_first(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// Sorts just enough of `c` (descending) to contain the top `needed` entries.
void sort_top(Candidates& c, size_t needed) {
  needed = std::min(needed, c.size());
  std::partial_sort(c.begin(), c.begin() + static_cast<ptrdiff_t>(needed), c.end(), higher_first);
}

// Keeps the smallest descending prefix whose probability sum reaches top_p, plus any
// token tied with its last one (ChatRWKV keeps every probability >= the cutoff).
// Returns the number of entries kept; sorts only as far as it needs to.
size_t top_p_prefix(Candidates& c, float top_p, double total) {
  size_t sorted = 0;
  size_t window = 64;
  double cumulative = 0;
  while (true) {
    sort_top(c, window);
    sorted = std::min(window, c.size());
    cumulative = 0;
    for (size_t i = 0; i < sorted; ++i) {
      cumulative += c[i].first;
      if (cumulative >= top_p * total) {
        const float cutoff = c[i].first;
        size_t end = i + 1;
        while (end < c.size()) {
          // Ties beyond the sorted window are found by a scan, as they may lie anywhere.
          if (end >= sorted) {
            auto tie = std::partition(c.begin() + static_cast<ptrdiff_t>(end), c.end(),
                                      [cutoff](const auto& e) { return e.first >= cutoff; });
            return static_cast<size_t>(tie - c.begin());
          }
          if (c[end].first < cutoff) break;
          ++end;
        }
        return end;
      }
    }
    if (sorted == c.size()) return c.size();
    window *= 4;
  }
}

int32_t draw(const Candidates& c, size_t count, std::mt19937_64& rng) {
  double total = 0;
  for (size_t i = 0; i < count; ++i) total += c[i].first;
  double r = uniform(rng) * total;
  for (size_t i = 0; i < count; ++i) {
    r -= c[i].first;
    if (r < 0) return c[i].second;
  }
  for (size_t i = count; i-- > 0;) {
    if (c[i].first > 0) return c[i].second;
  }
  return c.empty() ? 0 : c[0].second;
}

}  // namespace

Sampler::Sampler(const SamplerParams& params, uint32_t n_vocab)
    : params_(params), n_vocab_(n_vocab), rng_(params.seed), occurrence_(n_vocab, 0.0f), seen_(n_vocab, 0) {
  const SamplerParams& p = params_;
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature)) {
    throw Error(fmt::format("temperature must be >= 0, got {}", p.temperature));
  }
  if (p.top_k < 0) throw Error(fmt::format("top-k must be >= 0, got {}", p.top_k));
  if (!(p.top_p > 0 && p.top_p <= 1)) throw Error(fmt::format("top-p must be in (0, 1], got {}", p.top_p));
  if (!(p.min_p >= 0 && p.min_p <= 1)) throw Error(fmt::format("min-p must be in [0, 1], got {}", p.min_p));
  if (!(p.repetition_penalty > 0) || !std::isfinite(p.repetition_penalty)) {
    throw Error(fmt::format("repetition penalty must be > 0, got {}", p.repetition_penalty));
  }
  if (!std::isfinite(p.presence_penalty) || !std::isfinite(p.frequency_penalty)) {
    throw Error("presence and frequency penalties must be finite");
  }
  if (!(p.penalty_decay >= 0 && p.penalty_decay <= 1)) {
    throw Error(fmt::format("penalty decay must be in [0, 1], got {}", p.penalty_decay));
  }
  auto check_id = [&](int32_t id, const char* what) {
    if (id < 0 || static_cast<uint32_t>(id) >= n_vocab) {
      throw Error(fmt::format("{} names token id {}, outside the vocabulary (n_vocab = {})", what, id, n_vocab));
    }
  };
  for (const auto& [id, bias] : p.logit_bias) check_id(id, "logit bias");
  for (int32_t id : p.banned_tokens) check_id(id, "banned token list");
  if (p.banned_tokens.size() >= n_vocab) throw Error("every token is banned");
  candidates_.reserve(n_vocab);
}

void Sampler::apply_penalties(std::span<float> logits) const {
  for (const auto& [id, bias] : params_.logit_bias) logits[id] += bias;
  if (params_.presence_penalty != 0 || params_.frequency_penalty != 0) {
    for (int32_t id : seen_tokens_) {
      logits[id] -= params_.presence_penalty + occurrence_[id] * params_.frequency_penalty;
    }
  }
  if (params_.repetition_penalty != 1.0f) {
    for (int32_t id : seen_tokens_) {
      if (!seen_[id]) continue;
      logits[id] = logits[id] > 0 ? logits[id] / params_.repetition_penalty : logits[id] * params_.repetition_penalty;
    }
  }
  for (int32_t id : params_.banned_tokens) logits[id] = kNegInf;
}

int32_t Sampler::sample(std::span<float> logits) {
  if (logits.size() != n_vocab_) {
    throw Error(fmt::format("sampler: {} logits given, the vocabulary has {}", logits.size(), n_vocab_));
  }
  apply_penalties(logits);
  for (float v : logits) {
    if (std::isnan(v)) throw Error("sampler: the logits contain NaN");
  }
  if (params_.temperature == 0.0f) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }

  const float max_logit = *std::max_element(logits.begin(), logits.end());
  Candidates& c = candidates_;
  c.clear();
  if (params_.order == SamplingOrder::Llama) {
    // Temperature scales the logits first; filters then act on the sharpened distribution.
    for (uint32_t i = 0; i < n_vocab_; ++i) {
      if (logits[i] != kNegInf) c.push_back({(logits[i] - max_logit) / params_.temperature, int32_t(i)});
    }
    size_t count = c.size();
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < count) {
      sort_top(c, params_.top_k);
      count = params_.top_k;
      c.resize(count);
    }
    double total = 0;
    for (auto& e : c) total += (e.first = std::exp(e.first));
    if (params_.top_p < 1.0f) {
      count = top_p_prefix(c, params_.top_p, total);
      c.resize(count);
    }
    if (params_.min_p > 0.0f) {
      float top = 0;
      for (const auto& e : c) top = std::max(top, e.first);
      std::erase_if(c, [&](const auto& e) { return e.first < params_.min_p * top; });
    }
    return draw(c, c.size(), rng_);
  }

  // Official order: softmax, top-p, top-k, min-p on probabilities, then p^(1/T).
  double total = 0;
  for (uint32_t i = 0; i < n_vocab_; ++i) {
    if (logits[i] == kNegInf) continue;
    const float p = std::exp(logits[i] - max_logit);
    c.push_back({p, int32_t(i)});
    total += p;
  }
  size_t count = c.size();
  if (params_.top_p < 1.0f) count = top_p_prefix(c, params_.top_p, total);
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < count) {
    sort_top(c, params_.top_k);
    count = params_.top_k;
  }
  c.resize(count);
  if (params_.min_p > 0.0f) {
    float top = 0;
    for (const auto& e : c) top = std::max(top, e.first);
    std::erase_if(c, [&](const auto& e) { return e.first < params_.min_p * top; });
  }
  if (params_.temperature != 1.0f) {
    const double inv_t = 1.0 / params_.temperature;
    for (auto& e : c) e.first = static_cast<float>(std::pow(double(e.first), inv_t));
  }
  return draw(c, c.size(), rng_);
}

void Sampler::accept(int32_t token, bool exempt) {
  if (token < 0 || static_cast<uint32_t>(token) >= n_vocab_) {
    throw Error(fmt::format("sampler: token id {} is outside the vocabulary (n_vocab = {})", token, n_vocab_));
  }
  for (int32_t id : seen_tokens_) occurrence_[id] *= params_.penalty_decay;
  if (!seen_[token]) {
    seen_[token] = 1;
    seen_tokens_.push_back(token);
  }
  if (!exempt) occurrence_[token] += 1.0f;
}

void Sampler::reset_history() {
  for (int32_t id : seen_tokens_) {
    occurrence_[id] = 0;
    seen_[id] = 0;
  }
  seen_tokens_.clear();
}

}  // namespace rwkv
