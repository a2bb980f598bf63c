#include "server/scheduler.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "rwkv/error.hpp"

namespace rwkv::server {

using Clock = std::chrono::steady_clock;

SequenceChannel::Update SequenceChannel::take(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return !text_.empty() || finished_; });
  Update update;
  update.text = std::move(text_);
  text_.clear();
  update.finished = finished_;
  update.reason = reason_;
  update.failure = failure_;
  update.failure_message = failure_message_;
  update.completion_tokens = completion_tokens_;
  return update;
}

void SequenceChannel::append(std::string_view text, size_t completion_tokens) {
  {
    std::lock_guard lock(mutex_);
    text_ += text;
    completion_tokens_ = completion_tokens;
  }
  if (!text.empty()) changed_.notify_all();
}

void SequenceChannel::finish(StopReason reason, size_t completion_tokens) {
  {
    std::lock_guard lock(mutex_);
    finished_ = true;
    reason_ = reason;
    completion_tokens_ = completion_tokens;
  }
  changed_.notify_all();
}

void SequenceChannel::fail(Failure failure, std::string message) {
  {
    std::lock_guard lock(mutex_);
    finished_ = true;
    reason_ = StopReason::Cancelled;
    failure_ = failure;
    failure_message_ = std::move(message);
  }
  changed_.notify_all();
}

struct Scheduler::Sequence {
  Sequence(std::vector<int32_t> prompt_tokens, const Tokenizer& tokenizer, uint32_t n_vocab,
           const GenerateOptions& options)
      : prompt(std::move(prompt_tokens)),
        generation(tokenizer, n_vocab, options),
        channel(std::make_shared<SequenceChannel>()) {}

  std::vector<int32_t> prompt;
  size_t prompt_fed = 0;
  State state;                // allocated when the sequence becomes active
  std::vector<float> logits;  // [n_vocab] after its latest token
  Generation generation;
  int32_t next_token = 0;     // once the prompt is in: the token this step feeds
  bool done = false;          // finished or failed this step: leaves the active set
  std::shared_ptr<SequenceChannel> channel;
};

Scheduler::Scheduler(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tokenizer,
                     SchedulerOptions options)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), options_(options) {
  if (options_.parallel == 0) throw Error("server: parallel must be at least 1");
  if (options_.prompt_chunk_tokens == 0) throw Error("server: the prompt chunk must be at least 1 token");
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() { shutdown(std::chrono::milliseconds(0)); }

std::shared_ptr<SequenceChannel> Scheduler::submit(std::vector<int32_t> prompt_tokens, const GenerateOptions& options) {
  if (prompt_tokens.empty()) throw Error("the prompt is empty");
  auto sequence = std::make_unique<Sequence>(std::move(prompt_tokens), *tokenizer_, model_->info().n_vocab, options);
  auto channel = sequence->channel;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw ShuttingDown("the server is shutting down");
    // Free active slots take requests at the next step, so they count as room too.
    const size_t free_slots = options_.parallel - std::min(options_.parallel, active_count_);
    if (waiting_.size() >= options_.queue + free_slots) {
      throw QueueFull(fmt::format("the server is busy: {} requests active and {} waiting", active_count_,
                                  waiting_.size()));
    }
    waiting_.push_back(std::move(sequence));
    stats_.queued = waiting_.size();
  }
  work_.notify_all();
  return channel;
}

void Scheduler::shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      deadline_ = Clock::now() + grace;
    }
  }
  work_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Scheduler::admit_locked() {
  // Requests whose clients left while they waited never start.
  const auto gone = std::remove_if(waiting_.begin(), waiting_.end(),
                                   [](const auto& s) { return s->channel->cancelled(); });
  stats_.cancelled += static_cast<uint64_t>(waiting_.end() - gone);
  waiting_.erase(gone, waiting_.end());
  while (!waiting_.empty() && active_.size() < options_.parallel) {
    std::unique_ptr<Sequence> sequence = std::move(waiting_.front());
    waiting_.pop_front();
    if (sequence->generation.finished()) {  // max_tokens 0: nothing to run
      sequence->channel->finish(sequence->generation.reason(), 0);
      continue;
    }
    sequence->state = model_->new_state();
    sequence->logits.resize(model_->info().n_vocab);
    active_.push_back(std::move(sequence));
  }
  active_count_ = active_.size();
  stats_.active = active_.size();
  stats_.queued = waiting_.size();
}

void Scheduler::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !active_.empty(); });
      if (stopping_) {
        for (auto& sequence : waiting_) sequence->channel->fail(Failure::ShuttingDown, "the server is shutting down");
        waiting_.clear();
        if (Clock::now() >= *deadline_) {
          for (auto& sequence : active_) {
            sequence->channel->fail(Failure::ShuttingDown, "the server is shutting down");
          }
          stats_.cancelled += active_.size();
          active_.clear();
        }
        if (active_.empty()) {
          active_count_ = 0;
          stats_.active = 0;
          stats_.queued = 0;
          return;
        }
      }
      admit_locked();
      if (active_.empty()) continue;
    }
    step();
  }
}

void Scheduler::step() {
  // Sequences whose clients left are dropped before they cost another pass.
  const size_t before = active_.size();
  std::erase_if(active_, [](const auto& s) { return s->channel->cancelled(); });
  const size_t dropped = before - active_.size();
  if (active_.empty()) {
    std::lock_guard lock(mutex_);
    stats_.cancelled += dropped;
    active_count_ = stats_.active = 0;
    return;
  }

  std::vector<BatchItem>& items = step_items_;
  std::vector<Sequence*>& sampled = step_sampled_;  // sequences whose logits this step makes ready
  items.clear();
  sampled.clear();
  size_t rows = 0;
  uint64_t prompt_tokens = 0;
  for (auto& s : active_) {
    if (s->prompt_fed < s->prompt.size()) {
      const size_t n = std::min(options_.prompt_chunk_tokens, s->prompt.size() - s->prompt_fed);
      const bool last_chunk = s->prompt_fed + n == s->prompt.size();
      items.push_back({std::span<const int32_t>(s->prompt).subspan(s->prompt_fed, n), &s->state,
                       last_chunk ? std::span<float>(s->logits) : std::span<float>()});
      s->prompt_fed += n;
      prompt_tokens += n;
      rows += n;
      if (last_chunk) sampled.push_back(s.get());
    } else {
      items.push_back({std::span<const int32_t>(&s->next_token, 1), &s->state, std::span<float>(s->logits)});
      rows += 1;
      sampled.push_back(s.get());
    }
  }

  std::string batch_error;
  try {
    model_->forward_batch(items);
  } catch (const std::exception& e) {
    batch_error = e.what();
  }

  uint64_t generated = 0;
  if (!batch_error.empty()) {
    for (auto& s : active_) {
      s->channel->fail(Failure::Internal, batch_error);
      s->done = true;
    }
  } else {
    for (Sequence* s : sampled) {
      try {
        Generation::Step step = s->generation.step(s->logits);
        if (step.token) {
          s->next_token = *step.token;
          ++generated;
        }
        s->channel->append(step.text, s->generation.tokens().size());
        if (step.finished) {
          s->channel->finish(s->generation.reason(), s->generation.tokens().size());
          s->done = true;
        }
      } catch (const std::exception& e) {
        s->channel->fail(Failure::Internal, e.what());
        s->done = true;
      }
    }
  }
  std::erase_if(active_, [](const auto& s) { return s->done; });

  std::lock_guard lock(mutex_);
  stats_.steps += 1;
  stats_.last_batch_sequences = items.size();
  stats_.last_batch_tokens = rows;
  stats_.largest_batch_sequences = std::max(stats_.largest_batch_sequences, items.size());
  stats_.prompt_tokens += prompt_tokens;
  stats_.completion_tokens += generated;
  stats_.cancelled += dropped;
  active_count_ = stats_.active = active_.size();
}

}  // namespace rwkv::server
