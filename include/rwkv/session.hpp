// Prompt in, text out: a model, its state, a tokenizer and a sampler together.
//
//   auto model = rwkv::Model::load("model.rwkv");
//   auto tok = rwkv::load_tokenizer(model->info().tokenizer, "rwkv_vocab_v20230424.txt");
//   rwkv::Session session(model, std::move(tok));
//   rwkv::GenerateOptions opt;
//   opt.max_tokens = 100;
//   opt.stop = {"\n\n"};
//   session.generate("The capital of France is", opt, [](std::string_view piece) {
//     std::cout << piece << std::flush;
//     return true;  // false cancels
//   });
//
// The state carries over between calls, so a conversation feeds only its new text.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rwkv/generation.hpp"
#include "rwkv/model.hpp"
#include "rwkv/sampler.hpp"
#include "rwkv/state.hpp"
#include "rwkv/tokenizer.hpp"

namespace rwkv {

struct GenerateResult {
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> tokens;  // generated, including any that formed a stop string
  std::string text;             // what was passed to the callback, in order
  StopReason reason = StopReason::MaxTokens;
  double prompt_seconds = 0;
  double generate_seconds = 0;
};

// Receives each piece of text as soon as it is complete UTF-8 and cannot be the
// start of a stop string; returning false cancels generation.
using TextCallback = std::function<bool(std::string_view piece)>;

class Session {
 public:
  Session(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tokenizer);

  const Model& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  State& state() { return state_; }
  const State& state() const { return state_; }
  // Back to the initial state (or the one set with set_initial_state).
  void reset();
  // The state reset() returns to, e.g. one loaded with load_tuned_state.
  void set_initial_state(State state);

  // Feeds tokens in sequence mode, computing logits only after the last one; returns those logits
  // (empty if no tokens were given). Throws rwkv::Error for an out-of-range id.
  std::span<const float> feed(std::span<const int32_t> tokens);
  // Encodes and feeds text.
  std::span<const float> feed_text(std::string_view text);

  // Feeds the prompt (which must not be empty, unless the session has already been
  // fed, so that there are logits to sample from), then samples up to max_tokens.
  // Every sampled token except end-of-text is fed into the state. The n-th call on
  // a session samples with seed + n, so a conversation's turns draw fresh numbers
  // while a run stays exactly repeatable.
  GenerateResult generate(std::string_view prompt, const GenerateOptions& options, const TextCallback& on_text = {});

 private:
  std::shared_ptr<const Model> model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  State initial_;
  State state_;
  std::vector<float> logits_;
  bool have_logits_ = false;
  uint64_t generate_calls_ = 0;
};

}  // namespace rwkv
