// rwkv-server: the OpenAI-compatible HTTP server (include/rwkv/server.hpp) as a program.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <cstdint>
#include <cstdio>
#include <exception>

#include "args.hpp"
#include "rwkv/error.hpp"
#include "rwkv/server.hpp"
#include "rwkv/threads.hpp"

namespace {

constexpr int64_t kMaxThreads = 1024;
constexpr int64_t kMaxSequences = 4096;

int run(int argc, char** argv) {
  rwkv_cli::ArgParser args("rwkv-server", "[--model M] [--host H] [--port N] [options]",
                           "Serves a model over an OpenAI-compatible HTTP API: POST /v1/completions,\n"
                           "/v1/chat/completions, /tokenize, /detokenize; GET /v1/models, /health, /metrics.\n"
                           "Without --model it serves the default model. SIGTERM or SIGINT stops it.");
  args.program("rwkv-server");
  const rwkv::ServerOptions defaults;
  args.option("model", "M", "model file (default: the shipped default model, or $RWKV_DEFAULT_MODEL)")
      .option("tokenizer-vocab", "PATH", "World vocabulary or NeoX tokenizer.json (default: usual name, here or beside the model)")
      .option("host", "H", "address to listen on", defaults.host)
      .option("port", "N", "port to listen on; 0 picks a free one", std::to_string(defaults.port))
      .option("threads", "N", "threads for the matrix products (0 = one per physical core)",
              std::to_string(rwkv::physical_core_count()))
      .option("parallel", "N", "sequences generated together, in one batch", std::to_string(defaults.parallel))
      .option("queue", "N", "requests that may wait for a free sequence (beyond them: 503)",
              std::to_string(defaults.queue))
      .option("api-key", "KEY", "require \"Authorization: Bearer KEY\" on every route but /health")
      .option("chat-template", "NAME", "world (User: ...\\n\\nAssistant:) or g1 (RWKV-7 G1, thinking)", "world")
      .option("model-id", "ID", "the model's id in /v1/models and requests (default: the file name's stem)")
      .option("max-tokens", "N", "the most tokens a request may generate (and chat's default)",
              std::to_string(defaults.max_completion_tokens))
      .option("state-cache-mb", "N", "prefix-state cache budget in MiB; 0 turns the cache off",
              std::to_string(defaults.state_cache_mb))
      .option("state-dir", "DIR", "start states requests may name with \"state\": NAME.pth (state tuning) or NAME.state")
      .flag("batch-invariant", "every token's results independent of what shares its batch: concurrent greedy requests return exactly what each returns alone (slower prompts)")
      .option("shutdown-grace", "SECONDS", "on SIGTERM, how long in-flight requests may still run", "5");
  if (!args.parse(argc, argv)) return 0;

  rwkv::ServerOptions options;
  options.host = args.get("host");
  options.port = static_cast<int>(args.get_int("port", 0, 65535));
  options.parallel = static_cast<int>(args.get_int("parallel", 1, kMaxSequences));
  options.queue = static_cast<int>(args.get_int("queue", 0, kMaxSequences));
  if (args.has("api-key")) options.api_key = args.get("api-key");
  options.chat_template = rwkv_cli::parse_flag(args, "chat-template", rwkv::parse_chat_template);
  if (args.has("model-id")) options.model_id = args.get("model-id");
  options.max_completion_tokens = static_cast<int32_t>(args.get_int("max-tokens", 1, INT32_MAX));
  options.state_cache_mb = static_cast<size_t>(args.get_int("state-cache-mb", 0, int64_t(1) << 30));
  if (args.has("state-dir")) options.state_dir = args.get("state-dir");
  options.shutdown_grace_seconds = args.get_double("shutdown-grace", 0, 3600);
  rwkv::set_batch_invariant(args.has("batch-invariant"));
  rwkv::set_thread_count(static_cast<unsigned>(args.get_int("threads", 0, kMaxThreads)));

  // The signals are taken by sigwait below, never by a handler: every thread started
  // from here on inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A client gone mid-response is a failed write, not a reason to die.
  signal(SIGPIPE, SIG_IGN);

  const std::string model_path = args.has("model") ? args.get("model") : rwkv::default_model_path();
  auto model = rwkv::Model::load(model_path);
  std::shared_ptr<const rwkv::Tokenizer> tokenizer =
      rwkv::load_model_tokenizer(*model, args.has("tokenizer-vocab") ? args.get("tokenizer-vocab") : "");
  rwkv::Server server(options, model, tokenizer);
  server.start();
  fmt::print(stderr, "listening on http://{}:{}\n", server.host(), server.port());
  std::fflush(stderr);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  fmt::print(stderr, "rwkv-server: {} received, stopping\n", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  server.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc - 1, argv + 1);
  } catch (const rwkv_cli::UsageError& e) {
    fmt::print(stderr, "rwkv-server: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "rwkv-server: error: {}\n", e.what());
    return 1;
  }
}
