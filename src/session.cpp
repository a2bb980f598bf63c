#include "rwkv/session.hpp"

#include <fmt/format.h>

#include <chrono>
#include <string_view>

#include "rwkv/error.hpp"

namespace rwkv {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

Session::Session(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tokenizer)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)) {
  if (!model_ || !tokenizer_) throw Error("session: a model and a tokenizer are required");
  if (static_cast<uint32_t>(tokenizer_->vocab_size()) > model_->info().n_vocab) {
    throw Error(fmt::format("session: the {} tokenizer has {} tokens but {} has n_vocab = {}",
                            tokenizer_kind_name(tokenizer_->kind()), tokenizer_->vocab_size(), model_->path(),
                            model_->info().n_vocab));
  }
  initial_ = model_->new_state();
  state_ = initial_;
  logits_.resize(model_->info().n_vocab);
}

void Session::reset() {
  state_ = initial_;
  have_logits_ = false;
}

void Session::set_initial_state(State state) {
  if (state.n_layer != initial_.n_layer || state.floats_per_layer != initial_.floats_per_layer ||
      state.data.size() != initial_.data.size()) {
    throw Error(fmt::format("session: the initial state does not belong to {}", model_->path()));
  }
  initial_ = std::move(state);
  reset();
}

std::span<const float> Session::feed(std::span<const int32_t> tokens) {
  if (tokens.empty()) return {};
  for (int32_t t : tokens) {
    if (t < 0 || static_cast<uint32_t>(t) >= model_->info().n_vocab) {
      throw Error(fmt::format("token id {} is out of range for {} (n_vocab = {})", t, model_->path(),
                              model_->info().n_vocab));
    }
  }
  model_->forward_sequence(tokens, state_, logits_);
  have_logits_ = true;
  return logits_;
}

std::span<const float> Session::feed_text(std::string_view text) {
  const std::vector<int32_t> ids = tokenizer_->encode(text);
  return feed(ids);
}

GenerateResult Session::generate(std::string_view prompt, const GenerateOptions& options, const TextCallback& on_text) {
  // Each call continues the random sequence with a new seed, so that the turns of a
  // conversation do not repeat each other's random choices.
  Generation generation(*tokenizer_, model_->info().n_vocab, options, generate_calls_);
  ++generate_calls_;  // after the options were accepted

  GenerateResult result;
  const auto prompt_start = Clock::now();
  result.prompt_tokens = tokenizer_->encode(prompt);
  if (result.prompt_tokens.empty() && !have_logits_) throw Error("generate: the prompt is empty");
  feed(result.prompt_tokens);
  result.prompt_seconds = seconds_since(prompt_start);

  const auto gen_start = Clock::now();
  bool cancelled = false;
  while (!generation.finished()) {
    Generation::Step step = generation.step(logits_);
    // Every sampled token goes into the state, a stop string's too: the next turn
    // of a conversation then continues right after it.
    if (step.token) model_->forward(*step.token, state_, logits_);
    if (step.text.empty()) continue;
    result.text += step.text;
    if (on_text && !on_text(step.text)) {
      cancelled = true;
      generation.cancel();
    }
  }
  result.tokens = generation.tokens();
  result.reason = cancelled ? StopReason::Cancelled : generation.reason();
  result.generate_seconds = seconds_since(gen_start);
  return result;
}

}  // namespace rwkv
