// Choosing the next token from the logits.
//
//   rwkv::SamplerParams p;            // the official defaults, then adjust:
//   p.temperature = 0.8f; p.top_p = 0.9f; p.seed = 42;
//   rwkv::Sampler sampler(p, model->info().n_vocab);
//   int32_t token = sampler.sample(logits);   // logits may be modified
//   sampler.accept(token, is_exempt);          // updates the repetition penalties
//
// Each option is independent; a value at its default disables it.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <vector>

namespace rwkv {

enum class SamplingOrder {
  // ChatRWKV's sample_logits: penalties, softmax, top-p, top-k, then temperature as p^(1/T).
  Official,
  // llama.cpp's usual chain: penalties, temperature on logits, top-k, top-p, min-p, softmax.
  Llama,
};

struct SamplerParams {
  float temperature = 1.0f;  // 0 picks the most likely token (greedy)
  int32_t top_k = 0;         // keep the k most likely tokens; 0 = off
  float top_p = 1.0f;        // keep the smallest set whose probability reaches top_p; 1 = off
  float min_p = 0.0f;        // drop tokens below min_p × the top probability; 0 = off
  // llama.cpp-style penalty on tokens seen so far: positive logits divided by it,
  // negative multiplied; 1 = off.
  float repetition_penalty = 1.0f;
  // ChatRWKV's penalties: logit -= presence + count × frequency, where each seen
  // token's count decays by `penalty_decay` per generated token.
  float presence_penalty = 0.0f;   // alpha_presence
  float frequency_penalty = 0.0f;  // alpha_frequency
  float penalty_decay = 0.996f;    // alpha_decay
  std::map<int32_t, float> logit_bias;  // added to a token's logit
  std::vector<int32_t> banned_tokens;   // never sampled
  uint64_t seed = 0;                    // same seed, same logits → same tokens
  SamplingOrder order = SamplingOrder::Official;
};

class Sampler {
 public:
  // Throws rwkv::Error for out-of-range parameters or token ids (naming them).
  Sampler(const SamplerParams& params, uint32_t n_vocab);

  // Picks a token. `logits` (n_vocab values) is used as scratch and changed.
  int32_t sample(std::span<float> logits);
  // Records a generated token for the penalties. ChatRWKV does not count tokens that
  // decode to a single space, tab or digit: pass exempt = true for those.
  void accept(int32_t token, bool exempt = false);
  // Forgets the penalty history (the seed's random sequence continues).
  void reset_history();

  const SamplerParams& params() const { return params_; }

 private:
  void apply_penalties(std::span<float> logits) const;
  SamplerParams params_;
  uint32_t n_vocab_;
  std::mt19937_64 rng_;
  std::vector<float> occurrence_;     // decayed counts (presence/frequency)
  std::vector<int32_t> seen_tokens_;  // tokens with a nonzero count, for sparse updates
  std::vector<uint8_t> seen_;         // for the repetition penalty
  std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace rwkv
