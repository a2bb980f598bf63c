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
#include <thread>

#include "rwkv/convert.hpp"
#include "rwkv/session.hpp"
#include "rwkv/state_file.hpp"
#include "test_support.hpp"

namespace {

using ::testing::HasSubstr;

using Output = rwkv_test::CommandResult;

Output sh(const std::string& args) { return rwkv_test::run_cli(args); }

std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

class GenerateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_ / "m.rwkv";
    rwkv::convert_model((rwkv_test::fixtures_dir() / "tiny-v7.0.pth").string(), model_.string(), {});
  }
  rwkv_test::ScratchDir dir_;
  std::filesystem::path model_;
};

TEST_F(GenerateCli, JsonGreedyMatchesTheLibrary) {
  Output o = sh("generate --model " + q(model_) + " --prompt 'Hello' --temperature 0 --max-tokens 12 --json 2>/dev/null");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  const auto j = nlohmann::json::parse(o.output);
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
  EXPECT_EQ(a.output, b.output);
  Output speed = sh(base + " --prompt abc 2>&1 >/dev/null");
  EXPECT_THAT(speed.output, HasSubstr("tokens/s"));
  const auto state = dir_ / "s.state";
  ASSERT_EQ(sh(base + " --prompt abc --state-out " + q(state) + " >/dev/null 2>&1").exit_code, 0);
  EXPECT_EQ(sh(base + " --prompt d --state-in " + q(state) + " >/dev/null 2>&1").exit_code, 0);
  Output stdin_prompt = sh("generate --model " + q(model_) + " --max-tokens 3 < " + q(rwkv_test::fixtures_dir() / "fixtures.json") + " 2>&1");
  EXPECT_EQ(stdin_prompt.exit_code, 0) << stdin_prompt.output;
}

TEST_F(GenerateCli, BadInputGetsClearErrors) {
  const std::string base = "generate --model " + q(model_);
  Output empty = sh(base + " --prompt '' 2>&1");
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_THAT(empty.output, HasSubstr("prompt is empty"));
  Output stop = sh(base + " --prompt a --stop '' 2>&1");
  EXPECT_EQ(stop.exit_code, 2);
  EXPECT_THAT(stop.output, HasSubstr("--stop"));
  Output temp = sh(base + " --prompt a --temperature hot 2>&1");
  EXPECT_EQ(temp.exit_code, 2);
  EXPECT_THAT(temp.output, HasSubstr("--temperature: expected a number, got 'hot'"));
  Output tokens = sh(base + " --prompt a --max-tokens 1e3 2>&1");
  EXPECT_EQ(tokens.exit_code, 2);
  Output missing_state = sh(base + " --prompt a --state-in " + q(dir_ / "none.state") + " 2>&1");
  EXPECT_EQ(missing_state.exit_code, 1);
  EXPECT_THAT(missing_state.output, HasSubstr("none.state"));
  Output missing_prompt = sh(base + " --prompt-file " + q(dir_ / "none.txt") + " 2>&1");
  EXPECT_EQ(missing_prompt.exit_code, 1);
  EXPECT_THAT(missing_prompt.output, HasSubstr("none.txt"));
  // A prompt larger than the command reads (a sparse file: nothing is written).
  const auto huge = dir_ / "huge.txt";
  rwkv_test::write_file(huge, "x");
  std::filesystem::resize_file(huge, (uint64_t(1) << 30) + 1);
  Output too_long = sh(base + " --prompt-file " + q(huge) + " 2>&1");
  EXPECT_EQ(too_long.exit_code, 1);
  EXPECT_THAT(too_long.output, HasSubstr("more than the 1073741824 bytes"));
  // A state saved for another model is refused.
  const auto v4 = dir_ / "v4.rwkv";
  rwkv::convert_model((rwkv_test::fixtures_dir() / "tiny-v4.pth").string(), v4.string(), {});
  const auto state = dir_ / "v4.state";
  ASSERT_EQ(sh("generate --model " + q(v4) + " --prompt a --max-tokens 1 --state-out " + q(state) + " >/dev/null 2>&1").exit_code, 0);
  Output foreign = sh(base + " --prompt a --state-in " + q(state) + " 2>&1");
  EXPECT_EQ(foreign.exit_code, 1);
  EXPECT_THAT(foreign.output, HasSubstr("another model"));
}

// Numbers are range-checked in 64 bits before they are cut to the 32 bits the library
// takes: 4294967296 is not 0 tokens, nor 2147483648 a negative count.
TEST_F(GenerateCli, NumericFlagsOutOfRangeAreRefusedNotWrapped) {
  const std::string base = "generate --model " + q(model_) + " --prompt a";
  struct Case {
    std::string flags, message;
  };
  const Case cases[] = {
      {"--max-tokens 4294967296", "flag --max-tokens: 4294967296 is out of range (0 to 2147483647)"},
      {"--max-tokens 2147483648", "flag --max-tokens: 2147483648 is out of range (0 to 2147483647)"},
      {"--max-tokens 4294967297", "flag --max-tokens: 4294967297 is out of range (0 to 2147483647)"},
      {"--max-tokens -1", "flag --max-tokens: -1 is out of range (0 to 2147483647)"},
      {"--max-tokens 99999999999999999999", "flag --max-tokens: 99999999999999999999 is out of range"},
      {"--top-k 4294967297", "flag --top-k: 4294967297 is out of range (0 to 2147483647)"},
      {"--top-k -2147483649", "flag --top-k: -2147483649 is out of range (0 to 2147483647)"},
      {"--top-k 2147483648", "flag --top-k: 2147483648 is out of range (0 to 2147483647)"},
      {"--temperature nan", "flag --temperature: nan is not a number"},
      {"--temperature inf", "flag --temperature: inf is out of range"},
      {"--top-p inf", "flag --top-p: inf is out of range (0 to 1)"},
      {"--top-p 1e-50", "flag --top-p: must be in (0, 1]"},
      {"--min-p 1.5", "flag --min-p: 1.5 is out of range (0 to 1)"},
      {"--presence-penalty 1e400", "flag --presence-penalty: 1e400 is out of range"},
      {"--frequency-penalty -inf", "flag --frequency-penalty: -inf is out of range"},
      {"--penalty-decay nan", "flag --penalty-decay: nan is not a number"},
      {"--repetition-penalty 0", "flag --repetition-penalty: 0 is out of range"},
      {"--repetition-penalty 1e-300", "flag --repetition-penalty: 1e-300 is out of range"},
      {"--seed -1", "flag --seed: -1 is out of range (0 to 9223372036854775807)"},
      {"--seed 18446744073709551616", "flag --seed: 18446744073709551616 is out of range"},
      {"--threads 4294967297", "flag --threads: 4294967297 is out of range (0 to 1024)"},
  };
  for (const Case& c : cases) {
    Output o = sh(base + " " + c.flags + " 2>&1");
    EXPECT_EQ(o.exit_code, 2) << c.flags << ": " << o.output;
    EXPECT_THAT(o.output, HasSubstr(c.message)) << c.flags;
  }
  // The bounds themselves are taken.
  Output edge =
      sh("generate --model " + q(model_) + " --prompt a --max-tokens 0 --top-k 2147483647 --json 2>/dev/null");
  ASSERT_EQ(edge.exit_code, 0) << edge.output;
  EXPECT_TRUE(nlohmann::json::parse(edge.output)["tokens"].empty());
  // chat (a reply of at least 1 token) and perplexity read theirs the same way.
  const Case chat_cases[] = {
      {"--max-tokens 4294967296", "flag --max-tokens: 4294967296 is out of range (1 to 2147483647)"},
      {"--max-tokens 0", "flag --max-tokens: 0 is out of range (1 to 2147483647)"},
      {"--top-k 4294967297", "flag --top-k: 4294967297 is out of range (0 to 2147483647)"},
  };
  for (const Case& c : chat_cases) {
    Output o = sh("chat --model " + q(model_) + " " + c.flags + " </dev/null 2>&1");
    EXPECT_EQ(o.exit_code, 2) << c.flags << ": " << o.output;
    EXPECT_THAT(o.output, HasSubstr(c.message)) << c.flags;
  }
  rwkv_test::write_file(dir_ / "t.txt", "some text");
  Output context = sh("perplexity --model " + q(model_) + " --file " + q(dir_ / "t.txt") +
                      " --context 99999999999999999999 2>&1");
  EXPECT_EQ(context.exit_code, 2) << context.output;
  EXPECT_THAT(context.output,
              HasSubstr("flag --context: 99999999999999999999 is out of range (0 to 9223372036854775807)"));
}

TEST_F(GenerateCli, PerplexityMatchesTheLogitsCommand) {
  const std::string text = "The quick brown fox jumps over the lazy dog.\nRWKV is an RNN.";
  rwkv_test::write_file(dir_ / "t.txt", text);
  Output p = sh("perplexity --model " + q(model_) + " --file " + q(dir_ / "t.txt") + " --json 2>/dev/null");
  ASSERT_EQ(p.exit_code, 0) << p.output;
  const auto j = nlohmann::json::parse(p.output);
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

// `rwkv-cli chat` in a pseudo-terminal, typed at as a person would.
class ChatTerminal {
 public:
  explicit ChatTerminal(const std::vector<std::string>& args) {
    pid_ = ::forkpty(&master_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      std::vector<char*> argv = {const_cast<char*>("rwkv-cli"), const_cast<char*>("chat")};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(rwkv_test::cli_path().c_str(), argv.data());
      ::_exit(127);
    }
  }
  ~ChatTerminal() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }
  bool started() const { return pid_ > 0; }
  // Reads the terminal until `needle` has appeared `count` times in all (60 s at most).
  bool wait_for(const std::string& needle, size_t count = 1) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (occurrences(needle) < count && std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{master_, POLLIN, 0};
      if (::poll(&pfd, 1, 200) > 0) {
        char buf[4096];
        const ssize_t n = ::read(master_, buf, sizeof buf);
        if (n <= 0) break;
        screen_.append(buf, static_cast<size_t>(n));
      }
    }
    return occurrences(needle) >= count;
  }
  void type(const std::string& keys) { ASSERT_EQ(::write(master_, keys.data(), keys.size()), ssize_t(keys.size())); }
  int wait_exit() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  const std::string& screen() const { return screen_; }

 private:
  size_t occurrences(const std::string& needle) const {
    size_t n = 0;
    for (size_t at = screen_.find(needle); at != std::string::npos; at = screen_.find(needle, at + 1)) ++n;
    return n;
  }
  int master_ = -1;
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string screen_;
};

// Two turns, then /save: the saved state equals the library fed the same conversation.
TEST_F(GenerateCli, ChatThroughAPseudoTerminalKeepsTheStateBetweenTurns) {
  const auto saved = dir_ / "chat.state";
  ChatTerminal chat({"--model", model_.string(), "--temperature", "0", "--max-tokens", "12", "--presence-penalty", "0",
                     "--frequency-penalty", "0"});
  ASSERT_TRUE(chat.started());
  ASSERT_TRUE(chat.wait_for("User: ", 1)) << chat.screen();
  chat.type("Hi there\n");
  ASSERT_TRUE(chat.wait_for("User: ", 2)) << chat.screen();
  chat.type("And again\n");
  ASSERT_TRUE(chat.wait_for("User: ", 3)) << chat.screen();
  chat.type("/save " + saved.string() + "\n");
  ASSERT_TRUE(chat.wait_for("state saved")) << chat.screen();
  chat.type("\x04");  // Ctrl-D leaves
  EXPECT_EQ(chat.wait_exit(), 0) << chat.screen();
  EXPECT_THAT(chat.screen(), HasSubstr("Assistant:"));

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

// Ctrl-C stops a long reply and the chat goes on.
TEST_F(GenerateCli, ChatCtrlCStopsTheReplyNotTheChat) {
  // This model never writes "\n\n" greedily, so the reply runs until interrupted.
  ChatTerminal chat({"--model", model_.string(), "--temperature", "0", "--max-tokens", "100000000",
                     "--presence-penalty", "0", "--frequency-penalty", "0"});
  ASSERT_TRUE(chat.started());
  ASSERT_TRUE(chat.wait_for("User: ")) << chat.screen();
  chat.type("Tell me everything\n");
  ASSERT_TRUE(chat.wait_for("Assistant:")) << chat.screen();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  chat.type("\x03");
  ASSERT_TRUE(chat.wait_for("(stopped)")) << chat.screen();
  ASSERT_TRUE(chat.wait_for("User: ", 2)) << chat.screen();
  chat.type("/help\n");
  ASSERT_TRUE(chat.wait_for("/reset")) << chat.screen();
  chat.type("\x04");
  EXPECT_EQ(chat.wait_exit(), 0) << chat.screen();
}

}  // namespace

namespace {

// llama.cpp's short flags and --temp are the same flags, and --logit-bias takes
// llama.cpp's TOKEN_ID+BIAS / TOKEN_ID-inf.
TEST_F(GenerateCli, LlamaCppAliasesAndLogitBias) {
  const std::string long_form = "generate --model " + q(model_) +
                                " --prompt Hello --max-tokens 10 --temperature 0 --seed 3 --threads 1 --json";
  const std::string short_form = "generate -m " + q(model_) + " -p Hello -n 10 --temp 0 -s 3 -t 1 --json";
  Output a = sh(long_form + " 2>/dev/null");
  Output b = sh(short_form + " 2>/dev/null");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  ASSERT_EQ(b.exit_code, 0) << b.output;
  const auto ja = nlohmann::json::parse(a.output), jb = nlohmann::json::parse(b.output);
  EXPECT_EQ(ja["tokens"], jb["tokens"]);
  const auto tokens = ja["tokens"].get<std::vector<int32_t>>();
  ASSERT_FALSE(tokens.empty());
  Output file_alias = sh("generate -m " + q(model_) + " -f " + q(rwkv_test::fixtures_dir() / "fixtures.json") +
                         " -n 2 --temp=0 2>&1");
  EXPECT_EQ(file_alias.exit_code, 0) << file_alias.output;

  // Banning the greedy first token changes it; a bias toward another token picks that one.
  const int32_t first = tokens[0];
  const int32_t other = first == 'z' ? 'y' : 'z';
  Output banned = sh(long_form + " --logit-bias " + std::to_string(first) + "-inf 2>/dev/null");
  ASSERT_EQ(banned.exit_code, 0) << banned.output;
  EXPECT_NE(nlohmann::json::parse(banned.output)["tokens"][0].get<int32_t>(), first);
  Output biased = sh(long_form + " --logit-bias " + std::to_string(other) + "+1000 2>/dev/null");
  ASSERT_EQ(biased.exit_code, 0) << biased.output;
  EXPECT_EQ(nlohmann::json::parse(biased.output)["tokens"][0].get<int32_t>(), other);
  Output neutral = sh(long_form + " --logit-bias " + std::to_string(other) + "+0 --logit-bias 5-0 2>/dev/null");
  EXPECT_EQ(nlohmann::json::parse(neutral.output)["tokens"], ja["tokens"]);

  for (const std::string bad : {"abc", "12", "12*3", "+3", "12+x", "12+inf", "12+nan", "99999999999+1"}) {
    Output o = sh(long_form + " --logit-bias '" + bad + "' 2>&1");
    EXPECT_EQ(o.exit_code, 2) << bad;
    EXPECT_THAT(o.output, HasSubstr("--logit-bias: '" + bad + "'")) << bad;
  }
  Output unknown = sh("generate -m " + q(model_) + " -q 2>&1");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.output, HasSubstr("unknown flag -q"));
  Output help = sh("generate --help");
  EXPECT_THAT(help.output, HasSubstr("-m, --model M"));
  EXPECT_THAT(help.output, HasSubstr("-n, --max-tokens N"));
  EXPECT_THAT(help.output, HasSubstr("--temp, --temperature T"));
}

// chat --state-in starts the conversation from a saved state.
TEST_F(GenerateCli, ChatStartsFromAStateFile) {
  const auto start = dir_ / "start.state";
  const auto saved = dir_ / "after.state";
  ASSERT_EQ(sh("generate -m " + q(model_) + " -p 'Some earlier text' -n 1 --temp 0 --state-out " + q(start) +
               " >/dev/null 2>&1").exit_code, 0);
  ChatTerminal chat({"--model", model_.string(), "--temperature", "0", "--max-tokens", "8", "--presence-penalty", "0",
                     "--frequency-penalty", "0", "--state-in", start.string()});
  ASSERT_TRUE(chat.started());
  ASSERT_TRUE(chat.wait_for("User: ", 1)) << chat.screen();
  chat.type("Hi\n");
  ASSERT_TRUE(chat.wait_for("User: ", 2)) << chat.screen();
  chat.type("/save " + saved.string() + "\n");
  ASSERT_TRUE(chat.wait_for("state saved")) << chat.screen();
  chat.type("\x04");
  EXPECT_EQ(chat.wait_exit(), 0) << chat.screen();

  auto model = rwkv::Model::load(model_.string());
  rwkv::Session expected(model, rwkv::load_tokenizer(rwkv::TokenizerKind::Bytes, ""));
  expected.set_initial_state(rwkv::load_state(start.string(), *model));
  expected.reset();
  rwkv::GenerateOptions o;
  o.sampler.temperature = 0;
  o.sampler.banned_tokens = {0};
  o.max_tokens = 8;
  o.stop = {"\n\n"};
  auto r = expected.generate("User: Hi\n\nAssistant:", o);
  if (r.reason != rwkv::StopReason::StopString) expected.feed_text("\n\n");
  EXPECT_EQ(rwkv::load_state(saved.string(), *model), expected.state());
  EXPECT_NE(rwkv::load_state(start.string(), *model), expected.state());

  Output missing = sh("chat -m " + q(model_) + " --state-in " + q(dir_ / "none.state") + " </dev/null 2>&1");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr("none.state"));
}

}  // namespace
