// rwkv-cli bench on a committed fixture: every field is there and makes sense
// (not how fast it is: the machine is shared).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "rwkv/machine.hpp"
#include "test_support.hpp"

namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

class BenchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto fixture = rwkv_test::fixtures_dir() / "tiny-v7.0.pth";
    model_ = (dir_ / "m.rwkv").string();
    auto convert = rwkv_test::run_cli_with_stderr("convert '" + fixture.string() + "' '" + model_ + "' --type f16");
    ASSERT_EQ(convert.exit_code, 0) << convert.output;
  }
  // The fixture converted to `type`, then `bench --json` on it with a 40-token prompt.
  nlohmann::json bench_fixture_as(const std::string& type) {
    const std::string path = (dir_ / (type + ".rwkv")).string();
    const auto fixture = rwkv_test::fixtures_dir() / "tiny-v7.0.pth";
    auto convert = rwkv_test::run_cli_with_stderr("convert '" + fixture.string() + "' '" + path + "' --type " + type);
    EXPECT_EQ(convert.exit_code, 0) << convert.output;
    auto bench = rwkv_test::run_cli_with_stderr("bench --model '" + path +
                                                "' --decode 2 --prefill 40 --threads 2 --bandwidth-mib 8 --json");
    EXPECT_EQ(bench.exit_code, 0) << bench.output;
    return bench.exit_code == 0 ? nlohmann::json::parse(bench.output) : nlohmann::json::object();
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
        "prefill_fma_fraction", "matrix_params", "file_bytes", "decode_ms_per_step", "decode_fma_fraction",
        "prefill_peak_fraction"}) {
    ASSERT_TRUE(j.contains(field)) << field;
    EXPECT_TRUE(j[field].is_number()) << field;
    EXPECT_GT(j[field].get<double>(), 0) << field;
    EXPECT_TRUE(std::isfinite(j[field].get<double>())) << field;
  }
  EXPECT_EQ(j["threads"], 2);
  EXPECT_EQ(j["model"], model_);
  EXPECT_EQ(j["arch"], "7.0");
  EXPECT_EQ(j["decode_tokens"], 4);
  EXPECT_EQ(j["batch"], 1);
  EXPECT_EQ(j["isa"], rwkv::kernel_isa());
  EXPECT_THAT((std::vector<std::string>{"amx", "avx512_vnni", "avx512", "avx2", "scalar"}),
              ::testing::Contains(j["isa"].get<std::string>()));
  EXPECT_EQ(j["decode_ms_per_step"], j["decode_ms_per_token"]);
  // f16 matrices: prefill runs on FMAs, and its fraction is that of the FMA peak.
  EXPECT_EQ(j["prefill_unit"], rwkv::fma_peak_unit());
  EXPECT_EQ(j["fma_unit"], rwkv::fma_peak_unit());
  EXPECT_EQ(j["int8_unit"], rwkv::int8_peak_unit());
  EXPECT_EQ(j["prefill_peak_fraction"], j["prefill_fma_fraction"]);
  EXPECT_GE(j["int8_peak_gops"].get<double>(), 0.0);
  if (j["isa"] != "scalar") {
    EXPECT_GT(j["int8_peak_gops"].get<double>(), j["fma_peak_gflops"].get<double>());
  }
  EXPECT_EQ(j["prefill_tokens"], 8);
  EXPECT_EQ(j["matrix_types"], "f16+f32");  // the big matrices f16, the LoRA ones f32
  EXPECT_NEAR(j["decode_tokens_per_second"].get<double>() * j["decode_ms_per_token"].get<double>(), 1000.0, 1e-6);
  // Every weight but the embedding's other rows is read per token: less than the file, more than its matrices in f16.
  const auto file_bytes = j["file_bytes"].get<double>();
  EXPECT_LT(j["weight_bytes_per_token"].get<double>(), file_bytes);
  EXPECT_GT(j["weight_bytes_per_token"].get<double>(), 2.0 * j["matrix_params"].get<double>() * 0.9);
  EXPECT_GE(j["peak_rss_bytes"].get<double>(), 1e6);
}

// q8_0 matrices: where the kernels multiply them in int8 (VNNI, AMX), prefill is compared
// with the int8 peak of that unit, else with the FMA peak.
TEST_F(BenchCli, PrefillIsComparedWithThePeakOfTheUnitThatRanIt) {
  const nlohmann::json j = bench_fixture_as("q8_0");
  ASSERT_FALSE(j.empty());
  const bool int8 = rwkv::int8_matmat("q8_0");
  const std::string isa = rwkv::kernel_isa();
  EXPECT_EQ(int8, isa == "avx512_vnni" || isa == "amx");
  if (isa == "amx") {
    EXPECT_EQ(j["int8_unit"], "amx int8 (tdpbssd)");
  }
  EXPECT_EQ(j["prefill_unit"], int8 ? rwkv::int8_peak_unit() : rwkv::fma_peak_unit());
  const double peak = int8 ? j["int8_peak_gops"].get<double>() : j["fma_peak_gflops"].get<double>();
  EXPECT_NEAR(j["prefill_peak_fraction"].get<double>() * peak,
              j["prefill_fma_fraction"].get<double>() * j["fma_peak_gflops"].get<double>(), 1e-9 * peak);
  EXPECT_FALSE(rwkv::int8_matmat("f16"));
}

// bf16 matrices: where the kernels use bf16 dot products (AMD with AVX512_BF16) prefill
// runs on bf16 dot products and is compared with their peak, measured in the same run;
// elsewhere with the FMA peak, and the bf16 peak is 0.
TEST_F(BenchCli, Bf16PrefillIsComparedWithTheBf16DotPeakWhereItRuns) {
  const nlohmann::json j = bench_fixture_as("bf16");
  ASSERT_FALSE(j.empty());
  const bool on_bf16 = rwkv::bf16_matmat("bf16");
  const std::string isa = rwkv::kernel_isa();
  if (isa != "avx512_vnni" && isa != "amx") {
    EXPECT_FALSE(on_bf16);
  }
  EXPECT_EQ(j["bf16_unit"], rwkv::bf16_peak_unit());
  EXPECT_EQ(j["prefill_unit"], on_bf16 ? rwkv::bf16_peak_unit() : rwkv::fma_peak_unit());
  if (on_bf16) {
    EXPECT_EQ(j["bf16_unit"], "avx512 bf16 (vdpbf16ps)");
    // Two products per lane and instruction: above the FMA's one.
    EXPECT_GT(j["bf16_peak_gflops"].get<double>(), j["fma_peak_gflops"].get<double>());
  } else {
    EXPECT_EQ(j["bf16_peak_gflops"].get<double>(), 0.0);
  }
  const double peak = on_bf16 ? j["bf16_peak_gflops"].get<double>() : j["fma_peak_gflops"].get<double>();
  EXPECT_NEAR(j["prefill_peak_fraction"].get<double>() * peak,
              j["prefill_fma_fraction"].get<double>() * j["fma_peak_gflops"].get<double>(), 1e-9 * peak);
  EXPECT_FALSE(rwkv::bf16_matmat("f16"));
  EXPECT_FALSE(rwkv::bf16_matmat("q8_0"));
}

// q8_0 matrices are rearranged at load where the kernels read int8 panels (the
// avx512_vnni level), f16 ones where they read f16 panels (the AVX-512 levels): bench
// counts them in "packed_tensors" and info prints the count; RWKV_REPACK=0 keeps every
// tensor as stored.
TEST_F(BenchCli, ReportsTheTensorsPackedAtLoad) {
  const nlohmann::json j = bench_fixture_as("q8_0");
  ASSERT_FALSE(j.empty());
  const bool packs = rwkv::kernel_isa() == std::string("avx512_vnni");
  if (packs) {
    EXPECT_GT(j["packed_tensors"].get<int64_t>(), 0);
  } else {
    EXPECT_EQ(j["packed_tensors"], 0);
  }
  const std::string path = (dir_ / "q8_0.rwkv").string();
  auto info = rwkv_test::run_cli_with_stderr("info --model '" + path + "'");
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_EQ(info.output.find("packed:") != std::string::npos, packs) << info.output;
  auto as_stored = rwkv_test::run_cli_with_stderr("info --model '" + path + "'", "RWKV_REPACK=0");
  ASSERT_EQ(as_stored.exit_code, 0) << as_stored.output;
  EXPECT_EQ(as_stored.output.find("packed:"), std::string::npos) << as_stored.output;
  auto f16 = rwkv_test::run_cli_with_stderr("bench --model '" + model_ +
                                            "' --decode 2 --prefill 8 --threads 2 --bandwidth-mib 8 --json");
  ASSERT_EQ(f16.exit_code, 0) << f16.output;
  const std::string level = rwkv::kernel_isa();
  if (level == "avx512" || level == "avx512_vnni" || level == "amx") {
    EXPECT_GT(nlohmann::json::parse(f16.output)["packed_tensors"].get<int64_t>(), 0) << level;
  } else {
    EXPECT_EQ(nlohmann::json::parse(f16.output)["packed_tensors"], 0) << level;
  }
  auto f16_as_stored = rwkv_test::run_cli_with_stderr(
      "bench --model '" + model_ + "' --decode 2 --prefill 8 --threads 2 --bandwidth-mib 8 --json", "RWKV_REPACK=0");
  ASSERT_EQ(f16_as_stored.exit_code, 0) << f16_as_stored.output;
  EXPECT_EQ(nlohmann::json::parse(f16_as_stored.output)["packed_tensors"], 0);
}

// RWKV_ISA chooses the kernels' instruction-set level: every level this processor runs
// works and is what info and bench report; "native" is the default; an unknown level and
// one above the processor's are refused by name.
TEST_F(BenchCli, RwkvIsaChoosesTheKernelLevel) {
  const std::vector<std::string> levels = rwkv::supported_kernel_isas();
  ASSERT_FALSE(levels.empty());
  EXPECT_EQ(levels.front(), "scalar");
  for (const std::string& level : levels) {
    auto info = rwkv_test::run_cli_with_stderr("info --model '" + model_ + "'", "RWKV_ISA=" + level);
    ASSERT_EQ(info.exit_code, 0) << info.output;
    EXPECT_THAT(info.output, HasSubstr("kernels:      " + level + "\n"));
    auto bench = rwkv_test::run_cli_with_stderr(
        "bench --model '" + model_ + "' --decode 2 --prefill 20 --threads 2 --bandwidth-mib 8 --json", "RWKV_ISA=" + level);
    ASSERT_EQ(bench.exit_code, 0) << bench.output;
    EXPECT_EQ(nlohmann::json::parse(bench.output)["isa"], level);
  }
  // native, and no RWKV_ISA, take the best level, except amx, which is only used when named.
  const std::string default_level =
      levels.back() == "amx" && levels.size() > 1 ? levels[levels.size() - 2] : levels.back();
  auto native = rwkv_test::run_cli_with_stderr("info --model '" + model_ + "'", "RWKV_ISA=native");
  EXPECT_THAT(native.output, HasSubstr("kernels:      " + default_level + "\n"));
  auto unset = rwkv_test::run_cli_with_stderr("info --model '" + model_ + "'", "RWKV_ISA=");
  EXPECT_THAT(unset.output, HasSubstr("kernels:      " + default_level + "\n"));
  auto unknown = rwkv_test::run_cli_with_stderr("info --model '" + model_ + "'", "RWKV_ISA=sse9");
  EXPECT_THAT(unknown.output, HasSubstr("RWKV_ISA=sse9: unknown instruction-set level (expected native or one of: scalar"));
  // The level above this processor's best is refused: by name where this build has it,
  // as unknown where it does not (amx needs a compiler with the AMX intrinsics).
  const std::vector<std::string> every_level = {"scalar", "avx2", "avx512", "avx512_vnni", "amx"};
  const auto best = std::find(every_level.begin(), every_level.end(), levels.back());
  ASSERT_NE(best, every_level.end());
  if (best + 1 != every_level.end()) {
    const std::string above_level = *(best + 1);
    auto above = rwkv_test::run_cli_with_stderr("info --model '" + model_ + "'", "RWKV_ISA=" + above_level);
    EXPECT_NE(above.exit_code, 0);
    EXPECT_THAT(above.output, AnyOf(HasSubstr("supports at most " + levels.back()),
                                    HasSubstr("RWKV_ISA=" + above_level + ": unknown instruction-set level")));
  }
}

// --batch B: a step advances B sequences; tokens/s is the aggregate over them.
TEST_F(BenchCli, BatchedDecodeReportsStepsAndAggregateTokens) {
  auto bench = rwkv_test::run_cli_with_stderr("bench --model '" + model_ +
                                              "' --batch 4 --decode 3 --prefill 4 --threads 2 --bandwidth-mib 8 --json");
  ASSERT_EQ(bench.exit_code, 0) << bench.output;
  const nlohmann::json j = nlohmann::json::parse(bench.output);
  EXPECT_EQ(j["batch"], 4);
  const double step_ms = j["decode_ms_per_step"].get<double>();
  EXPECT_GT(step_ms, 0);
  EXPECT_NEAR(j["decode_tokens_per_second"].get<double>(), 4 * 1000.0 / step_ms, 1e-6 * 4000.0 / step_ms);
  EXPECT_NEAR(j["decode_ms_per_token"].get<double>(), step_ms / 4, 1e-9 * step_ms);
  auto text = rwkv_test::run_cli_with_stderr("bench --model '" + model_ +
                                             "' --batch 3 --decode 2 --prefill 2 --threads 1 --bandwidth-mib 8");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_THAT(text.output, HasSubstr("decode, batch 3: "));
  EXPECT_THAT(text.output, HasSubstr("tokens/s in all"));
  for (const char* bad : {"0", "-1", "1025", "x"}) {
    auto run = rwkv_test::run_cli_with_stderr("bench --model '" + model_ + "' --batch " + bad);
    EXPECT_EQ(run.exit_code, 2) << bad << ": " << run.output;
    EXPECT_THAT(run.output, HasSubstr("--batch")) << bad;
  }
}

TEST_F(BenchCli, HumanReadableReportAndBadFlags) {
  auto bench = rwkv_test::run_cli_with_stderr("bench --model '" + model_ + "' --decode 2 --prefill 3 --threads 1 --bandwidth-mib 8");
  ASSERT_EQ(bench.exit_code, 0) << bench.output;
  for (const char* line : {"threads: 1", "load:", "decode:", "prefill:", "peak RSS:", "weights read per token:",
                           "memory read bandwidth:", "FP32 FMA peak (", "prefill runs on "}) {
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

// --bandwidth-mib has a stated maximum, checked before the model is loaded or the buffer
// allocated: 2^44 MiB used to wrap to an 8-byte buffer (and 18,565% of the bandwidth),
// 2^32 MiB to abort in the allocator.
TEST_F(BenchCli, BandwidthBufferBeyondItsMaximumIsRefusedBeforeAllocating) {
  const std::string range = "is out of range (1 to 65536)";
  for (const char* mib : {"17592186044416", "4294967296", "65537", "0", "-1", "99999999999999999999"}) {
    auto bench = rwkv_test::run_cli_with_stderr("bench --model '" + model_ +
                                                "' --decode 2 --prefill 3 --bandwidth-mib " + mib);
    // ASSERT: where this is not refused, the cases below would run for hours.
    ASSERT_EQ(bench.exit_code, 2) << mib << ": " << bench.output;
    EXPECT_THAT(bench.output, HasSubstr(std::string("flag --bandwidth-mib: ") + mib + " " + range)) << mib;
    EXPECT_THAT(bench.output, Not(HasSubstr("memory read bandwidth"))) << mib;
  }
  // Refused before the model is even read.
  auto first = rwkv_test::run_cli_with_stderr("bench --model '" + (dir_ / "absent.rwkv").string() +
                                              "' --bandwidth-mib 4294967296");
  EXPECT_EQ(first.exit_code, 2) << first.output;
  EXPECT_THAT(first.output, HasSubstr("--bandwidth-mib"));
  EXPECT_THAT(first.output, Not(HasSubstr("absent.rwkv")));
  // Within the maximum but beyond this machine's memory (where it has less than 64 GiB).
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_bytes = ::sysconf(_SC_PAGE_SIZE);
  const uint64_t memory_mib = (static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_bytes)) >> 20;
  if (pages > 0 && page_bytes > 0 && memory_mib < 65536) {
    auto big = rwkv_test::run_cli_with_stderr("bench --model '" + model_ + "' --bandwidth-mib 65536");
    EXPECT_EQ(big.exit_code, 2) << big.output;
    EXPECT_THAT(big.output, HasSubstr("flag --bandwidth-mib: 65536 MiB is more than this machine's memory"));
  }
  for (const char* flags : {"--decode 4294967297", "--prefill 4294967296", "--decode 0"}) {
    auto bench = rwkv_test::run_cli_with_stderr("bench --model '" + model_ + "' " + flags);
    EXPECT_EQ(bench.exit_code, 2) << flags << ": " << bench.output;
    EXPECT_THAT(bench.output, HasSubstr("is out of range (1 to 2147483647)")) << flags;
  }
  auto help = rwkv_test::run_cli_with_stderr("bench --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.output, HasSubstr("at most 65536"));
}

TEST(ThreadsFlag, AcceptedByEveryModelCommand) {
  for (const char* cmd : {"generate", "chat", "perplexity", "logits", "bench"}) {
    auto help = rwkv_test::run_cli_with_stderr(std::string(cmd) + " --help");
    EXPECT_EQ(help.exit_code, 0) << cmd;
    EXPECT_THAT(help.output, HasSubstr("--threads N")) << cmd;
  }
}

}  // namespace
