// One sequence's generation, a token at a time, apart from who runs the model: Session
// (one sequence) and a server (many sequences in one batched pass) share this definition
// of sampling, end-of-text, stop strings, UTF-8 hold-back and max_tokens.
//
//   rwkv::Generation gen(*tokenizer, model->info().n_vocab, options);
//   std::span<const float> logits = ...;            // after the prompt
//   while (!gen.finished()) {
//     rwkv::Generation::Step step = gen.step(logits);
//     if (step.token) logits = run_model(*step.token);  // feed what was kept
//     show(step.text);
//   }
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "rwkv/sampler.hpp"
#include "rwkv/tokenizer.hpp"

namespace rwkv {

struct GenerateOptions {
  SamplerParams sampler;
  int32_t max_tokens = 256;
  // Generation stops where the decoded text first contains one of these; the stop
  // string and what follows it are not returned. Empty strings are refused.
  std::vector<std::string> stop;
  // Stop at the end-of-text token (id 0) for World and NeoX. The bytes tokenizer
  // has none: there, byte 0 is an ordinary token.
  bool stop_at_end_of_text = true;
  // Feed the tokens that made up a stop string into the state, so that the next
  // call continues after them (what chat needs); otherwise the state is left
  // after the last token that was fed.
  bool feed_stop_tokens = true;
};

enum class StopReason { MaxTokens, EndOfText, StopString, Cancelled };
const char* stop_reason_name(StopReason reason);

class Generation {
 public:
  // What one step decided.
  struct Step {
    // The sampled token, kept in tokens(): feed it to the model to get the next step's
    // logits (or to leave the state after it). Empty for end-of-text, which is not kept.
    std::optional<int32_t> token;
    // Text now safe to show: whole UTF-8 and no part of a possible stop string. May be
    // empty; once finished, it includes whatever was held back.
    std::string text;
    bool finished = false;
  };

  // Throws rwkv::Error for an empty stop string, max_tokens < 0 or bad sampler
  // parameters. The sampler draws with options.sampler.seed + seed_offset, so that
  // successive generations of one conversation draw fresh numbers. `tokenizer` must
  // outlive the generation.
  Generation(const Tokenizer& tokenizer, uint32_t n_vocab, const GenerateOptions& options, uint64_t seed_offset = 0);
  // The option checks of the constructor alone, for callers that validate early.
  static void check_options(const GenerateOptions& options);

  // Samples the next token from `logits` (n_vocab values after the prompt or after the
  // previous step's token; not modified). Must not be called once finished().
  Step step(std::span<const float> logits);
  // Ends the generation early (a cancelling callback, a client gone): reason Cancelled,
  // and whatever was held back is dropped.
  void cancel();

  bool finished() const { return finished_; }
  StopReason reason() const { return reason_; }
  // Generated tokens, including any that formed a stop string (not end-of-text).
  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  void finish(StopReason reason, Step& step);

  const Tokenizer& tokenizer_;
  GenerateOptions options_;
  Sampler sampler_;
  StreamDecoder decoder_;
  bool has_end_of_text_;
  std::vector<float> scratch_;  // [n_vocab] the sampler's working copy of the logits
  std::string pending_;         // decoded text held back as a possible stop string's start
  std::vector<int32_t> tokens_;
  bool finished_ = false;
  StopReason reason_ = StopReason::MaxTokens;
};

}  // namespace rwkv
