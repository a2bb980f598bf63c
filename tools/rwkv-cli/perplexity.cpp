#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

#include "args.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "progress.hpp"
#include "rwkv/error.hpp"
#include "rwkv/model.hpp"
#include "threads_flag.hpp"

namespace rwkv_cli {

namespace {

// -log softmax(logits)[target], in double precision, the max subtracted first.
double negative_log_likelihood(std::span<const float> logits, int32_t target) {
  double max = logits[0];
  for (float v : logits) max = std::max(max, double(v));
  double sum = 0;
  for (float v : logits) sum += std::exp(double(v) - max);
  return std::log(sum) + max - logits[target];
}

}  // namespace

int run_perplexity(int argc, char** argv) {
  ArgParser args("perplexity", "[--model M] --file F [--context N] [--json]",
                 "Measures the model's loss on a text file: perplexity per token and bits per byte.\n"
                 "Each window of --context tokens starts from the initial state; the first token of a\n"
                 "window has no context and is not scored.");
  args.option("model", "M", "model file: native, or .pth, rwkv.cpp .bin, GGUF, safetensors or a Hugging Face directory (converted in memory; default: the shipped default model)")
      .option("tokenizer-vocab", "PATH", "World vocabulary or NeoX tokenizer.json")
      .option("file", "F", "the text (its raw bytes)")
      .option("context", "N", "tokens per window; 0 = the whole file as one window", "0")
      .flag("json", "print one JSON object");
  declare_threads_flag(args);
  if (!args.parse(argc, argv)) return 0;
  apply_threads_flag(args);
  // Any window of 2 or more tokens works: one longer than the file is the whole file.
  const int64_t context = args.get_int("context", 0, INT64_MAX);
  if (context == 1) throw UsageError("flag --context: must be 0 (whole file) or at least 2");
  const std::string path = args.get("file");
  const std::string text = read_file_bytes(path);
  auto model = load_model(resolve_model_path(args));
  auto tokenizer = load_model_tokenizer(*model, args, "tokenizer-vocab");
  const std::vector<int32_t> tokens = tokenizer->encode(text);
  if (tokens.size() < 2) throw rwkv::Error(fmt::format("{}: needs at least 2 tokens, has {}", path, tokens.size()));
  const size_t window = context == 0 ? tokens.size() : static_cast<size_t>(context);

  // Sequence mode, a chunk at a time: logits of every token in the chunk at once.
  constexpr size_t kChunk = 128;
  const size_t V = model->info().n_vocab;
  std::vector<float> logits(kChunk * V);
  rwkv::State state = model->new_state();
  double total_nll = 0;
  uint64_t scored = 0, scored_bytes = 0;
  ProgressBar bar("perplexity");
  for (size_t start = 0; start < tokens.size(); start += window) {
    const size_t end = std::min(tokens.size(), start + window);
    state = model->new_state();
    // Token t's logits predict token t + 1; the window's last token predicts nothing.
    for (size_t chunk = start; chunk + 1 < end; chunk += kChunk) {
      const size_t n = std::min(kChunk, end - 1 - chunk);
      const std::span<const int32_t> inputs(tokens.data() + chunk, n);
      model->forward_sequence(inputs, state, std::span<float>(logits.data(), n * V));
      for (size_t i = 0; i < n; ++i) {
        const int32_t target = tokens[chunk + i + 1];
        total_nll += negative_log_likelihood(std::span<const float>(logits.data() + i * V, V), target);
        ++scored;
        scored_bytes += tokenizer->token_bytes(target, true).size();
      }
      bar.update(chunk + n + 1, tokens.size());
    }
  }
  bar.finish();
  if (scored == 0) throw rwkv::Error(fmt::format("{}: no token could be scored with --context {}", path, context));
  const double mean = total_nll / double(scored);
  const double ppl = std::exp(mean);
  const double bpb = scored_bytes ? total_nll / std::log(2.0) / double(scored_bytes) : 0;
  if (args.has("json")) {
    nlohmann::json out = {{"file", path},           {"tokens", tokens.size()},
                          {"scored_tokens", scored}, {"scored_bytes", scored_bytes},
                          {"mean_nll", mean},        {"perplexity", ppl},
                          {"bits_per_byte", bpb}};
    std::puts(out.dump().c_str());
  } else {
    fmt::print("{}: {} tokens, {} scored ({} bytes)\n", path, tokens.size(), scored, scored_bytes);
    fmt::print("mean loss:     {:.6f} nats/token\n", mean);
    fmt::print("perplexity:    {:.6f}\n", ppl);
    fmt::print("bits per byte: {:.6f}\n", bpb);
  }
  return 0;
}

}  // namespace rwkv_cli
