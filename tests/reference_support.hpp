// The shared reference models (../shared/models/pth and the official logits in
// ../shared/reference/logits) and the committed fixtures, with a comparison of our
// logits against theirs: max abs difference and mean KL divergence.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "rwkv/convert.hpp"
#include "rwkv/model.hpp"
#include "test_support.hpp"

namespace rwkv_test {

inline std::vector<std::string> reference_models() {
  return {"4v0-660K", "5v1-730K", "5v2-730K", "6v0-1m", "6v0-3m", "7v0-834K"};
}

inline nlohmann::json reference_manifest(const std::string& model) {
  std::ifstream in(*shared_dir() / "reference" / "logits" / model / "manifest.json");
  return nlohmann::json::parse(in);
}

inline nlohmann::json fixture_list() {
  std::ifstream in(fixtures_dir() / "fixtures.json");
  return nlohmann::json::parse(in)["models"];
}

// Converts `pth` into `dir` with the documented defaults for the weight type `type`.
inline std::string convert_checkpoint(const ScratchDir& dir, const std::filesystem::path& pth, const std::string& type) {
  const std::string out = (dir / (type + ".rwkv")).string();
  rwkv::ConvertOptions options;
  options.type = type;
  rwkv::convert_model(pth.string(), out, options);
  return out;
}

// Our logits against reference logits, position by position.
struct LogitComparison {
  double max_abs = 0;
  double kl_sum = 0;  // sum over positions of KL(softmax(reference) || softmax(ours))
  size_t positions = 0;

  void add(const float* ours, const float* reference, size_t n) {
    for (size_t v = 0; v < n; ++v) {
      const double d = std::abs(double(ours[v]) - reference[v]);
      max_abs = std::isnan(d) ? INFINITY : std::max(max_abs, d);
    }
    const auto log_softmax = [n](const float* logits) {
      const double peak = *std::max_element(logits, logits + n);
      double sum = 0;
      for (size_t v = 0; v < n; ++v) sum += std::exp(logits[v] - peak);
      std::vector<double> out(n);
      for (size_t v = 0; v < n; ++v) out[v] = logits[v] - peak - std::log(sum);
      return out;
    };
    const auto p = log_softmax(reference), q = log_softmax(ours);
    double kl = 0;
    for (size_t v = 0; v < n; ++v) kl += std::exp(p[v]) * (p[v] - q[v]);
    kl_sum += kl;
    ++positions;
  }
  double mean_kl() const { return positions == 0 ? 0 : kl_sum / positions; }
};

// How a comparison feeds the tokens: one forward() each (decoding), or all of them in
// one forward_sequence() (sequence mode, as a prompt is read).
enum class Feed { Serial, Sequence };

// Every token's logits from the initial state, fed as `feed` says.
inline std::vector<float> logits_of_every_token(const rwkv::Model& model, const std::vector<int32_t>& tokens,
                                                Feed feed) {
  const size_t V = model.info().n_vocab;
  std::vector<float> all(tokens.size() * V);
  rwkv::State state = model.new_state();
  if (feed == Feed::Sequence) {
    model.forward_sequence(tokens, state, all);
  } else {
    for (size_t t = 0; t < tokens.size(); ++t) model.forward(tokens[t], state, std::span<float>(all).subspan(t * V, V));
  }
  return all;
}

// Runs every open case of the reference model `ref_model` through `model` from the
// initial state and compares the logits after each token with the official ones.
inline LogitComparison compare_with_reference(const rwkv::Model& model, const std::string& ref_model,
                                              Feed feed = Feed::Serial) {
  const nlohmann::json m = reference_manifest(ref_model);
  const auto folder = *shared_dir() / "reference" / "logits" / ref_model;
  LogitComparison result;
  const size_t V = model.info().n_vocab;
  for (const auto& c : m["cases"]) {
    const std::vector<float> expected = read_f32_file(folder / c["logits"].get<std::string>());
    const auto tokens = c["tokens"].get<std::vector<int32_t>>();
    EXPECT_EQ(expected.size(), tokens.size() * V) << c["name"];
    if (expected.size() != tokens.size() * V) continue;
    const std::vector<float> ours = logits_of_every_token(model, tokens, feed);
    for (size_t t = 0; t < tokens.size(); ++t) result.add(ours.data() + t * V, expected.data() + t * V, V);
  }
  return result;
}

// The same for a committed fixture (an entry of fixtures.json).
inline LogitComparison compare_with_fixture(const rwkv::Model& model, const nlohmann::json& fixture,
                                            Feed feed = Feed::Serial) {
  const auto expected = read_f32_file(fixtures_dir() / fixture["logits"].get<std::string>());
  const auto tokens = fixture["tokens"].get<std::vector<int32_t>>();
  const size_t V = model.info().n_vocab;
  EXPECT_EQ(expected.size(), tokens.size() * V);
  LogitComparison result;
  if (expected.size() != tokens.size() * V) return result;
  const std::vector<float> ours = logits_of_every_token(model, tokens, feed);
  for (size_t t = 0; t < tokens.size(); ++t) result.add(ours.data() + t * V, expected.data() + t * V, V);
  return result;
}

}  // namespace rwkv_test
