// The stepping of many sequences over one model: a bounded queue of waiting requests, a
// bounded set of active sequences, and one thread that advances every active sequence in
// one Model::forward_batch call per step (a chunk of its prompt, or one decode token),
// then samples each with its own Generation. HTTP handler threads submit requests and
// read each sequence's text as it comes; nothing here knows HTTP.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rwkv/generation.hpp"
#include "rwkv/model.hpp"
#include "rwkv/tokenizer.hpp"
#include "server/state_cache.hpp"

namespace rwkv::server {

// Why a sequence ended without a normal stop.
enum class Failure { None, ShuttingDown, Internal };

// What a handler reads of its sequence, shared with the scheduler.
class SequenceChannel {
 public:
  struct Update {
    std::string text;  // new text since the last take
    bool finished = false;
    StopReason reason = StopReason::MaxTokens;
    Failure failure = Failure::None;
    std::string failure_message;
    size_t completion_tokens = 0;
    size_t cached_tokens = 0;  // prompt tokens taken from the prefix-state cache
  };

  // Waits up to `timeout` for new text or the end; returns what there is (possibly
  // nothing new when the wait timed out).
  Update take(std::chrono::milliseconds timeout);
  // The client is gone or no longer wants the rest: the scheduler drops the sequence at
  // its next step.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // The scheduler's side.
  void set_cached_tokens(size_t cached_tokens);
  void append(std::string_view text, size_t completion_tokens);
  void finish(StopReason reason, size_t completion_tokens);
  void fail(Failure failure, std::string message);

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string text_;
  bool finished_ = false;
  StopReason reason_ = StopReason::MaxTokens;
  Failure failure_ = Failure::None;
  std::string failure_message_;
  size_t completion_tokens_ = 0;
  size_t cached_tokens_ = 0;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  size_t parallel = 4;
  size_t queue = 16;
  size_t prompt_chunk_tokens = 64;
  size_t state_cache_bytes = 0;  // the prefix-state cache's budget; 0 = no cache
};

// What a request asks the scheduler to run.
struct SequenceRequest {
  std::vector<int32_t> prompt_tokens;  // not empty, ids in range
  GenerateOptions options;             // checked by Generation's constructor
  // Prompt lengths (besides the whole prompt) whose states are worth caching: message ends.
  std::vector<size_t> checkpoints;
  // The state the prompt starts from, and its name in cache keys; null = the model's own.
  std::shared_ptr<const State> start_state;
  std::string start_state_name;
  // Chat: where the reply's text starts in the prompt, and how the next turn will send the
  // finished reply back (its tokens, given the generated text). When both are set, the
  // reply is fed from the cached state at reply_start after the request has finished, so
  // that the next turn finds its whole history cached. 0 / empty = not a chat reply.
  size_t reply_start = 0;
  std::function<std::vector<int32_t>(const std::string& generated_text)> reply_tokens;
};

struct SchedulerStats {
  size_t active = 0;
  size_t queued = 0;
  size_t last_batch_sequences = 0;  // sequences in the latest step
  size_t last_batch_tokens = 0;     // tokens (rows) in the latest step
  size_t largest_batch_sequences = 0;
  uint64_t steps = 0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t cancelled = 0;
  uint64_t reply_fills = 0;  // finished replies fed into the cache for the next turn
  StateCacheStats cache;
};

// Thrown by submit when the waiting queue is full.
struct QueueFull : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown by submit once shutdown has begun.
struct ShuttingDown : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Scheduler {
 public:
  Scheduler(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tokenizer, SchedulerOptions options);
  ~Scheduler();  // shutdown(0)

  // Queues a sequence: its prompt, then generation with its options (checked by
  // Generation's constructor: throws rwkv::Error). Throws QueueFull or ShuttingDown.
  std::shared_ptr<SequenceChannel> submit(SequenceRequest request);

  // Refuses new and queued requests, lets active sequences run for up to `grace`, fails
  // the rest with Failure::ShuttingDown, and joins the stepping thread. Idempotent.
  void shutdown(std::chrono::milliseconds grace);

  SchedulerStats stats() const;

 private:
  struct Sequence;
  void run();
  // Moves waiting sequences into free active slots, starting each from the longest
  // cached prefix of its prompt; drops cancelled ones. Under mutex_.
  void admit_locked();
  void step();
  // Active sequences that are requests (not replies being fed into the cache): what
  // --parallel bounds. The stepping thread's.
  size_t requests_running() const;
  // Whether a reply being fed will cache a prefix of `sequence`'s prompt: then it waits.
  bool waits_for_fill(const Sequence& sequence) const;
  // A chat reply that has just finished goes on as a fill: its text, rendered as the next
  // turn will send it, is fed from the state at reply_start and cached.
  void start_reply_fill(Sequence& sequence);

  std::shared_ptr<const Model> model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  SchedulerOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  size_t active_count_ = 0;  // requests_running(), readable under mutex_ by submit
  bool stopping_ = false;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  SchedulerStats stats_;

  std::vector<std::unique_ptr<Sequence>> active_;  // the stepping thread's own
  PrefixStateCache cache_;                         // the stepping thread's own
  uint64_t reply_fills_ = 0;
  // step()'s lists, kept so that a step allocates nothing once they have grown.
  std::vector<BatchItem> step_items_;
  std::vector<Sequence*> step_sampled_;
  std::thread thread_;
};

}  // namespace rwkv::server
