#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

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

int run_generate(int argc, char** argv) {
  ArgParser args("generate", "[--model M] (--prompt S | --prompt-file F | stdin) [options]",
                 "Generates text after a prompt, streaming it to stdout; speed goes to stderr.\n"
                 "Without --model it uses the default model shipped in models/.");
  args.option("model", "M", "model file: native, or .pth, rwkv.cpp .bin, GGUF, safetensors or a Hugging Face directory (converted in memory; default: the shipped default model)")
      .option("tokenizer-vocab", "PATH", "World vocabulary or NeoX tokenizer.json (default: usual name, here or beside the model)")
      .option("prompt", "S", "the prompt text")
      .option("prompt-file", "F", "read the prompt from a file (its raw bytes)")
      .option("max-tokens", "N", "generate at most N tokens", "200")
      .repeated("stop", "S", "stop when the text contains S (not printed)")
      .option("state-in", "F", "start from a state saved with --state-out (or a state-tuning .pth)")
      .option("state-out", "F", "save the state after generation")
      .flag("json", "print one JSON object instead of streaming text");
  // OpenAI's defaults (temperature 1, top-p 1, no penalties), which rwkv-server takes too.
  declare_sampling_flags(args, {"1.0", "1.0", "0", "0"});
  declare_threads_flag(args);
  if (!args.parse(argc, argv)) return 0;
  apply_threads_flag(args);

  if (args.has("prompt") && args.has("prompt-file")) throw UsageError("give --prompt or --prompt-file, not both");
  rwkv::GenerateOptions options;
  options.max_tokens = static_cast<int32_t>(args.get_int("max-tokens", 0, INT32_MAX));
  options.sampler = read_sampling_flags(args);
  options.stop = args.get_all("stop");
  for (const std::string& s : options.stop) {
    if (s.empty()) throw UsageError("flag --stop: a stop string must not be empty");
  }
  std::string prompt;
  if (args.has("prompt")) {
    prompt = args.get("prompt");
  } else if (args.has("prompt-file")) {
    prompt = read_file_bytes(args.get("prompt-file"));
  } else {
    prompt = rwkv::read_stream(STDIN_FILENO, "standard input", kMaxInputBytes);
  }
  if (prompt.empty()) throw UsageError("the prompt is empty (give --prompt, --prompt-file or text on stdin)");

  auto model = load_model(resolve_model_path(args));
  rwkv::Session session(model, load_model_tokenizer(*model, args, "tokenizer-vocab"));
  if (args.has("state-in")) session.set_initial_state(read_start_state(args.get("state-in"), *model));
  const bool json = args.has("json");
  auto result = session.generate(prompt, options, [&](std::string_view piece) {
    if (!json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  });
  if (args.has("state-out")) rwkv::save_state(args.get("state-out"), *model, session.state());

  const double prompt_tps = result.prompt_seconds > 0 ? result.prompt_tokens.size() / result.prompt_seconds : 0;
  const double gen_tps = result.generate_seconds > 0 ? result.tokens.size() / result.generate_seconds : 0;
  if (json) {
    nlohmann::json out = {{"prompt_tokens", result.prompt_tokens},
                          {"tokens", result.tokens},
                          {"text", result.text},
                          {"prompt_tokens_per_second", prompt_tps},
                          {"tokens_per_second", gen_tps}};
    std::puts(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (::isatty(STDOUT_FILENO)) {
    std::fputc('\n', stdout);  // leave the shell prompt on a line of its own
  }
  fmt::print(stderr, "prompt: {} tokens, {:.1f} tokens/s; generated: {} tokens, {:.1f} tokens/s ({})\n",
             result.prompt_tokens.size(), prompt_tps, result.tokens.size(), gen_tps,
             rwkv::stop_reason_name(result.reason));
  return 0;
}

}  // namespace rwkv_cli
