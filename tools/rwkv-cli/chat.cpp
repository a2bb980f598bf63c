#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>

#include "args.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "rwkv/error.hpp"
#include "rwkv/io.hpp"
#include "rwkv/session.hpp"
#include "rwkv/state_file.hpp"
#include "sampling_flags.hpp"
#include "threads_flag.hpp"

namespace rwkv_cli {

namespace {

std::atomic<bool> g_interrupted{false};

void on_sigint(int) { g_interrupted = true; }

// Ctrl-C during a reply stops the reply; at the prompt it leaves the chat as usual.
class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted = false;
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &previous_);
  }
  ~InterruptGuard() { ::sigaction(SIGINT, &previous_, nullptr); }

 private:
  struct sigaction previous_ {};
};

// A chat message is typed or pasted; a "line" beyond this (say, `chat < /dev/zero`) is not one.
constexpr uint64_t kMaxChatLineBytes = uint64_t(16) << 20;

constexpr const char* kHelp =
    "Type a message and press Enter. Commands:\n"
    "  /reset       forget the conversation (keeps the system prompt)\n"
    "  /save FILE   save the conversation state\n"
    "  /load FILE   continue from a saved state\n"
    "  /help        this text\n"
    "Ctrl-C stops a reply; Ctrl-D (or Ctrl-C at the prompt) leaves.\n";

}  // namespace

int run_chat(int argc, char** argv) {
  ArgParser args("chat", "[--model M] [--system S] [options]",
                 "Chats in the RWKV World format (\"User: ...\\n\\nAssistant:\"), keeping the state between\n"
                 "turns so that each turn feeds only its new text.");
  args.option("model", "M", "model file: native, or .pth, rwkv.cpp .bin, GGUF, safetensors or a Hugging Face directory (converted in memory; default: the shipped default model)")
      .option("tokenizer-vocab", "PATH", "World vocabulary or NeoX tokenizer.json")
      .option("system", "S", "a system prompt, fed once as \"System: S\\n\\n\"")
      .option("max-tokens", "N", "longest reply in tokens", "500")
      .option("state-in", "F", "start from a state saved with --state-out or /save (or a state-tuning .pth)");
  declare_sampling_flags(args, {"1.0", "0.3", "0.5", "0.5"});
  declare_threads_flag(args);
  if (!args.parse(argc, argv)) return 0;
  apply_threads_flag(args);
  rwkv::GenerateOptions options;
  options.sampler = read_sampling_flags(args);
  options.max_tokens = static_cast<int32_t>(args.get_int("max-tokens", 1, INT32_MAX));
  options.stop = {"\n\n"};
  options.sampler.banned_tokens.push_back(0);  // end of text would end the conversation

  auto model = load_model(resolve_model_path(args));
  rwkv::Session session(model, load_model_tokenizer(*model, args, "tokenizer-vocab"));
  if (args.has("state-in")) session.set_initial_state(read_start_state(args.get("state-in"), *model));
  if (args.has("system")) {
    session.feed_text("System: " + args.get("system") + "\n\n");
    session.set_initial_state(session.state());
  }
  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  if (interactive) fmt::print("{}\n", kHelp);

  std::string line;
  while (true) {
    fmt::print("User: ");
    std::fflush(stdout);
    if (!rwkv::read_line(STDIN_FILENO, line, "standard input", kMaxChatLineBytes)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    try {
      if (line == "/help") {
        fmt::print("{}", kHelp);
        continue;
      }
      if (line == "/reset") {
        session.reset();
        fmt::print("(conversation reset)\n");
        continue;
      }
      if (line.rfind("/save ", 0) == 0) {
        rwkv::save_state(line.substr(6), *model, session.state());
        fmt::print("(state saved to {})\n", line.substr(6));
        continue;
      }
      if (line.rfind("/load ", 0) == 0) {
        session.state() = rwkv::load_state(line.substr(6), *model);
        fmt::print("(state loaded from {})\n", line.substr(6));
        continue;
      }
      if (line[0] == '/') {
        fmt::print("unknown command {} (try /help)\n", line);
        continue;
      }
      fmt::print("\nAssistant:");
      std::fflush(stdout);
      InterruptGuard guard;
      auto result = session.generate("User: " + line + "\n\nAssistant:", options, [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return !g_interrupted.load();
      });
      if (result.reason == rwkv::StopReason::Cancelled) {
        // The interrupted reply stays in the state; close the turn so the next one parses.
        session.feed_text("\n\n");
        fmt::print(" (stopped)");
      } else if (result.reason != rwkv::StopReason::StopString) {
        session.feed_text("\n\n");
      }
      fmt::print("\n\n");
    } catch (const rwkv::Error& e) {
      fmt::print(stderr, "error: {}\n", e.what());
    }
  }
  if (interactive) fmt::print("\n");
  return 0;
}

}  // namespace rwkv_cli
