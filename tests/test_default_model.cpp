// The shipped default model (models/default-rwkv7.pth, converted by the build):
// the engine against the training code's own RNN-mode logits, and a golden
// greedy text through the CLI.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "rwkv/model.hpp"
#include "test_support.hpp"

namespace {

TEST(DefaultModel, MatchesTheTrainingCodeInRnnMode) {
  std::ifstream in(rwkv_test::fixtures_dir() / "default_model_reference.json");
  const auto ref = nlohmann::json::parse(in);
  const std::string hex = ref["sample_hex"];
  std::vector<int32_t> sample;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) sample.push_back(std::stoi(hex.substr(i, 2), nullptr, 16));
  ASSERT_EQ(sample.size(), 500u);
  const auto positions = ref["positions"].get<std::vector<size_t>>();
  const auto expected = rwkv_test::read_f32_file(rwkv_test::fixtures_dir() / ref["logits_file"].get<std::string>());

  auto model = rwkv::Model::load(RWKV_DEFAULT_MODEL_PATH);
  EXPECT_EQ(model->info().arch, rwkv::Arch::V7_0);
  rwkv::State state = model->new_state();
  std::vector<float> logits(256);
  double worst = 0;
  size_t row = 0;
  for (size_t t = 0; t < sample.size(); ++t) {
    model->forward(sample[t], state, logits);
    if (row < positions.size() && positions[row] == t) {
      for (size_t v = 0; v < 256; ++v) worst = std::max(worst, std::abs(double(logits[v]) - expected[row * 256 + v]));
      ++row;
    }
  }
  EXPECT_EQ(row, positions.size());
  std::printf("[ measured ] default model vs training code: max abs logit diff %.3g over %zu positions\n", worst,
              positions.size());
  EXPECT_LE(worst, 1e-3);
}

TEST(DefaultModel, GeneratesWithoutModelFlag) {
  const auto run = rwkv_test::run_command("cd / && '" + rwkv_test::cli_path() +
                                          "' generate --prompt 'The Python interpreter' --temperature 0 "
                                          "--max-tokens 48 2>/dev/null");
  ASSERT_EQ(run.exit_code, 0);
  const std::string& out = run.output;
  EXPECT_EQ(out.size(), 48u) << out;
  size_t printable = 0;
  for (unsigned char c : out) printable += (c >= 32 && c < 127) || c == '\n';
  EXPECT_EQ(printable, out.size()) << out;
}

TEST(DefaultModel, EnvironmentVariableOverridesTheDefault) {
  const std::string cmd = "generate --prompt a --max-tokens 2 2>&1";
  auto missing = rwkv_test::run_command("RWKV_DEFAULT_MODEL=/nonexistent/model.rwkv '" + rwkv_test::cli_path() + "' " + cmd);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("/nonexistent/model.rwkv"), std::string::npos) << missing.output;
  auto ok = rwkv_test::run_command("RWKV_DEFAULT_MODEL='" + std::string(RWKV_DEFAULT_MODEL_PATH) + "' '" +
                                   rwkv_test::cli_path() + "' " + cmd);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

}  // namespace
