// The C API (include/rwkv.h): results equal the C++ API's, every error is a code plus
// a message naming the argument or file, and no exception crosses the boundary.
#include "rwkv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "rwkv/model.hpp"
#include "rwkv/state_file.hpp"
#include "test_support.hpp"

namespace {

using ::testing::HasSubstr;

// A native f32 model of the committed tiny RWKV-7 checkpoint, converted once.
class CApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     ("rwkv-test-capi-" + std::to_string(::getpid())));
    std::filesystem::create_directories(*dir_);
    const std::string pth = (rwkv_test::fixtures_dir() / "tiny-v7.0.pth").string();
    ASSERT_EQ(rwkv_convert(pth.c_str(), model_path().c_str(), "f32"), 0) << rwkv_last_error();
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string model_path() { return (*dir_ / "tiny-v7.rwkv").string(); }

  void SetUp() override {
    model_ = rwkv_model_load(model_path().c_str());
    ASSERT_NE(model_, nullptr) << rwkv_last_error();
    n_vocab_ = rwkv_model_n_vocab(model_);
  }
  void TearDown() override { rwkv_model_free(model_); }

  static std::filesystem::path* dir_;
  rwkv_model* model_ = nullptr;
  int32_t n_vocab_ = 0;
};
std::filesystem::path* CApi::dir_ = nullptr;

const std::vector<int32_t> kPrompt = {10, 200, 3, 45, 99, 0, 7, 120};

TEST(CApiLibrary, VersionsAgreeWithTheHeader) {
  EXPECT_EQ(rwkv_api_version(), RWKV_API_VERSION);
  EXPECT_STREQ(rwkv_version(), RWKV_VERSION_STRING);
}

TEST_F(CApi, ModelInfoMatchesTheCxxModel) {
  auto cxx = rwkv::Model::load(model_path());
  EXPECT_EQ(n_vocab_, int32_t(cxx->info().n_vocab));
  EXPECT_EQ(rwkv_model_n_layer(model_), int32_t(cxx->info().n_layer));
  EXPECT_EQ(rwkv_model_n_embd(model_), int32_t(cxx->info().n_embd));
  EXPECT_EQ(rwkv_model_n_head(model_), int32_t(cxx->info().n_head));
  EXPECT_EQ(rwkv_model_head_size(model_), int32_t(cxx->info().head_size));
  EXPECT_STREQ(rwkv_model_arch(model_), "7.0");
  EXPECT_STREQ(rwkv_model_tokenizer_kind(model_), rwkv::tokenizer_kind_name(cxx->info().tokenizer));
  EXPECT_EQ(rwkv_model_state_size(model_), cxx->new_state().data.size());
}

TEST_F(CApi, EvalEqualsTheCxxApiBitForBit) {
  auto cxx = rwkv::Model::load(model_path());
  rwkv::State expected_state = cxx->new_state();
  std::vector<float> expected(size_t(n_vocab_) * kPrompt.size());
  cxx->forward_sequence(kPrompt, expected_state, expected);

  rwkv_state* state = rwkv_state_new(model_);
  std::vector<float> all(expected.size());
  ASSERT_EQ(rwkv_eval_all(model_, state, kPrompt.data(), kPrompt.size(), all.data()), 0) << rwkv_last_error();
  EXPECT_EQ(all, expected);
  ASSERT_EQ(rwkv_state_size(state), expected_state.data.size());
  EXPECT_EQ(std::vector<float>(rwkv_state_data(state), rwkv_state_data(state) + rwkv_state_size(state)),
            expected_state.data);

  // Only the last token's logits: the same as the C++ call asking for those.
  rwkv::State expected_again = cxx->new_state();
  std::vector<float> expected_last(n_vocab_);
  cxx->forward_sequence(kPrompt, expected_again, expected_last);
  rwkv_state* again = rwkv_state_new(model_);
  std::vector<float> last(n_vocab_);
  ASSERT_EQ(rwkv_eval(model_, again, kPrompt.data(), kPrompt.size(), last.data()), 0);
  EXPECT_EQ(last, expected_last);
  rwkv_state_free(again);
  rwkv_state_free(state);
}

TEST_F(CApi, StatesCopyResetAssignAndRoundTrip) {
  rwkv_state* a = rwkv_state_new(model_);
  rwkv_state* fresh = rwkv_state_new(model_);
  ASSERT_EQ(rwkv_eval(model_, a, kPrompt.data(), 4, nullptr), 0);
  rwkv_state* b = rwkv_state_copy(a);
  ASSERT_NE(b, nullptr);

  // The copy continues exactly as the original does.
  std::vector<float> la(n_vocab_), lb(n_vocab_);
  ASSERT_EQ(rwkv_eval(model_, a, kPrompt.data() + 4, 4, la.data()), 0);
  ASSERT_EQ(rwkv_eval(model_, b, kPrompt.data() + 4, 4, lb.data()), 0);
  EXPECT_EQ(la, lb);

  // Bytes and files give back the same floats.
  const int64_t n = rwkv_state_to_bytes(a, nullptr, 0);
  ASSERT_GT(n, 0) << rwkv_last_error();
  std::string bytes(size_t(n), '\0');
  EXPECT_EQ(rwkv_state_to_bytes(a, bytes.data(), bytes.size() - 1), n);  // too small: nothing written
  EXPECT_EQ(bytes, std::string(size_t(n), '\0'));
  ASSERT_EQ(rwkv_state_to_bytes(a, bytes.data(), bytes.size()), n);
  rwkv_state* from_bytes = rwkv_state_from_bytes(model_, bytes.data(), bytes.size());
  ASSERT_NE(from_bytes, nullptr) << rwkv_last_error();
  const std::vector<float> a_floats(rwkv_state_data(a), rwkv_state_data(a) + rwkv_state_size(a));
  EXPECT_EQ(std::vector<float>(rwkv_state_data(from_bytes), rwkv_state_data(from_bytes) + rwkv_state_size(a)),
            a_floats);

  rwkv_test::ScratchDir dir;
  const std::string file = (dir / "a.state").string();
  ASSERT_EQ(rwkv_state_save(a, file.c_str()), 0) << rwkv_last_error();
  EXPECT_EQ(rwkv_test::read_file(file), bytes);  // one format for files and bytes
  rwkv_state* loaded = rwkv_state_load(model_, file.c_str());
  ASSERT_NE(loaded, nullptr) << rwkv_last_error();
  EXPECT_EQ(std::vector<float>(rwkv_state_data(loaded), rwkv_state_data(loaded) + rwkv_state_size(loaded)), a_floats);

  // A damaged copy is refused with the reason.
  bytes[bytes.size() - 1] ^= 0x40;
  EXPECT_EQ(rwkv_state_from_bytes(model_, bytes.data(), bytes.size()), nullptr);
  EXPECT_THAT(rwkv_last_error(), HasSubstr("checksum"));
  EXPECT_EQ(rwkv_state_from_bytes(model_, bytes.data(), 10), nullptr);
  EXPECT_THAT(rwkv_last_error(), HasSubstr("not an rwkv state"));

  ASSERT_EQ(rwkv_state_assign(b, fresh), 0);
  ASSERT_EQ(rwkv_state_reset(a), 0);
  const std::vector<float> fresh_floats(rwkv_state_data(fresh), rwkv_state_data(fresh) + rwkv_state_size(fresh));
  EXPECT_EQ(std::vector<float>(rwkv_state_data(a), rwkv_state_data(a) + rwkv_state_size(a)), fresh_floats);
  EXPECT_EQ(std::vector<float>(rwkv_state_data(b), rwkv_state_data(b) + rwkv_state_size(b)), fresh_floats);

  for (rwkv_state* s : {a, b, fresh, from_bytes, loaded}) rwkv_state_free(s);
}

TEST_F(CApi, AStateKeepsItsModelAlive) {
  rwkv_model* model = rwkv_model_load(model_path().c_str());
  rwkv_state* state = rwkv_state_new(model);
  rwkv_model_free(model);
  rwkv_state* copy = rwkv_state_copy(state);
  EXPECT_EQ(rwkv_state_reset(copy), 0);
  EXPECT_EQ(rwkv_state_save(copy, "/nonexistent-dir/x.state"), -1);
  EXPECT_THAT(rwkv_last_error(), HasSubstr("/nonexistent-dir/x.state"));
  rwkv_state_free(state);
  rwkv_state_free(copy);
}

TEST_F(CApi, BatchEqualsEachSequenceAlone) {
  // Three sequences: a prompt chunk, and two taking one token after different pasts.
  std::vector<rwkv_state*> states, alone;
  for (int i = 0; i < 3; ++i) {
    states.push_back(rwkv_state_new(model_));
    ASSERT_EQ(rwkv_eval(model_, states.back(), kPrompt.data() + i, 2, nullptr), 0);
    alone.push_back(rwkv_state_copy(states.back()));
  }
  const std::vector<int32_t> chunk = {5, 6, 7, 8, 9};
  const int32_t one = 42, other = 17;
  std::vector<float> l0(chunk.size() * n_vocab_), l1(n_vocab_), l2(n_vocab_);
  rwkv_batch_item items[3] = {
      {chunk.data(), chunk.size(), states[0], l0.data(), l0.size()},
      {&one, 1, states[1], l1.data(), l1.size()},
      {&other, 1, states[2], nullptr, 0},
  };
  ASSERT_EQ(rwkv_eval_batch(model_, items, 3), 0) << rwkv_last_error();

  std::vector<float> e0(l0.size()), e1(n_vocab_);
  ASSERT_EQ(rwkv_eval_all(model_, alone[0], chunk.data(), chunk.size(), e0.data()), 0);
  ASSERT_EQ(rwkv_eval(model_, alone[1], &one, 1, e1.data()), 0);
  ASSERT_EQ(rwkv_eval(model_, alone[2], &other, 1, nullptr), 0);
  for (size_t i = 0; i < e0.size(); ++i) ASSERT_NEAR(l0[i], e0[i], 1e-5) << i;
  for (int i = 0; i < n_vocab_; ++i) ASSERT_NEAR(l1[i], e1[i], 1e-5) << i;
  for (int s = 0; s < 3; ++s) {
    for (size_t i = 0; i < rwkv_state_size(alone[s]); ++i) {
      ASSERT_NEAR(rwkv_state_data(states[s])[i], rwkv_state_data(alone[s])[i], 1e-5) << s << " " << i;
    }
  }

  // A bad item is refused before any state changes.
  const std::vector<float> before(rwkv_state_data(states[0]), rwkv_state_data(states[0]) + rwkv_state_size(states[0]));
  const int32_t bad = n_vocab_;
  rwkv_batch_item bad_items[2] = {{&one, 1, states[0], nullptr, 0}, {&bad, 1, states[1], nullptr, 0}};
  EXPECT_EQ(rwkv_eval_batch(model_, bad_items, 2), -1);
  EXPECT_THAT(rwkv_last_error(), HasSubstr(std::to_string(bad)));
  EXPECT_EQ(std::vector<float>(rwkv_state_data(states[0]), rwkv_state_data(states[0]) + before.size()), before);
  rwkv_batch_item shared[2] = {{&one, 1, states[0], nullptr, 0}, {&one, 1, states[0], nullptr, 0}};
  EXPECT_EQ(rwkv_eval_batch(model_, shared, 2), -1);
  rwkv_batch_item wrong_logits = {&one, 1, states[0], l1.data(), 3};
  EXPECT_EQ(rwkv_eval_batch(model_, &wrong_logits, 1), -1);
  rwkv_batch_item null_logits = {&one, 1, states[0], nullptr, 3};
  EXPECT_EQ(rwkv_eval_batch(model_, &null_logits, 1), -1);
  EXPECT_THAT(rwkv_last_error(), HasSubstr("items[0].logits is NULL"));
  EXPECT_EQ(rwkv_eval_batch(model_, nullptr, 0), 0);  // nothing to do
  for (auto* s : states) rwkv_state_free(s);
  for (auto* s : alone) rwkv_state_free(s);
}

TEST(CApiTokenizer, BytesEncodeDecodeAndStream) {
  rwkv_tokenizer* t = rwkv_tokenizer_load("bytes", nullptr);
  ASSERT_NE(t, nullptr) << rwkv_last_error();
  EXPECT_EQ(rwkv_tokenizer_vocab_size(t), 256);
  EXPECT_STREQ(rwkv_tokenizer_kind(t), "bytes");
  const std::string text = "h\xc3\xa9!";
  std::vector<int32_t> ids(2, -7);
  EXPECT_EQ(rwkv_tokenize(t, text.data(), text.size(), ids.data(), ids.size()), 4);  // too small
  EXPECT_EQ(ids, std::vector<int32_t>(2, -7));
  ids.resize(4);
  ASSERT_EQ(rwkv_tokenize(t, text.data(), text.size(), ids.data(), ids.size()), 4);
  EXPECT_EQ(ids, (std::vector<int32_t>{'h', 0xc3, 0xa9, '!'}));
  std::string back(4, '\0');
  ASSERT_EQ(rwkv_detokenize(t, ids.data(), ids.size(), back.data(), back.size()), 4);
  EXPECT_EQ(back, text);

  // The stream holds back the first byte of é until the second arrives.
  rwkv_decoder* d = rwkv_decoder_new(t);
  rwkv_tokenizer_free(t);  // the decoder keeps it alive
  std::string streamed;
  for (int32_t id : ids) {
    size_t n = 99;
    const char* piece = rwkv_decoder_push(d, id, &n);
    ASSERT_NE(piece, nullptr);
    if (id == 0xc3) {
      EXPECT_EQ(n, 0u);
    }
    streamed.append(piece, n);
  }
  size_t n = 99;
  rwkv_decoder_push(d, 0xe2, &n);  // the start of a three-byte character, never finished
  EXPECT_EQ(n, 0u);
  const char* rest = rwkv_decoder_flush(d, &n);
  streamed.append(rest, n);
  EXPECT_EQ(streamed, text + "\xef\xbf\xbd");
  rwkv_decoder_free(d);
}

TEST(CApiTokenizer, WorldFromTheSharedVocabulary) {
  const auto shared = rwkv_test::shared_dir();
  if (!shared) GTEST_SKIP() << rwkv_test::shared_dir_missing_reason();
  const std::string vocab = (*shared / "tokenizers" / "rwkv_vocab_v20230424.txt").string();
  rwkv_tokenizer* t = rwkv_tokenizer_load("world", vocab.c_str());
  ASSERT_NE(t, nullptr) << rwkv_last_error();
  const std::string text = "Hello, world!";
  std::vector<int32_t> ids(16);
  const int64_t n = rwkv_tokenize(t, text.data(), text.size(), ids.data(), ids.size());
  ids.resize(size_t(n));
  EXPECT_EQ(ids, (std::vector<int32_t>{33155, 45, 40213, 34}));
  EXPECT_STREQ(rwkv_tokenizer_kind(t), "world");
  EXPECT_EQ(rwkv_tokenizer_kind(nullptr), nullptr);
  rwkv_tokenizer_free(t);
}

TEST_F(CApi, TokenizerForTheModel) {
  rwkv_tokenizer* t = rwkv_tokenizer_for_model(model_, nullptr);
  if (std::string(rwkv_model_tokenizer_kind(model_)) == "bytes") {
    ASSERT_NE(t, nullptr) << rwkv_last_error();
    EXPECT_EQ(rwkv_tokenizer_vocab_size(t), 256);
  } else if (t == nullptr) {
    EXPECT_THAT(rwkv_last_error(), HasSubstr(rwkv::default_vocab_filename(rwkv::TokenizerKind::World)));
  }
  rwkv_tokenizer_free(t);
}

TEST(CApiSampler, GreedyBiasBanAndErrors) {
  rwkv_sampler_params p = rwkv_sampler_default_params();
  EXPECT_EQ(p.temperature, 1.0f);
  EXPECT_EQ(p.penalty_decay, 0.996f);
  p.temperature = 0;
  const int32_t banned[] = {3};
  const int32_t bias_ids[] = {1};
  const float bias_values[] = {10.0f};
  p.banned_ids = banned;
  p.n_banned = 1;
  rwkv_sampler* s = rwkv_sampler_new(&p, 5);
  ASSERT_NE(s, nullptr) << rwkv_last_error();
  float logits[5] = {0, 1, 2, 9, 4};
  EXPECT_EQ(rwkv_sampler_sample(s, logits), 4);  // 3 is banned
  rwkv_sampler_free(s);

  p.bias_ids = bias_ids;
  p.bias_values = bias_values;
  p.n_bias = 1;
  s = rwkv_sampler_new(&p, 5);
  float logits2[5] = {0, 1, 2, 9, 4};
  EXPECT_EQ(rwkv_sampler_sample(s, logits2), 1);  // 1 + 10 beats 4
  EXPECT_EQ(rwkv_sampler_accept(s, 1, 0), 0);
  EXPECT_EQ(rwkv_sampler_reset(s), 0);
  EXPECT_EQ(rwkv_sampler_sample(s, nullptr), -1);
  EXPECT_THAT(rwkv_last_error(), HasSubstr("logits is NULL"));
  rwkv_sampler_free(s);

  p.order = 7;
  EXPECT_EQ(rwkv_sampler_new(&p, 5), nullptr);
  EXPECT_THAT(rwkv_last_error(), HasSubstr("params.order"));
  p.order = RWKV_SAMPLING_OFFICIAL;
  p.bias_values = nullptr;
  EXPECT_EQ(rwkv_sampler_new(&p, 5), nullptr);
  EXPECT_THAT(rwkv_last_error(), HasSubstr("n_bias"));
  p = rwkv_sampler_default_params();
  p.top_p = 2;
  EXPECT_EQ(rwkv_sampler_new(&p, 5), nullptr);
  EXPECT_THAT(rwkv_last_error(), HasSubstr("top-p"));
  EXPECT_EQ(rwkv_sampler_new(&p, 0), nullptr);
  EXPECT_THAT(rwkv_last_error(), HasSubstr("n_vocab"));
}

// Every entry point given NULL or nonsense returns its error value with a message
// naming the argument, and nothing escapes as a C++ exception (which would end the
// test program).
TEST_F(CApi, BadArgumentsGiveErrorsNotExceptions) {
  auto expect_error = [](const std::string& fragment) {
    EXPECT_THAT(rwkv_last_error(), HasSubstr(fragment));
  };
  EXPECT_EQ(rwkv_model_load(nullptr), nullptr);
  expect_error("rwkv_model_load: path is NULL");
  EXPECT_EQ(rwkv_model_load("/nonexistent/model.rwkv"), nullptr);
  expect_error("/nonexistent/model.rwkv");
  const std::string pth = (rwkv_test::fixtures_dir() / "tiny-v7.0.pth").string();
  EXPECT_EQ(rwkv_model_n_vocab(nullptr), -1);
  expect_error("rwkv_model_n_vocab: model is NULL");
  EXPECT_EQ(rwkv_model_arch(nullptr), nullptr);
  EXPECT_EQ(rwkv_model_state_size(nullptr), 0u);
  EXPECT_EQ(rwkv_state_new(nullptr), nullptr);
  EXPECT_EQ(rwkv_state_copy(nullptr), nullptr);
  EXPECT_EQ(rwkv_state_reset(nullptr), -1);
  EXPECT_EQ(rwkv_state_data(nullptr), nullptr);
  EXPECT_EQ(rwkv_state_load(model_, nullptr), nullptr);
  expect_error("path is NULL");
  EXPECT_EQ(rwkv_state_load(model_, "/nonexistent/s.state"), nullptr);
  expect_error("/nonexistent/s.state");
  EXPECT_EQ(rwkv_state_load_tuned(model_, pth.c_str()), nullptr);  // a model, not a tuned state
  expect_error(pth);
  EXPECT_EQ(rwkv_state_to_bytes(nullptr, nullptr, 0), -1);
  EXPECT_EQ(rwkv_state_from_bytes(model_, nullptr, 5), nullptr);
  expect_error("bytes is NULL");

  rwkv_state* state = rwkv_state_new(model_);
  std::vector<float> logits(n_vocab_);
  const int32_t token = 1, bad = n_vocab_;
  EXPECT_EQ(rwkv_eval(nullptr, state, &token, 1, nullptr), -1);
  expect_error("rwkv_eval: model is NULL");
  EXPECT_EQ(rwkv_eval(model_, nullptr, &token, 1, nullptr), -1);
  expect_error("state is NULL");
  EXPECT_EQ(rwkv_eval(model_, state, nullptr, 1, nullptr), -1);
  expect_error("tokens is NULL");
  EXPECT_EQ(rwkv_eval(model_, state, &token, 0, nullptr), -1);
  expect_error("n is 0");
  EXPECT_EQ(rwkv_eval(model_, state, &bad, 1, logits.data()), -1);
  expect_error(std::to_string(bad).c_str());
  EXPECT_EQ(rwkv_eval_batch(model_, nullptr, 2), -1);
  expect_error("items is NULL");

  // A state of another model's shape.
  const std::string v6 = (rwkv_test::fixtures_dir() / "tiny-v6.0.pth").string();
  rwkv_test::ScratchDir dir;
  const std::string v6_native = (dir / "v6.rwkv").string();
  ASSERT_EQ(rwkv_convert(v6.c_str(), v6_native.c_str(), nullptr), 0) << rwkv_last_error();
  rwkv_model* other = rwkv_model_load(v6_native.c_str());
  ASSERT_NE(other, nullptr) << rwkv_last_error();
  rwkv_state* foreign = rwkv_state_new(other);
  EXPECT_EQ(rwkv_eval(model_, foreign, &token, 1, nullptr), -1);
  EXPECT_NE(std::string(rwkv_last_error()), "");
  EXPECT_EQ(rwkv_state_assign(state, foreign), -1);
  expect_error("another shape");
  rwkv_state_free(foreign);
  rwkv_model_free(other);

  EXPECT_EQ(rwkv_convert(nullptr, "x", nullptr), -1);
  expect_error("input_path is NULL");
  EXPECT_EQ(rwkv_convert(pth.c_str(), (dir / "x.rwkv").string().c_str(), "q7"), -1);
  expect_error("q7");
  EXPECT_EQ(rwkv_quantize(model_path().c_str(), (dir / "y.rwkv").string().c_str(), nullptr), -1);
  expect_error("type is NULL");
  EXPECT_FALSE(std::filesystem::exists(dir / "x.rwkv"));

  EXPECT_EQ(rwkv_tokenizer_load(nullptr, nullptr), nullptr);
  expect_error("kind is NULL");
  EXPECT_EQ(rwkv_tokenizer_load("klingon", nullptr), nullptr);
  expect_error("klingon");
  EXPECT_EQ(rwkv_tokenizer_load("world", nullptr), nullptr);
  expect_error("vocab_path");
  EXPECT_EQ(rwkv_tokenizer_load("world", "/nonexistent/vocab.txt"), nullptr);
  expect_error("/nonexistent/vocab.txt");
  EXPECT_EQ(rwkv_tokenize(nullptr, "a", 1, nullptr, 0), -1);
  rwkv_tokenizer* bytes = rwkv_tokenizer_load("bytes", nullptr);
  EXPECT_EQ(rwkv_tokenize(bytes, nullptr, 3, nullptr, 0), -1);
  expect_error("text is NULL");
  EXPECT_EQ(rwkv_tokenize(bytes, nullptr, 0, nullptr, 0), 0);
  const int32_t out_of_range = 300;
  EXPECT_EQ(rwkv_detokenize(bytes, &out_of_range, 1, nullptr, 0), -1);
  expect_error("300");
  rwkv_decoder* d = rwkv_decoder_new(bytes);
  EXPECT_EQ(rwkv_decoder_push(d, -1, nullptr), nullptr);
  expect_error("-1");
  EXPECT_EQ(rwkv_decoder_push(nullptr, 1, nullptr), nullptr);
  rwkv_decoder_free(d);
  rwkv_tokenizer_free(bytes);
  EXPECT_EQ(rwkv_sampler_new(nullptr, 5), nullptr);
  expect_error("params is NULL");
  EXPECT_EQ(rwkv_sampler_accept(nullptr, 1, 0), -1);

  EXPECT_EQ(rwkv_set_threads(-2), -1);
  expect_error("n_threads is -2");
  const int32_t threads = rwkv_get_threads();
  EXPECT_GT(threads, 0);
  EXPECT_EQ(rwkv_set_threads(threads), 0);  // the count in use may be asked for again
  EXPECT_EQ(rwkv_set_threads(threads + 1), -1);
  expect_error("already");

  // Every *_free takes NULL.
  rwkv_model_free(nullptr);
  rwkv_state_free(nullptr);
  rwkv_tokenizer_free(nullptr);
  rwkv_decoder_free(nullptr);
  rwkv_sampler_free(nullptr);
  rwkv_state_free(state);
}

TEST(CApiLibrary, ErrorsArePerThread) {
  EXPECT_EQ(rwkv_model_load(nullptr), nullptr);
  const std::string mine = rwkv_last_error();
  std::string theirs = "unset";
  std::thread([&] { theirs = rwkv_last_error(); }).join();
  EXPECT_EQ(theirs, "");
  std::thread([] { rwkv_state_new(nullptr); }).join();
  EXPECT_EQ(rwkv_last_error(), mine);
}

TEST(CApiLibrary, DefaultModelPathFollowsTheEnvironment) {
  const char* saved = std::getenv("RWKV_DEFAULT_MODEL");
  const std::string previous = saved ? saved : "";
  ::setenv("RWKV_DEFAULT_MODEL", RWKV_DEFAULT_MODEL_PATH, 1);
  const char* path = rwkv_default_model_path();
  ASSERT_NE(path, nullptr) << rwkv_last_error();
  EXPECT_STREQ(path, RWKV_DEFAULT_MODEL_PATH);
  if (saved) {
    ::setenv("RWKV_DEFAULT_MODEL", previous.c_str(), 1);
  } else {
    ::unsetenv("RWKV_DEFAULT_MODEL");
  }
}

}  // namespace
