// rwkv-cli generate, perplexity and chat as a user runs them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "convert/pth_to_native.hpp"
#include "rwkv/session.hpp"
#include "rwkv/state_file.hpp"
#include "test_support.hpp"

namespace {

using ::testing::HasSubstr;

struct Output {
  int exit_code;
  std::string out;
};

// rwkv-cli's stdout only: `args` may redirect stderr itself.
Output sh(const std::string& args) {
  rwkv_test::CliRun run = rwkv_test::run_cli(args, /*merge_stderr=*/false);
  return {run.exit_code, std::move(run.output)};
}

std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

class GenerateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_ / "m.rwkv";
    rwkv::convert::convert_pth((rwkv_test::fixtures_dir() / "tiny-v7.0.pth").string(), model_.string(), {});
  }
  rwkv_test::ScratchDir dir_;
  std::filesystem::path model_;
};

TEST_F(GenerateCli, JsonGreedyMatchesTheLibrary) {
  Output o = sh("generate --model " + q(model_) + " --prompt 'Hello' --temperature 0 --max-tokens 12 --json 2>/dev/null");
  ASSERT_EQ(o.exit_code, 0) << o.out;
  const auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["prompt_tokens"].get<std::vector<int32_t>>(), (std::vector<int32_t>{72, 101, 108, 108, 111}));
  rwkv::Session s(rwkv::Model::load(model_.string()), rwkv::load_tokenizer(rwkv::TokenizerKind::Bytes, ""));
  rwkv::GenerateOptions g;
  g.sampler.temperature = 0;
  g.max_tokens = 12;
  auto r = s.generate("Hello", g);
  EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), r.tokens);
  EXPECT_EQ(j["text"].get<std::string>(), r.text);
  EXPECT_GT(j["tokens_per_second"].get<double>(), 0);
  EXPECT_GT(j["prompt_tokens_per_second"].get<double>(), 0);
}

TEST_F(GenerateCli, StreamsTextSeedRepeatsAndStateOutIn) {
  const std::string base = "generate --model " + q(model_) + " --max-tokens 16 --seed 5 --top-p 0.95";
  Output a = sh(base + " --prompt-file " + q(rwkv_test::fixtures_dir() / "tiny-v4.tokens.json") + " 2>/dev/null");
  Output b = sh(base + " --prompt-file " + q(rwkv_test::fixtures_dir() / "tiny-v4.tokens.json") + " 2>/dev/null");
  ASSERT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.out, b.out);
  Output speed = sh(base + " --prompt abc 2>&1 >/dev/null");
  EXPECT_THAT(speed.out, HasSubstr("tokens/s"));
  const auto state = dir_ / "s.state";
  ASSERT_EQ(sh(base + " --prompt abc --state-out " + q(state) + " >/dev/null 2>&1").exit_code, 0);
  EXPECT_EQ(sh(base + " --prompt d --state-in " + q(state) + " >/dev/null 2>&1").exit_code, 0);
  Output stdin_prompt = sh("generate --model " + q(model_) + " --max-tokens 3 < " + q(rwkv_test::fixtures_dir() / "fixtures.json") + " 2>&1");
  EXPECT_EQ(stdin_prompt.exit_code, 0) << stdin_prompt.out;
}

TEST_F(GenerateCli, BadInputGetsClearErrors) {
  const std::string base = "generate --model " + q(model_);
  Output empty = sh(base + " --prompt '' 2>&1");
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_THAT(empty.out, HasSubstr("prompt is empty"));
  Output stop = sh(base + " --prompt a --stop '' 2>&1");
  EXPECT_EQ(stop.exit_code, 2);
  EXPECT_THAT(stop.out, HasSubstr("--stop"));
  Output temp = sh(base + " --prompt a --temperature hot 2>&1");
  EXPECT_EQ(temp.exit_code, 2);
  EXPECT_THAT(temp.out, HasSubstr("--temperature: expected a number, got 'hot'"));
  Output tokens = sh(base + " --prompt a --max-tokens 1e3 2>&1");
  EXPECT_EQ(tokens.exit_code, 2);
  Output missing_state = sh(base + " --prompt a --state-in " + q(dir_ / "none.state") + " 2>&1");
  EXPECT_EQ(missing_state.exit_code, 1);
  EXPECT_THAT(missing_state.out, HasSubstr("none.state"));
  Output missing_prompt = sh(base + " --prompt-file " + q(dir_ / "none.txt") + " 2>&1");
  EXPECT_EQ(missing_prompt.exit_code, 1);
  EXPECT_THAT(missing_prompt.out, HasSubstr("none.txt"));
  // A state saved for another model is refused.
  const auto v4 = dir_ / "v4.rwkv";
  rwkv::convert::convert_pth((rwkv_test::fixtures_dir() / "tiny-v4.pth").string(), v4.string(), {});
  const auto state = dir_ / "v4.state";
  ASSERT_EQ(sh("generate --model " + q(v4) + " --prompt a --max-tokens 1 --state-out " + q(state) + " >/dev/null 2>&1").exit_code, 0);
  Output foreign = sh(base + " --prompt a --state-in " + q(state) + " 2>&1");
  EXPECT_EQ(foreign.exit_code, 1);
  EXPECT_THAT(foreign.out, HasSubstr("another model"));
}

TEST_F(GenerateCli, PerplexityMatchesTheLogitsCommand) {
  const std::string text = "The quick brown fox jumps over the lazy dog.\nRWKV is an RNN.";
  rwkv_test::write_file(dir_ / "t.txt", text);
  Output p = sh("perplexity --model " + q(model_) + " --file " + q(dir_ / "t.txt") + " --json 2>/dev/null");
  ASSERT_EQ(p.exit_code, 0) << p.out;
  const auto j = nlohmann::json::parse(p.out);
  std::string ids;
  for (unsigned char c : text) ids += (ids.empty() ? "" : ",") + std::to_string(c);
  ASSERT_EQ(sh("logits --model " + q(model_) + " --tokens " + ids + " --out " + q(dir_ / "l.f32")).exit_code, 0);
  const auto logits = rwkv_test::read_f32_file(dir_ / "l.f32");
  double nll = 0;
  for (size_t t = 0; t + 1 < text.size(); ++t) {
    const float* row = logits.data() + t * 256;
    double max = row[0], sum = 0;
    for (int v = 0; v < 256; ++v) max = std::max(max, double(row[v]));
    for (int v = 0; v < 256; ++v) sum += std::exp(row[v] - max);
    nll += std::log(sum) + max - row[static_cast<unsigned char>(text[t + 1])];
  }
  const double mean = nll / double(text.size() - 1);
  EXPECT_NEAR(j["mean_nll"].get<double>(), mean, 1e-4 * mean);
  EXPECT_NEAR(j["perplexity"].get<double>(), std::exp(mean), 1e-4 * std::exp(mean));
  EXPECT_NEAR(j["bits_per_byte"].get<double>(), mean / std::log(2.0), 1e-4 * mean);
  Output bad = sh("perplexity --model " + q(model_) + " --file " + q(dir_ / "t.txt") + " --context 1 2>&1");
  EXPECT_EQ(bad.exit_code, 2);
}

// Drives `rwkv-cli chat` through a pseudo-terminal: two turns, then /save, and
// checks the saved state against the library fed the same conversation.
TEST_F(GenerateCli, ChatThroughAPseudoTerminalKeepsTheStateBetweenTurns) {
  const auto saved = dir_ / "chat.state";
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string model = model_.string();
    ::execl(rwkv_test::cli_path().c_str(), "rwkv-cli", "chat", "--model", model.c_str(), "--temperature", "0",
            "--max-tokens", "12", "--presence-penalty", "0", "--frequency-penalty", "0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::string screen;
  auto read_until = [&](const std::string& needle, size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    auto occurrences = [&] {
      size_t n = 0;
      for (size_t at = screen.find(needle); at != std::string::npos; at = screen.find(needle, at + 1)) ++n;
      return n;
    };
    while (occurrences() < count && std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{master, POLLIN, 0};
      if (::poll(&pfd, 1, 200) > 0) {
        char buf[1024];
        const ssize_t n = ::read(master, buf, sizeof buf);
        if (n <= 0) break;
        screen.append(buf, static_cast<size_t>(n));
      }
    }
    return occurrences() >= count;
  };
  auto type = [&](const std::string& line) { ASSERT_EQ(::write(master, line.data(), line.size()), ssize_t(line.size())); };
  ASSERT_TRUE(read_until("User: ", 1)) << screen;
  type("Hi there\n");
  ASSERT_TRUE(read_until("User: ", 2)) << screen;
  type("And again\n");
  ASSERT_TRUE(read_until("User: ", 3)) << screen;
  type("/save " + saved.string() + "\n");
  ASSERT_TRUE(read_until("state saved", 1)) << screen;
  type("\x04");  // Ctrl-D leaves
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << screen;
  EXPECT_THAT(screen, HasSubstr("Assistant:"));

  auto model = rwkv::Model::load(model_.string());
  rwkv::Session expected(model, rwkv::load_tokenizer(rwkv::TokenizerKind::Bytes, ""));
  rwkv::GenerateOptions o;
  o.sampler.temperature = 0;
  o.sampler.banned_tokens = {0};
  o.max_tokens = 12;
  o.stop = {"\n\n"};
  for (const std::string msg : {"Hi there", "And again"}) {
    auto r = expected.generate("User: " + msg + "\n\nAssistant:", o);
    if (r.reason != rwkv::StopReason::StopString) expected.feed_text("\n\n");
  }
  EXPECT_EQ(rwkv::load_state(saved.string(), *model), expected.state());
}

}  // namespace
