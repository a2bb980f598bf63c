#include "rwkv/generation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "rwkv/error.hpp"

namespace rwkv {

namespace {

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

void Generation::check_options(const GenerateOptions& options) {
  for (const std::string& s : options.stop) {
    if (s.empty()) throw Error("generate: a stop string is empty");
  }
  if (options.max_tokens < 0) throw Error(fmt::format("generate: max tokens must be >= 0, got {}", options.max_tokens));
}

namespace {
SamplerParams with_seed_offset(const GenerateOptions& options, uint64_t seed_offset) {
  Generation::check_options(options);  // before the sampler's own checks, as its errors are read first
  SamplerParams params = options.sampler;
  params.seed += seed_offset;
  return params;
}
}  // namespace

Generation::Generation(const Tokenizer& tokenizer, uint32_t n_vocab, const GenerateOptions& options,
                       uint64_t seed_offset)
    : tokenizer_(tokenizer),
      options_(options),
      sampler_(with_seed_offset(options, seed_offset), n_vocab),
      decoder_(tokenizer),
      has_end_of_text_(options.stop_at_end_of_text && tokenizer.kind() != TokenizerKind::Bytes),
      scratch_(n_vocab) {
  if (options_.max_tokens == 0) finished_ = true;
}

void Generation::finish(StopReason reason, Step& step) {
  finished_ = true;
  reason_ = reason;
  step.finished = true;
  // Whatever was held back (as a possible stop string or part of a character) is
  // text after all.
  pending_ += decoder_.flush();
  step.text += pending_;
  pending_.clear();
}

Generation::Step Generation::step(std::span<const float> logits) {
  if (finished_) throw Error("generate: step after the generation finished");
  if (logits.size() != scratch_.size()) {
    throw Error(fmt::format("generate: {} logits given, expected n_vocab = {}", logits.size(), scratch_.size()));
  }
  Step step;
  scratch_.assign(logits.begin(), logits.end());
  const int32_t token = sampler_.sample(scratch_);
  if (has_end_of_text_ && token == 0) {
    finish(StopReason::EndOfText, step);
    return step;
  }
  step.token = token;
  tokens_.push_back(token);
  sampler_.accept(token, exempt_from_penalty(tokenizer_.token_bytes(token)));
  pending_ += decoder_.push(token);
  if (!options_.stop.empty()) {
    size_t first = std::string::npos;
    for (const std::string& s : options_.stop) first = std::min(first, pending_.find(s));
    if (first != std::string::npos) {
      // The stop string and anything after it are dropped, and so is what the decoder
      // still holds.
      step.text = pending_.substr(0, first);
      pending_.clear();
      finished_ = true;
      reason_ = StopReason::StopString;
      step.finished = true;
      return step;
    }
    const size_t hold = held_back(pending_, options_.stop);
    step.text = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
  } else {
    step.text = std::move(pending_);
    pending_.clear();
  }
  if (tokens_.size() >= static_cast<size_t>(options_.max_tokens)) finish(StopReason::MaxTokens, step);
  return step;
}

void Generation::cancel() {
  if (finished_) return;
  finished_ = true;
  reason_ = StopReason::Cancelled;
  pending_.clear();
}

}  // namespace rwkv
