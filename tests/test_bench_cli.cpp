// rwkv-cli bench on a committed fixture: every field is there and makes sense
// (not how fast it is: the machine is shared).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

#include "test_support.hpp"

namespace {

using ::testing::HasSubstr;

class BenchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto fixture = rwkv_test::fixtures_dir() / "tiny-v7.0.pth";
    model_ = (dir_ / "m.rwkv").string();
    auto convert = rwkv_test::run_cli_with_stderr("convert '" + fixture.string() + "' '" + model_ + "' --type f16");
    ASSERT_EQ(convert.exit_code, 0) << convert.output;
  }
  rwkv_test::ScratchDir dir_;
  std::string model_;
};

TEST_F(BenchCli, JsonHasEveryFieldWithSaneValues) {
  auto bench = rwkv_test::run_cli_with_stderr("bench --model '" + model_ +
                                  "' --decode 4 --prefill 8 --threads 2 --bandwidth-mib 16 --json");
  ASSERT_EQ(bench.exit_code, 0) << bench.output;
  const nlohmann::json j = nlohmann::json::parse(bench.output);
  for (const char* field :
       {"load_ms", "decode_ms_per_token", "decode_tokens_per_second", "prefill_tokens_per_second", "peak_rss_bytes",
        "weight_bytes_per_token", "bandwidth_gb_per_s", "decode_bandwidth_fraction", "fma_peak_gflops",
        "prefill_fma_fraction", "matrix_params", "file_bytes"}) {
    ASSERT_TRUE(j.contains(field)) << field;
    EXPECT_TRUE(j[field].is_number()) << field;
    EXPECT_GT(j[field].get<double>(), 0) << field;
    EXPECT_TRUE(std::isfinite(j[field].get<double>())) << field;
  }
  EXPECT_EQ(j["threads"], 2);
  EXPECT_EQ(j["model"], model_);
  EXPECT_EQ(j["arch"], "7.0");
  EXPECT_EQ(j["decode_tokens"], 4);
  EXPECT_EQ(j["prefill_tokens"], 8);
  EXPECT_EQ(j["matrix_types"], "f16+f32");  // the big matrices f16, the LoRA ones f32
  EXPECT_NEAR(j["decode_tokens_per_second"].get<double>() * j["decode_ms_per_token"].get<double>(), 1000.0, 1e-6);
  // Every weight but the embedding's other rows is read per token: less than the file, more than its matrices in f16.
  const auto file_bytes = j["file_bytes"].get<double>();
  EXPECT_LT(j["weight_bytes_per_token"].get<double>(), file_bytes);
  EXPECT_GT(j["weight_bytes_per_token"].get<double>(), 2.0 * j["matrix_params"].get<double>() * 0.9);
  EXPECT_GE(j["peak_rss_bytes"].get<double>(), 1e6);
}

TEST_F(BenchCli, HumanReadableReportAndBadFlags) {
  auto bench = rwkv_test::run_cli_with_stderr("bench --model '" + model_ + "' --decode 2 --prefill 3 --threads 1 --bandwidth-mib 8");
  ASSERT_EQ(bench.exit_code, 0) << bench.output;
  for (const char* line : {"threads: 1", "load:", "decode:", "prefill:", "peak RSS:", "weights read per token:",
                           "memory read bandwidth:", "FP32 FMA peak:"}) {
    EXPECT_THAT(bench.output, HasSubstr(line));
  }
  auto zero = rwkv_test::run_cli_with_stderr("bench --model '" + model_ + "' --decode 0");
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_THAT(zero.output, HasSubstr("--decode"));
  auto threads = rwkv_test::run_cli_with_stderr("bench --model '" + model_ + "' --threads -1");
  EXPECT_EQ(threads.exit_code, 2);
  EXPECT_THAT(threads.output, HasSubstr("--threads"));
  auto help = rwkv_test::run_cli_with_stderr("bench --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.output, HasSubstr("--threads N"));
}

TEST(ThreadsFlag, AcceptedByEveryModelCommand) {
  for (const char* cmd : {"generate", "chat", "perplexity", "logits", "bench"}) {
    auto help = rwkv_test::run_cli_with_stderr(std::string(cmd) + " --help");
    EXPECT_EQ(help.exit_code, 0) << cmd;
    EXPECT_THAT(help.output, HasSubstr("--threads N")) << cmd;
  }
}

}  // namespace
