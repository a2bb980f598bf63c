#include "sampling_flags.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <random>

namespace rwkv_cli {

namespace {
// The largest temperature or penalty taken (and 1 / it the smallest repetition
// penalty): far past where each has saturated, since logits are tens at most, and
// well inside float.
constexpr double kLargestSetting = 1e6;
}  // namespace

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
  p.temperature = static_cast<float>(args.get_double("temperature", 0, kLargestSetting));
  p.top_p = static_cast<float>(args.get_double("top-p", 0, 1));
  p.top_k = static_cast<int32_t>(args.get_int("top-k", 0, INT32_MAX));
  p.min_p = static_cast<float>(args.get_double("min-p", 0, 1));
  p.presence_penalty = static_cast<float>(args.get_double("presence-penalty", -kLargestSetting, kLargestSetting));
  p.frequency_penalty = static_cast<float>(args.get_double("frequency-penalty", -kLargestSetting, kLargestSetting));
  p.penalty_decay = static_cast<float>(args.get_double("penalty-decay", 0, 1));
  p.repetition_penalty =
      static_cast<float>(args.get_double("repetition-penalty", 1 / kLargestSetting, kLargestSetting));
  const std::string order = args.get("sampling-order");
  if (order == "official") {
    p.order = rwkv::SamplingOrder::Official;
  } else if (order == "llama") {
    p.order = rwkv::SamplingOrder::Llama;
  } else {
    throw UsageError(fmt::format("flag --sampling-order: expected official or llama, got '{}'", order));
  }
  if (args.has("seed")) {
    p.seed = static_cast<uint64_t>(args.get_int("seed", 0, INT64_MAX));
  } else {
    p.seed = std::random_device{}();
  }
  // Checked on the float: a top-p as small as 1e-50 rounds to 0 there.
  if (!(p.top_p > 0)) throw UsageError("flag --top-p: must be in (0, 1]");
  return p;
}

}  // namespace rwkv_cli
