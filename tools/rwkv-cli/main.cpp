#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "args.hpp"
#include "commands.hpp"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

constexpr Command kCommands[] = {
    {"convert", rwkv_cli::run_convert, "convert an official PyTorch checkpoint (.pth) to the native format"},
    {"quantize", rwkv_cli::run_quantize, "store a native model's matrices in another weight type (f16, q8_0, ...)"},
    {"info", rwkv_cli::run_info, "print a model's architecture, sizes, data types and file size"},
    {"logits", rwkv_cli::run_logits, "feed tokens one by one and write the logits after each as float32"},
    {"generate", rwkv_cli::run_generate, "generate text after a prompt"},
    {"chat", rwkv_cli::run_chat, "chat interactively, keeping the state between turns"},
    {"perplexity", rwkv_cli::run_perplexity, "perplexity and bits per byte of a model on a text file"},
    {"tokenize", rwkv_cli::run_tokenize, "encode text to token ids or decode ids to text"},
    {"bench", rwkv_cli::run_bench, "measure load, decode and prefill speed against the machine's limits"},
    {"bench-tokenizer", rwkv_cli::run_bench_tokenizer, "measure tokenizer load time and encoding speed (MB/s)"},
};

void print_usage(std::FILE* out) {
  fmt::print(out, "usage: rwkv-cli COMMAND [options]   (rwkv-cli COMMAND --help for details)\n\ncommands:\n");
  for (const Command& c : kCommands) fmt::print(out, "  {:<16} {}\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  for (const Command& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(argc - 2, argv + 2);
    } catch (const rwkv_cli::UsageError& e) {
      fmt::print(stderr, "rwkv-cli {}: {}\n", c.name, e.what());
      return 2;
    } catch (const std::exception& e) {
      fmt::print(stderr, "rwkv-cli {}: error: {}\n", c.name, e.what());
      return 1;
    }
  }
  fmt::print(stderr, "rwkv-cli: unknown command '{}'\n", name);
  print_usage(stderr);
  return 2;
}
