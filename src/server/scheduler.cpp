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
  update.cached_tokens = cached_tokens_;
  return update;
}

void SequenceChannel::set_cached_tokens(size_t cached_tokens) {
  std::lock_guard lock(mutex_);
  cached_tokens_ = cached_tokens;
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
  Sequence(SequenceRequest request, const Tokenizer& tokenizer, uint32_t n_vocab)
      : prompt(std::move(request.prompt_tokens)),
        checkpoints(std::move(request.checkpoints)),
        start_state(std::move(request.start_state)),
        origin(std::move(request.start_state_name)),
        reply_start(request.reply_start),
        reply_tokens(std::move(request.reply_tokens)),
        generation(tokenizer, n_vocab, request.options),
        channel(std::make_shared<SequenceChannel>()) {
    // Ascending, inside the prompt, and always its end.
    checkpoints.push_back(prompt.size());
    std::erase_if(checkpoints, [&](size_t n) { return n == 0 || n > prompt.size(); });
    std::sort(checkpoints.begin(), checkpoints.end());
    checkpoints.erase(std::unique(checkpoints.begin(), checkpoints.end()), checkpoints.end());
  }

  // The next checkpoint not yet reached.
  size_t next_checkpoint() const { return checkpoints[reached]; }
  void skip_reached_checkpoints() {
    while (reached < checkpoints.size() && checkpoints[reached] <= prompt_fed) ++reached;
  }

  std::vector<int32_t> prompt;
  std::vector<size_t> checkpoints;
  size_t reached = 0;  // checkpoints passed
  size_t prompt_fed = 0;
  std::shared_ptr<const State> start_state;
  std::string origin;
  size_t reply_start = 0;
  std::function<std::vector<int32_t>(const std::string&)> reply_tokens;
  std::string generated_text;  // kept only when reply_tokens is set
  // Feeding a finished reply into the cache: no logits, no generation, nobody waiting.
  bool filling = false;
  State state;                // allocated when the sequence becomes active
  std::vector<float> logits;  // [n_vocab] after its latest token
  Generation generation;
  bool logits_ready = false;  // the whole prompt came from the cache, logits and all
  int32_t next_token = 0;     // once the prompt is in: the token this step feeds
  bool done = false;          // finished or failed this step: leaves the active set
  std::shared_ptr<SequenceChannel> channel;
};

Scheduler::Scheduler(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tokenizer,
                     SchedulerOptions options)
    : model_(std::move(model)),
      tokenizer_(std::move(tokenizer)),
      options_(options),
      cache_(options.state_cache_bytes) {
  if (options_.parallel == 0) throw Error("server: parallel must be at least 1");
  if (options_.prompt_chunk_tokens == 0) throw Error("server: the prompt chunk must be at least 1 token");
  stats_.cache = cache_.stats();
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() { shutdown(std::chrono::milliseconds(0)); }

std::shared_ptr<SequenceChannel> Scheduler::submit(SequenceRequest request) {
  if (request.prompt_tokens.empty()) throw Error("the prompt is empty");
  auto sequence = std::make_unique<Sequence>(std::move(request), *tokenizer_, model_->info().n_vocab);
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

bool Scheduler::waits_for_fill(const Sequence& sequence) const {
  for (const auto& s : active_) {
    if (s->filling && s->origin == sequence.origin && s->prompt.size() <= sequence.prompt.size() &&
        std::equal(s->prompt.begin(), s->prompt.end(), sequence.prompt.begin())) {
      return true;
    }
  }
  return false;
}

void Scheduler::admit_locked() {
  // Requests whose clients left while they waited never start.
  const auto gone = std::remove_if(waiting_.begin(), waiting_.end(),
                                   [](const auto& s) { return s->channel->cancelled(); });
  stats_.cancelled += static_cast<uint64_t>(waiting_.end() - gone);
  waiting_.erase(gone, waiting_.end());
  for (auto it = waiting_.begin(); it != waiting_.end() && requests_running() < options_.parallel;) {
    // A follow-up turn whose history is still being fed into the cache waits for it, so
    // that it then feeds only its new message.
    if (waits_for_fill(**it)) {
      ++it;
      continue;
    }
    std::unique_ptr<Sequence> sequence = std::move(*it);
    it = waiting_.erase(it);
    if (sequence->generation.finished()) {  // max_tokens 0: nothing to run
      sequence->channel->finish(sequence->generation.reason(), 0);
      continue;
    }
    sequence->state = sequence->start_state ? *sequence->start_state : model_->new_state();
    sequence->logits.resize(model_->info().n_vocab);
    sequence->prompt_fed = cache_.lookup(sequence->origin, sequence->prompt, sequence->state, &sequence->logits);
    // A prompt cached whole, with its logits, samples its first token without a pass.
    sequence->logits_ready = sequence->prompt_fed == sequence->prompt.size();
    sequence->skip_reached_checkpoints();
    sequence->channel->set_cached_tokens(sequence->prompt_fed);
    active_.push_back(std::move(sequence));
  }
  active_count_ = requests_running();
  stats_.active = active_.size();
  stats_.queued = waiting_.size();
  stats_.cache = cache_.stats();
}

void Scheduler::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !active_.empty(); });
      if (stopping_) {
        for (auto& sequence : waiting_) sequence->channel->fail(Failure::ShuttingDown, "the server is shutting down");
        waiting_.clear();
        std::erase_if(active_, [](const auto& s) { return s->filling; });  // nobody waits for these
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
  std::erase_if(active_, [](const auto& s) { return !s->filling && s->channel->cancelled(); });
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
    if (s->logits_ready) {
      s->logits_ready = false;
      sampled.push_back(s.get());
    } else if (s->prompt_fed < s->prompt.size()) {
      // Chunks end at checkpoints, whose states the cache keeps.
      const size_t n = std::min(options_.prompt_chunk_tokens, s->next_checkpoint() - s->prompt_fed);
      const bool last_chunk = s->prompt_fed + n == s->prompt.size();
      const bool wants_logits = last_chunk && !s->filling;
      items.push_back({std::span<const int32_t>(s->prompt).subspan(s->prompt_fed, n), &s->state,
                       wants_logits ? std::span<float>(s->logits) : std::span<float>()});
      s->prompt_fed += n;
      prompt_tokens += n;
      rows += n;
      if (wants_logits) sampled.push_back(s.get());
    } else {
      items.push_back({std::span<const int32_t>(&s->next_token, 1), &s->state, std::span<float>(s->logits)});
      rows += 1;
      sampled.push_back(s.get());
    }
  }

  std::string batch_error;
  try {
    if (!items.empty()) model_->forward_batch(items);
  } catch (const std::exception& e) {
    batch_error = e.what();
  }

  uint64_t generated = 0;
  if (!batch_error.empty()) {
    for (auto& s : active_) {
      if (!s->filling) s->channel->fail(Failure::Internal, batch_error);  // a fill's request has its answer
      s->done = true;
    }
  } else {
    for (auto& s : active_) {
      if (s->reached < s->checkpoints.size() && s->prompt_fed == s->next_checkpoint()) {
        // The prompt's end keeps its logits too, so that the same prompt again (a
        // regenerated reply) starts sampling at once.
        const bool prompt_end = !s->filling && s->prompt_fed == s->prompt.size();
        cache_.insert(s->origin, std::span<const int32_t>(s->prompt).first(s->prompt_fed), s->state,
                      prompt_end ? std::span<const float>(s->logits) : std::span<const float>());
        ++s->reached;
        if (s->filling && s->prompt_fed == s->prompt.size()) s->done = true;
      }
    }
    for (Sequence* s : sampled) {
      try {
        Generation::Step step = s->generation.step(s->logits);
        if (step.token) {
          s->next_token = *step.token;
          ++generated;
        }
        s->channel->append(step.text, s->generation.tokens().size());
        if (s->reply_tokens) s->generated_text += step.text;
        if (step.finished) {
          {
            // The slot is free from the moment the answer can reach the client, so that
            // a follow-up it sends at once is not refused as the queue being full.
            std::lock_guard lock(mutex_);
            active_count_ -= std::min<size_t>(active_count_, 1);
          }
          s->channel->finish(s->generation.reason(), s->generation.tokens().size());
          s->done = true;
          start_reply_fill(*s);
        }
      } catch (const std::exception& e) {
        s->channel->fail(Failure::Internal, e.what());
        s->done = true;
      }
    }
  }
  std::erase_if(active_, [](const auto& s) { return s->done; });

  std::lock_guard lock(mutex_);
  if (!items.empty()) stats_.steps += 1;  // forward_batch calls
  stats_.last_batch_sequences = items.size();
  stats_.last_batch_tokens = rows;
  stats_.largest_batch_sequences = std::max(stats_.largest_batch_sequences, items.size());
  stats_.prompt_tokens += prompt_tokens;
  stats_.completion_tokens += generated;
  stats_.cancelled += dropped;
  stats_.reply_fills = reply_fills_;
  stats_.cache = cache_.stats();
  stats_.active = active_.size();
  active_count_ = requests_running();
}

size_t Scheduler::requests_running() const {
  // Replies being fed into the cache do not hold a slot: their requests have their
  // answers, and a follow-up turn must not be refused while its history is fed.
  return static_cast<size_t>(std::count_if(active_.begin(), active_.end(), [](const auto& s) { return !s->filling; }));
}

void Scheduler::start_reply_fill(Sequence& s) {
  if (!s.reply_tokens || s.reply_start == 0 || !cache_.enabled()) return;
  // The prompt up to the reply's text, then the reply as the next turn will send it.
  std::vector<int32_t> key(s.prompt.begin(), s.prompt.begin() + static_cast<ptrdiff_t>(s.reply_start));
  const std::vector<int32_t> reply = s.reply_tokens(s.generated_text);
  key.insert(key.end(), reply.begin(), reply.end());
  if (cache_.contains(s.origin, key)) return;
  // Fed from the state at reply_start, which the prompt's feeding has just cached (unless
  // it was evicted since: then the reply is not cached).
  State state;
  const auto through_reply_start = std::span<const int32_t>(key).first(s.reply_start + 1);
  if (cache_.lookup(s.origin, through_reply_start, state, nullptr, /*count=*/false) != s.reply_start) return;
  s.state = std::move(state);
  s.prompt = std::move(key);
  s.prompt_fed = s.reply_start;
  s.checkpoints = {s.prompt.size()};
  s.reached = 0;
  s.filling = true;
  s.done = false;
  ++reply_fills_;
}

}  // namespace rwkv::server
