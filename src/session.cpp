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

// ChatRWKV does not count a token toward the repetition penalties when its text is a
// piece of " \t0123456789" (Python's `ttt in ' \t0123456789'`, a substring test).
bool exempt_from_penalty(std::string_view token_text) {
  return std::string_view(" \t0123456789").find(token_text) != std::string_view::npos;
}

// Length of the longest suffix of `text` that is a proper prefix of some stop string:
// those bytes might still become a stop string, so they are held back.
size_t held_back(std::string_view text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& s : stops) {
    for (size_t n = std::min(text.size(), s.size() - 1); n > hold; --n) {
      if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
        hold = n;
        break;
      }
    }
  }
  return hold;
}

}  // namespace

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::MaxTokens: return "max_tokens";
    case StopReason::EndOfText: return "end_of_text";
    case StopReason::StopString: return "stop_string";
    case StopReason::Cancelled: return "cancelled";
  }
  return "unknown";
}

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
  for (const std::string& s : options.stop) {
    if (s.empty()) throw Error("generate: a stop string is empty");
  }
  if (options.max_tokens < 0) throw Error(fmt::format("generate: max tokens must be >= 0, got {}", options.max_tokens));
  // Each call continues the random sequence with a new seed, so that the turns of a
  // conversation do not repeat each other's random choices.
  SamplerParams sampler_params = options.sampler;
  sampler_params.seed += generate_calls_++;
  Sampler sampler(sampler_params, model_->info().n_vocab);

  GenerateResult result;
  const auto prompt_start = Clock::now();
  result.prompt_tokens = tokenizer_->encode(prompt);
  if (result.prompt_tokens.empty() && !have_logits_) throw Error("generate: the prompt is empty");
  feed(result.prompt_tokens);
  result.prompt_seconds = seconds_since(prompt_start);

  const auto gen_start = Clock::now();
  const bool has_end_of_text = options.stop_at_end_of_text && tokenizer_->kind() != TokenizerKind::Bytes;
  StreamDecoder decoder(*tokenizer_);
  std::string pending;
  bool cancelled = false;
  auto emit = [&](std::string_view piece) {
    if (piece.empty() || cancelled) return;
    result.text.append(piece);
    if (on_text && !on_text(piece)) cancelled = true;
  };
  std::vector<float> scratch(logits_.size());
  for (int32_t i = 0; i < options.max_tokens && !cancelled; ++i) {
    scratch.assign(logits_.begin(), logits_.end());
    const int32_t token = sampler.sample(scratch);
    if (has_end_of_text && token == 0) {
      result.reason = StopReason::EndOfText;
      break;
    }
    result.tokens.push_back(token);
    sampler.accept(token, exempt_from_penalty(tokenizer_->token_bytes(token)));
    // Every sampled token goes into the state, a stop string's too: the next turn
    // of a conversation then continues right after it.
    model_->forward(token, state_, logits_);
    pending += decoder.push(token);
    if (!options.stop.empty()) {
      size_t first = std::string::npos;
      for (const std::string& s : options.stop) first = std::min(first, pending.find(s));
      if (first != std::string::npos) {
        emit(std::string_view(pending).substr(0, first));
        result.reason = StopReason::StopString;
          break;
      }
      const size_t hold = held_back(pending, options.stop);
      emit(std::string_view(pending).substr(0, pending.size() - hold));
      pending.erase(0, pending.size() - hold);
    } else {
      emit(pending);
      pending.clear();
    }
  }
  if (cancelled) {
    result.reason = StopReason::Cancelled;
  } else if (result.reason != StopReason::StopString) {
    pending += decoder.flush();
    emit(pending);
    if (cancelled) result.reason = StopReason::Cancelled;
  }
  result.generate_seconds = seconds_since(gen_start);
  return result;
}

}  // namespace rwkv
