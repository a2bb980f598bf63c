// rwkv-cli as a user runs it: convert, info and logits on a committed fixture,
// and clear errors for bad flags.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "test_support.hpp"

namespace {

using ::testing::HasSubstr;

using rwkv_test::CliRun;
using rwkv_test::run_cli;

TEST(Cli, ConvertInfoLogitsMatchTheReference) {
  rwkv_test::ScratchDir dir;
  const auto fixture = rwkv_test::fixtures_dir() / "tiny-v6.0.pth";
  const auto model = dir / "m.rwkv";
  CliRun convert = run_cli("convert '" + fixture.string() + "' '" + model.string() + "'");
  ASSERT_EQ(convert.exit_code, 0) << convert.output;

  CliRun info = run_cli("info --model '" + model.string() + "'");
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_THAT(info.output, HasSubstr("architecture: RWKV 6.0"));
  EXPECT_THAT(info.output, HasSubstr("n_layer:      2"));
  EXPECT_THAT(info.output, HasSubstr("tokenizer:    bytes"));

  std::ifstream in(rwkv_test::fixtures_dir() / "fixtures.json");
  const nlohmann::json all = nlohmann::json::parse(in);
  nlohmann::json f;
  for (const auto& m : all["models"]) {
    if (m["name"] == "tiny-v6.0") f = m;
  }
  std::string tokens;
  for (int t : f["tokens"]) tokens += (tokens.empty() ? "" : ",") + std::to_string(t);
  const auto out = dir / "logits.f32";
  CliRun logits = run_cli("logits --model '" + model.string() + "' --tokens " + tokens + " --out '" + out.string() + "'");
  ASSERT_EQ(logits.exit_code, 0) << logits.output;
  const auto got = rwkv_test::read_f32_file(out);
  const auto expected = rwkv_test::read_f32_file(rwkv_test::fixtures_dir() / f["logits"].get<std::string>());
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], expected[i], 2e-4) << "value " << i;
}

TEST(Cli, ConvertToF16AndBadFlags) {
  rwkv_test::ScratchDir dir;
  const auto fixture = rwkv_test::fixtures_dir() / "tiny-v7.0.pth";
  const auto model = dir / "m.rwkv";
  EXPECT_EQ(run_cli("convert '" + fixture.string() + "' '" + model.string() + "' --type f16").exit_code, 0);
  EXPECT_THAT(run_cli("info --model '" + model.string() + "'").output, HasSubstr("f16:"));

  CliRun bad_type = run_cli("convert '" + fixture.string() + "' '" + model.string() + "' --type q3");
  EXPECT_EQ(bad_type.exit_code, 2);
  EXPECT_THAT(bad_type.output, HasSubstr("--type"));
  CliRun bad_token = run_cli("logits --model '" + model.string() + "' --tokens 1,256 --out '" + (dir / "x").string() + "'");
  EXPECT_EQ(bad_token.exit_code, 2);
  EXPECT_THAT(bad_token.output, HasSubstr("token id 256 is out of range"));
  CliRun not_number = run_cli("logits --model '" + model.string() + "' --tokens 1,abc --out x");
  EXPECT_EQ(not_number.exit_code, 2);
  EXPECT_THAT(not_number.output, HasSubstr("expected an integer, got 'abc'"));
  CliRun unknown = run_cli("logits --modle x");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.output, HasSubstr("unknown flag --modle"));
  CliRun missing = run_cli("logits --model '" + (dir / "absent.rwkv").string() + "' --tokens 1 --out x");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr("absent.rwkv"));
  EXPECT_EQ(run_cli("--help").exit_code, 0);
  for (const char* cmd : {"convert", "info", "logits"}) {
    CliRun help = run_cli(std::string(cmd) + " --help");
    EXPECT_EQ(help.exit_code, 0) << cmd;
    EXPECT_THAT(help.output, HasSubstr("usage: rwkv-cli")) << cmd;
  }
}

}  // namespace
