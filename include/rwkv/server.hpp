// An OpenAI-compatible HTTP server over one model: /v1/completions and
// /v1/chat/completions (streamed as Server-Sent Events or not), /v1/models, /health,
// /metrics, /tokenize and /detokenize. Every active request advances in the same pass
// over the weights (Model::forward_batch), prompts fed in chunks between decode steps.
//
//   rwkv::ServerOptions options;
//   options.port = 0;                       // any free port
//   rwkv::Server server(options);           // loads the default model
//   server.start();                         // accepting connections from here on
//   std::cerr << "listening on http://" << server.host() << ":" << server.port() << "\n";
//   ...
//   server.stop();                          // in-flight requests end within a bound
//
// Part of the rwkv_server library (links cpp-httplib), not of librwkv.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "rwkv/model.hpp"
#include "rwkv/tokenizer.hpp"

namespace rwkv {

enum class ChatTemplate {
  // "System: ...\n\nUser: ...\n\nAssistant: ...\n\n" (RWKV World, as `rwkv-cli chat`).
  World,
  // RWKV-7 G1: the World turns, the reply opened with a "<think" block.
  G1,
};
// "world" or "g1"; throws rwkv::Error otherwise.
ChatTemplate parse_chat_template(const std::string& name);

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 = a free port, see Server::port()
  // Requests stepped together in one batch (finished replies being fed into the
  // prefix-state cache come on top); more wait in the queue.
  int parallel = 4;
  // Requests waiting for a free sequence slot; beyond these a request gets 503.
  int queue = 16;
  // When set, every route but /health needs "Authorization: Bearer KEY".
  std::string api_key;
  ChatTemplate chat_template = ChatTemplate::World;
  // The id /v1/models lists and requests may name; empty = the model file's stem.
  std::string model_id;
  // Largest request body (413 beyond it) and prompt (400 beyond it).
  size_t max_body_bytes = size_t(8) << 20;
  size_t max_prompt_tokens = 1 << 20;
  // Largest max_tokens a request may ask for; chat requests without max_tokens get it.
  int32_t max_completion_tokens = 4096;
  // Prompt tokens a sequence feeds per step, between other sequences' decode tokens.
  int32_t prompt_chunk_tokens = 64;
  // The prefix-state cache's budget in MiB (0 = no cache): the state after each prompt
  // and at each message boundary, keyed by the exact tokens before it, least recently
  // used first out. A prompt that extends a cached prefix feeds only the rest.
  size_t state_cache_mb = 256;
  // A folder of start states that requests name with "state": NAME.pth (official state
  // tuning) or NAME.state (rwkv-cli --state-out), loaded by start(). Empty = none.
  std::string state_dir;
  // A non-streamed answer still running after this long is sent chunked, led by a space
  // every quarter second (JSON allows them), so that a client that has gone is noticed
  // and its sequence freed; its status (200) then goes early, and a later failure comes
  // as an error body.
  double plain_answer_seconds = 1;
  // stop() lets in-flight requests run this long, then ends them.
  double shutdown_grace_seconds = 5;
};

// Counters for tests and monitoring (also on /metrics).
struct ServerStats {
  size_t active_sequences = 0;
  size_t queued_requests = 0;
  uint64_t steps = 0;                 // forward_batch calls
  size_t largest_batch = 0;           // the most sequences one step has advanced
  uint64_t prompt_tokens = 0;         // fed, over all requests
  uint64_t completion_tokens = 0;     // generated, over all requests
  uint64_t cancelled_sequences = 0;   // ended early: client gone, shutdown
  uint64_t cache_hits = 0;            // prompts that started from a cached prefix state
  uint64_t cache_misses = 0;
  uint64_t cached_tokens = 0;         // prompt tokens not fed thanks to the cache
  size_t cache_entries = 0;
  size_t cache_bytes = 0;
  uint64_t reply_fills = 0;           // finished chat replies fed into the cache
};

class Server {
 public:
  // Loads the model at `model_path` (empty: default_model_path()) and its tokenizer.
  // Throws rwkv::Error naming the file.
  explicit Server(ServerOptions options, const std::string& model_path = "");
  Server(ServerOptions options, std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tokenizer);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds (throws rwkv::Error naming host and port when it cannot) and starts serving
  // on background threads; connections are accepted once this returns.
  void start();
  // The bound port (the chosen one when options.port was 0); valid after start().
  int port() const;
  const std::string& host() const;
  const std::string& model_id() const;
  // Stops accepting, refuses queued requests, lets active ones finish for up to
  // shutdown_grace_seconds, ends the rest, and joins every thread. Idempotent; safe to
  // call from any thread but a request handler.
  void stop();

  ServerStats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rwkv
