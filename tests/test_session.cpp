// Generation through Session: greedy continuations against the official ones,
// stop strings, cancellation, and states as files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "convert/to_native.hpp"
#include "pth_writer.hpp"
#include "rwkv/error.hpp"
#include "rwkv/session.hpp"
#include "rwkv/state_file.hpp"
#include "test_support.hpp"

namespace {

using ::testing::HasSubstr;

std::shared_ptr<const rwkv::Model> fixture_model(const rwkv_test::ScratchDir& dir, const std::string& name) {
  const std::string out = (dir / (name + ".rwkv")).string();
  rwkv::convert::convert_pth((rwkv_test::fixtures_dir() / (name + ".pth")).string(), out, {});
  return rwkv::Model::load(out);
}

std::shared_ptr<const rwkv::Tokenizer> bytes_tokenizer() { return rwkv::load_tokenizer(rwkv::TokenizerKind::Bytes, ""); }

rwkv::GenerateOptions greedy(int32_t max_tokens) {
  rwkv::GenerateOptions o;
  o.sampler.temperature = 0;
  o.max_tokens = max_tokens;
  return o;
}

class GreedyReference : public ::testing::TestWithParam<std::string> {};

// --temperature 0 continues case b exactly as the official code's argmax did.
TEST_P(GreedyReference, ReproducesTheOfficialGreedyContinuation) {
  RWKV_SKIP_WITHOUT_SHARED();
  const auto folder = *rwkv_test::shared_dir() / "reference" / "logits" / GetParam();
  std::ifstream in(folder / "manifest.json");
  const nlohmann::json m = nlohmann::json::parse(in);
  rwkv_test::ScratchDir dir;
  const std::string path = (dir / "m.rwkv").string();
  rwkv::convert::convert_pth((*rwkv_test::shared_dir() / m["model_pth"].get<std::string>()).string(), path, {});
  rwkv::Session session(rwkv::Model::load(path), bytes_tokenizer());
  std::string prompt;
  for (const auto& c : m["cases"]) {
    if (c["name"] == "b_english_64") {
      for (int t : c["tokens"]) prompt.push_back(static_cast<char>(t));
    }
  }
  const auto expected = m["greedy_after_b"].get<std::vector<int32_t>>();
  auto result = session.generate(prompt, greedy(static_cast<int32_t>(expected.size())));
  EXPECT_EQ(result.tokens, expected);
  EXPECT_EQ(result.reason, rwkv::StopReason::MaxTokens);
}

INSTANTIATE_TEST_SUITE_P(Shared, GreedyReference,
                         ::testing::Values("4v0-660K", "5v1-730K", "5v2-730K", "6v0-1m", "6v0-3m", "7v0-834K"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(Session, StopStringSpanningTokensStopsAtTheRightByteAndIsNotEmitted) {
  rwkv_test::ScratchDir dir;
  auto model = fixture_model(dir, "tiny-v7.0");
  rwkv::Session free_run(model, bytes_tokenizer());
  const std::string full = free_run.generate("Hello", greedy(60)).text;
  ASSERT_GE(full.size(), 30u);
  // A three-byte stop string (three tokens of the bytes tokenizer) from the middle.
  const std::string stop = full.substr(20, 3);
  const std::string expected = full.substr(0, full.find(stop));

  rwkv::Session session(model, bytes_tokenizer());
  rwkv::GenerateOptions o = greedy(60);
  o.stop = {"this never appears \x01", stop};
  std::string streamed;
  auto result = session.generate("Hello", o, [&](std::string_view piece) {
    streamed += piece;
    return true;
  });
  EXPECT_EQ(result.reason, rwkv::StopReason::StopString);
  EXPECT_EQ(result.text, expected);
  EXPECT_EQ(streamed, expected);
  EXPECT_EQ(streamed.find(stop), std::string::npos);
}

TEST(Session, CallbackCancels) {
  rwkv_test::ScratchDir dir;
  rwkv::Session session(fixture_model(dir, "tiny-v5.2"), bytes_tokenizer());
  int calls = 0;
  auto result = session.generate("Hi", greedy(50), [&](std::string_view) { return ++calls < 3; });
  EXPECT_EQ(result.reason, rwkv::StopReason::Cancelled);
  EXPECT_EQ(calls, 3);
  EXPECT_LT(result.tokens.size(), 50u);
}

TEST(Session, SameSeedSameTextAndTheStateCarriesOver) {
  rwkv_test::ScratchDir dir;
  auto model = fixture_model(dir, "tiny-v6.0");
  rwkv::GenerateOptions o;
  o.sampler.seed = 7;
  o.sampler.top_p = 0.9f;
  o.max_tokens = 20;
  rwkv::Session a(model, bytes_tokenizer()), b(model, bytes_tokenizer());
  EXPECT_EQ(a.generate("abc", o).tokens, b.generate("abc", o).tokens);
  // The second turn continues from the first one's state, prompt and reply included.
  rwkv::Session fresh(model, bytes_tokenizer());
  const auto second = a.generate("xyz", greedy(10)).tokens;
  EXPECT_NE(second, fresh.generate("xyz", greedy(10)).tokens);
}

TEST(Session, BadInput) {
  rwkv_test::ScratchDir dir;
  rwkv::Session session(fixture_model(dir, "tiny-v4"), bytes_tokenizer());
  EXPECT_THROW(session.generate("", greedy(5)), rwkv::Error);
  rwkv::GenerateOptions o = greedy(5);
  o.stop = {""};
  EXPECT_THROW(session.generate("a", o), rwkv::Error);
  const std::vector<int32_t> bad = {1, 300};
  EXPECT_THROW(session.feed(bad), rwkv::Error);
}

TEST(StateFile, RoundTripGivesIdenticalLogits) {
  rwkv_test::ScratchDir dir;
  auto model = fixture_model(dir, "tiny-v7.0");
  rwkv::State state = model->new_state();
  for (int32_t t : {72, 101, 108, 108, 111}) model->advance(t, state);
  const auto path = (dir / "s.state").string();
  rwkv::save_state(path, *model, state);
  rwkv::State loaded = rwkv::load_state(path, *model);
  EXPECT_EQ(loaded, state);
  std::vector<float> a(256), b(256);
  model->forward(33, state, a);
  model->forward(33, loaded, b);
  EXPECT_EQ(a, b);
}

TEST(StateFile, RefusesAnotherModelAndBrokenFiles) {
  rwkv_test::ScratchDir dir;
  auto v7 = fixture_model(dir, "tiny-v7.0");
  auto v5 = fixture_model(dir, "tiny-v5.2");
  const auto path = (dir / "s.state").string();
  rwkv::save_state(path, *v7, v7->new_state());
  try {
    rwkv::load_state(path, *v5);
    ADD_FAILURE() << "loaded a v7 state into a v5.2 model";
  } catch (const rwkv::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("s.state"));
    EXPECT_THAT(e.what(), HasSubstr("another model"));
  }
  const std::string bytes = rwkv_test::read_file(path);
  rwkv_test::write_file(dir / "cut.state", bytes.substr(0, bytes.size() - 4));
  EXPECT_THROW(rwkv::load_state((dir / "cut.state").string(), *v7), rwkv::Error);
  std::string flipped = bytes;
  flipped[bytes.size() - 2] ^= 0x40;
  rwkv_test::write_file(dir / "flip.state", flipped);
  EXPECT_THROW(rwkv::load_state((dir / "flip.state").string(), *v7), rwkv::Error);
  EXPECT_THROW(rwkv::load_state((dir / "absent.state").string(), *v7), rwkv::Error);
}

TEST(StateFile, StateTunedCheckpointIsTransposedIntoTheState) {
  rwkv_test::ScratchDir dir;
  auto model = fixture_model(dir, "tiny-v7.0");
  const auto& info = model->info();
  const int64_t H = info.n_head, N = info.head_size;
  rwkv_test::CheckpointSpec spec;
  for (uint32_t layer = 0; layer < info.n_layer; ++layer) {
    std::vector<float> values(H * N * N);
    for (size_t i = 0; i < values.size(); ++i) values[i] = float(layer * 10000 + i);
    const std::string key = std::to_string(layer);
    spec.storages[key] = {"FloatStorage", int64_t(values.size()), rwkv_test::float_bytes(values)};
    spec.tensors.push_back({"blocks." + key + ".att.time_state", key, {H, N, N}, {N * N, N, 1}, 0});
  }
  rwkv_test::write_file(dir / "tuned.pth", rwkv_test::make_checkpoint(spec));
  rwkv::State s = rwkv::load_tuned_state((dir / "tuned.pth").string(), *model);
  // Layer 1, head 1, state row 2, column 5 comes from time_state[1][5][2].
  const float* kv = s.layer(1).data() + info.n_embd;
  EXPECT_EQ(kv[(1 * N + 2) * N + 5], float(10000 + (1 * N + 5) * N + 2));

  spec.tensors.pop_back();
  rwkv_test::write_file(dir / "short.pth", rwkv_test::make_checkpoint(spec));
  EXPECT_THROW(rwkv::load_tuned_state((dir / "short.pth").string(), *model), rwkv::Error);
}

}  // namespace
