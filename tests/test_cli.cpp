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

using CliRun = rwkv_test::CommandResult;

CliRun run_cli(const std::string& args) { return rwkv_test::run_cli_with_stderr(args); }

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

  const auto seq_out = dir / "logits-seq.f32";
  CliRun seq = run_cli("logits --model '" + model.string() + "' --tokens " + tokens + " --out '" + seq_out.string() +
                       "' --sequence");
  ASSERT_EQ(seq.exit_code, 0) << seq.output;
  const auto seq_got = rwkv_test::read_f32_file(seq_out);
  ASSERT_EQ(seq_got.size(), expected.size());
  for (size_t i = 0; i < seq_got.size(); ++i) ASSERT_NEAR(seq_got[i], expected[i], 2e-4) << "value " << i;
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

// Token ids are checked to fit int32 (and be non-negative) before they are narrowed.
TEST(Cli, TokenIdListsOutOfInt32AreRefused) {
  rwkv_test::ScratchDir dir;
  const auto fixture = rwkv_test::fixtures_dir() / "tiny-v7.0.pth";
  const std::string model = (dir / "m.rwkv").string(), out = (dir / "l.f32").string();
  ASSERT_EQ(run_cli("convert '" + fixture.string() + "' '" + model + "'").exit_code, 0);
  const std::string range = " is out of range (0 to 2147483647)";
  for (const char* id : {"4294967296", "4294967297", "2147483648", "-1", "-2147483649", "99999999999999999999"}) {
    CliRun logits = run_cli("logits --model '" + model + "' --tokens 1," + id + " --out '" + out + "'");
    EXPECT_EQ(logits.exit_code, 2) << id << ": " << logits.output;
    EXPECT_THAT(logits.output, HasSubstr(std::string("flag --tokens: ") + id + range)) << id;
    CliRun decode = run_cli(std::string("tokenize --tokenizer bytes --decode --ids 65,") + id);
    EXPECT_EQ(decode.exit_code, 2) << id << ": " << decode.output;
    EXPECT_THAT(decode.output, HasSubstr(std::string("flag --ids: ") + id + range)) << id;
  }
  EXPECT_FALSE(std::filesystem::exists(out));
  CliRun in_range = run_cli("tokenize --tokenizer bytes --decode --ids 72,105");
  EXPECT_EQ(in_range.exit_code, 0) << in_range.output;
  EXPECT_EQ(in_range.output, "Hi");
}

// rwkv-gen-model reads its numbers with the same range checks.
TEST(Cli, GenModelNumbersOutOfRangeAreRefused) {
  rwkv_test::ScratchDir dir;
  const std::string base = std::string("'") + RWKV_GEN_MODEL_PATH + "' --preset rwkv4-169m --out '" +
                           (dir / "m.pth").string() + "' ";
  // ASSERT first: where a negative seed is taken, the larger cases would write for hours.
  CliRun seed = rwkv_test::run_command(base + "--seed -1 2>&1");
  ASSERT_EQ(seed.exit_code, 2) << seed.output;
  EXPECT_THAT(seed.output, HasSubstr("flag --seed: -1 is out of range (0 to 9223372036854775807)"));
  for (const char* layers : {"4294967296", "1025", "-1", "99999999999999999999"}) {
    CliRun o = rwkv_test::run_command(base + "--n-layer " + layers + " 2>&1");
    EXPECT_EQ(o.exit_code, 2) << layers << ": " << o.output;
    EXPECT_THAT(o.output, HasSubstr(std::string("flag --n-layer: ") + layers + " is out of range (0 to 1024)"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "m.pth"));
}

// rwkv-repack-ab steps a model as stored and as packed, each line naming its form, and
// refuses a bad count by flag.
TEST(Cli, RepackAbStepsBothForms) {
  rwkv_test::ScratchDir dir;
  const std::string f16 = (dir / "f16.rwkv").string();
  ASSERT_EQ(run_cli("convert '" + (rwkv_test::fixtures_dir() / "tiny-v7.0.pth").string() + "' '" + f16 +
                    "' --type f16").exit_code, 0);
  const std::string tool = std::string("'") + RWKV_REPACK_AB_PATH + "' ";
  CliRun ok = rwkv_test::run_command(tool + "--model '" + f16 + "' --steps 3 --batch 2 2>&1");
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_THAT(ok.output, HasSubstr("stored batch 2: median "));
  EXPECT_THAT(ok.output, HasSubstr("packed batch 2: median "));
  EXPECT_THAT(ok.output, HasSubstr("over 3 steps"));
  CliRun bad = rwkv_test::run_command(tool + "--model '" + f16 + "' --steps 0 2>&1");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("flag --steps: 0 is out of range"));
}

// quantize from f32 gives exactly what convert gives; a second lossy rounding is refused
// unless asked for; the embedding and head types follow the documented defaults.
TEST(Cli, QuantizeMatchesConvertAndRefusesRequantizing) {
  rwkv_test::ScratchDir dir;
  const auto fixture = rwkv_test::fixtures_dir() / "tiny-v7.0.pth";
  const std::string f32 = (dir / "f32.rwkv").string(), q8 = (dir / "q8.rwkv").string();
  const std::string converted = (dir / "converted-q8.rwkv").string(), q4 = (dir / "q4.rwkv").string();
  ASSERT_EQ(run_cli("convert '" + fixture.string() + "' '" + f32 + "'").exit_code, 0);
  ASSERT_EQ(run_cli("convert '" + fixture.string() + "' '" + converted + "' --type q8_0").exit_code, 0);
  CliRun quantize = run_cli("quantize '" + f32 + "' '" + q8 + "' --type q8_0");
  ASSERT_EQ(quantize.exit_code, 0) << quantize.output;
  EXPECT_EQ(rwkv_test::read_file(q8), rwkv_test::read_file(converted));
  const std::string tensors = run_cli("info --model '" + q8 + "' --tensors").output;
  EXPECT_THAT(tensors, testing::ContainsRegex("emb.weight +f16"));
  EXPECT_THAT(tensors, testing::ContainsRegex("head.weight +q8_0"));
  EXPECT_THAT(tensors, testing::ContainsRegex("blocks.0.att.key.weight +q8_0"));
  EXPECT_THAT(tensors, testing::ContainsRegex("blocks.0.att.w1 +f32"));

  CliRun refused = run_cli("quantize '" + q8 + "' '" + q4 + "' --type q4_s");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.output, HasSubstr("--allow-requantize"));
  EXPECT_FALSE(std::filesystem::exists(q4));
  CliRun allowed = run_cli("quantize '" + q8 + "' '" + q4 + "' --type q4_s --allow-requantize --head-type q8_0");
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
  EXPECT_THAT(run_cli("info --model '" + q4 + "' --tensors").output, testing::ContainsRegex("ffn.key.weight +q4_s"));
  EXPECT_EQ(run_cli("quantize '" + q8 + "' '" + q4 + "'").exit_code, 2);  // --type is required
  EXPECT_EQ(run_cli("quantize '" + q8 + "' '" + q4 + "' --type q5").exit_code, 2);
  EXPECT_EQ(run_cli("quantize '" + q8 + "' '" + (dir / "wide.rwkv").string() + "' --type f32 --embedding-type f32")
                .exit_code,
            0);  // widening to f32 is exact, so it needs no flag
}

}  // namespace
