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
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rwkv/generation.hpp"
#include "rwkv/model.hpp"
#include "rwkv/tokenizer.hpp"

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
  };

  // Waits up to `timeout` for new text or the end; returns what there is (possibly
  // nothing new when the wait timed out).
  Update take(std::chrono::milliseconds timeout);
  // The client is gone or no longer wants the rest: the scheduler drops the sequence at
  // its next step.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // The scheduler's side.
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
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  size_t parallel = 4;
  size_t queue = 16;
  size_t prompt_chunk_tokens = 64;
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

  // Queues a sequence: `prompt_tokens` (not empty, ids in range) then generation with
  // `options` (checked by Generation's constructor: throws rwkv::Error). Throws
  // QueueFull or ShuttingDown.
  std::shared_ptr<SequenceChannel> submit(std::vector<int32_t> prompt_tokens, const GenerateOptions& options);

  // Refuses new and queued requests, lets active sequences run for up to `grace`, fails
  // the rest with Failure::ShuttingDown, and joins the stepping thread. Idempotent.
  void shutdown(std::chrono::milliseconds grace);

  SchedulerStats stats() const;

 private:
  struct Sequence;
  void run();
  // Moves waiting sequences into free active slots; drops cancelled ones. Under mutex_.
  void admit_locked();
  void step();

  std::shared_ptr<const Model> model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  SchedulerOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  size_t active_count_ = 0;  // active_.size(), readable under mutex_ by submit and stats
  bool stopping_ = false;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  SchedulerStats stats_;

  std::vector<std::unique_ptr<Sequence>> active_;  // the stepping thread's own
  // step()'s lists, kept so that a step allocates nothing once they have grown.
  std::vector<BatchItem> step_items_;
  std::vector<Sequence*> step_sampled_;
  std::thread thread_;
};

}  // namespace rwkv::server
