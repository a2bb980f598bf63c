#include "sampling_flags.hpp"

#include <fmt/format.h>

#include <random>

namespace rwkv_cli {

void declare_sampling_flags(ArgParser& args, const SamplingDefaults& d) {
  args.option("temperature", "T", "sampling temperature; 0 = greedy (always the most likely token)", d.temperature)
      .option("top-p", "P", "keep the most likely tokens up to this total probability", d.top_p)
      .option("top-k", "K", "keep only the K most likely tokens; 0 = off", "0")
      .option("min-p", "P", "drop tokens less likely than P x the most likely one; 0 = off", "0")
      .option("presence-penalty", "A", "subtract A from the logit of every token already generated", d.presence)
      .option("frequency-penalty", "A", "subtract A x (decayed count) from generated tokens' logits", d.frequency)
      .option("penalty-decay", "D", "per-token decay of the counts behind the penalties", "0.996")
      .option("repetition-penalty", "R", "llama.cpp-style repetition penalty; 1 = off", "1")
      .option("sampling-order", "ORDER", "official (ChatRWKV: top-p, then temperature on probabilities) or llama",
              "official")
      .option("seed", "S", "random seed; the same seed repeats a run exactly (default: random)");
}

rwkv::SamplerParams read_sampling_flags(const ArgParser& args) {
  rwkv::SamplerParams p;
  p.temperature = static_cast<float>(args.get_double("temperature"));
  p.top_p = static_cast<float>(args.get_double("top-p"));
  p.top_k = static_cast<int32_t>(args.get_int("top-k"));
  p.min_p = static_cast<float>(args.get_double("min-p"));
  p.presence_penalty = static_cast<float>(args.get_double("presence-penalty"));
  p.frequency_penalty = static_cast<float>(args.get_double("frequency-penalty"));
  p.penalty_decay = static_cast<float>(args.get_double("penalty-decay"));
  p.repetition_penalty = static_cast<float>(args.get_double("repetition-penalty"));
  const std::string order = args.get("sampling-order");
  if (order == "official") {
    p.order = rwkv::SamplingOrder::Official;
  } else if (order == "llama") {
    p.order = rwkv::SamplingOrder::Llama;
  } else {
    throw UsageError(fmt::format("flag --sampling-order: expected official or llama, got '{}'", order));
  }
  if (args.has("seed")) {
    const int64_t seed = args.get_int("seed");
    if (seed < 0) throw UsageError(fmt::format("flag --seed: expected a non-negative integer, got {}", seed));
    p.seed = static_cast<uint64_t>(seed);
  } else {
    p.seed = std::random_device{}();
  }
  auto check = [](bool ok, const char* flag, const std::string& what) {
    if (!ok) throw UsageError(fmt::format("flag --{}: {}", flag, what));
  };
  check(p.temperature >= 0, "temperature", "must be >= 0");
  check(p.top_p > 0 && p.top_p <= 1, "top-p", "must be in (0, 1]");
  check(p.top_k >= 0, "top-k", "must be >= 0");
  check(p.min_p >= 0 && p.min_p <= 1, "min-p", "must be in [0, 1]");
  check(p.penalty_decay >= 0 && p.penalty_decay <= 1, "penalty-decay", "must be in [0, 1]");
  check(p.repetition_penalty > 0, "repetition-penalty", "must be > 0");
  return p;
}

}  // namespace rwkv_cli
