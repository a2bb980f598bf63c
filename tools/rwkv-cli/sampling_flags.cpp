#include "sampling_flags.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
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
      .option("seed", "S", "random seed; the same seed repeats a run exactly (default: random)")
      .repeated("logit-bias", "ID+B",
                "add B to token ID's logit, as llama.cpp takes it: 15043+1.5, 15043-0.5, or 15043-inf to ban it");
}

namespace {

// "15043+1.5", "15043-0.5", "15043-inf": a token id, then a signed bias.
void read_logit_bias(const std::string& text, rwkv::SamplerParams& p) {
  const auto fail = [&](const std::string& why) {
    return UsageError(fmt::format("flag --logit-bias: '{}' {}; expected TOKEN_ID+BIAS or TOKEN_ID-BIAS, "
                                  "e.g. 15043+1.5 or 15043-inf", text, why));
  };
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits == text.size() || (text[digits] != '+' && text[digits] != '-')) {
    throw fail("is not a token id followed by a sign");
  }
  int64_t id = 0;
  const auto [id_end, id_error] = std::from_chars(text.data(), text.data() + digits, id);
  if (id_error != std::errc() || id > INT32_MAX) throw fail("has a token id out of range");
  const std::string bias_text = text.substr(digits);
  if (bias_text == "-inf") {
    p.banned_tokens.push_back(static_cast<int32_t>(id));
    return;
  }
  double bias = 0;
  const char* begin = bias_text.data() + (bias_text[0] == '+' ? 1 : 0);
  const auto [end, error] = std::from_chars(begin, bias_text.data() + bias_text.size(), bias);
  if (error != std::errc() || end != bias_text.data() + bias_text.size() || !std::isfinite(bias) ||
      std::abs(bias) > kLargestSetting) {
    throw fail(fmt::format("has a bias that is not a finite number of at most {:g}", kLargestSetting));
  }
  p.logit_bias[static_cast<int32_t>(id)] += static_cast<float>(bias);
}

}  // namespace

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
  for (const std::string& bias : args.get_all("logit-bias")) read_logit_bias(bias, p);
  // Checked on the float: a top-p as small as 1e-50 rounds to 0 there.
  if (!(p.top_p > 0)) throw UsageError("flag --top-p: must be in (0, 1]");
  return p;
}

}  // namespace rwkv_cli
