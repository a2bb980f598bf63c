// What the tools use from the public headers, called directly: converting and
// re-quantizing (the "auto" types, errors naming the option), the model's files (its
// tokenizer, the default model), the thread count, the machine probes, the random
// checkpoint presets and the input helpers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rwkv/convert.hpp"
#include "rwkv/error.hpp"
#include "rwkv/io.hpp"
#include "rwkv/machine.hpp"
#include "rwkv/model.hpp"
#include "rwkv/random_checkpoint.hpp"
#include "rwkv/threads.hpp"
#include "test_support.hpp"

namespace {

using ::testing::HasSubstr;

std::string fixture(const std::string& name) { return (rwkv_test::fixtures_dir() / name).string(); }

// The stored type of each 2-D tensor that convert and quantize choose the type of.
std::map<std::string, std::string> matrix_types(const std::string& path) {
  std::map<std::string, std::string> out;
  for (const rwkv::TensorInfo& t : rwkv::Model::load(path)->tensors()) {
    if (t.name == "emb.weight" || t.name == "head.weight" || t.name == "blocks.0.ffn.key.weight") out[t.name] = t.dtype;
  }
  return out;
}

// The option named by the ConvertOptionError that f() throws, and its message.
template <typename F>
std::pair<std::string, std::string> option_error_of(F&& f) {
  try {
    f();
  } catch (const rwkv::ConvertOptionError& e) {
    return {e.option(), e.what()};
  }
  return {"(no option error)", ""};
}

// Sets an environment variable for the scope, then puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(ConvertApi, WeightTypeNames) {
  EXPECT_EQ(rwkv::weight_type_names(), (std::vector<std::string>{"f32", "f16", "bf16", "q8_0", "q4_s"}));
}

TEST(ConvertApi, AutoTypesAndDocumentedDefaults) {
  rwkv_test::ScratchDir dir;
  const std::string f32 = (dir / "auto.rwkv").string(), q4 = (dir / "q4.rwkv").string();
  size_t last_done = 0, last_total = 0;
  rwkv::ConvertOptions options;
  options.progress = [&](size_t done, size_t total) {
    last_done = done;
    last_total = total;
  };
  const rwkv::ConvertReport report = rwkv::convert_model(fixture("tiny-v7.0.pth"), f32, options);
  EXPECT_EQ(report.source_format, "pth");
  EXPECT_EQ(report.info.arch, rwkv::Arch::V7_0);
  EXPECT_EQ(report.weight_types, "matrices f32, embedding f32, head f32");  // a .pth: f32
  EXPECT_GT(last_total, 0u);
  EXPECT_EQ(last_done, last_total);
  using Types = std::map<std::string, std::string>;
  EXPECT_EQ(matrix_types(f32),
            (Types{{"emb.weight", "f32"}, {"head.weight", "f32"}, {"blocks.0.ffn.key.weight", "f32"}}));

  options.type = "q4_s";
  EXPECT_EQ(rwkv::convert_model(fixture("tiny-v7.0.pth"), q4, options).weight_types,
            "matrices q4_s, embedding f16, head q8_0");
  EXPECT_EQ(matrix_types(q4),
            (Types{{"emb.weight", "f16"}, {"head.weight", "q8_0"}, {"blocks.0.ffn.key.weight", "q4_s"}}));

  // "auto" with an embedding type of its own.
  rwkv::ConvertOptions auto_options;
  auto_options.type = "auto";
  auto_options.embedding_type = "bf16";
  EXPECT_EQ(rwkv::convert_model(fixture("tiny-v7.0.pth"), (dir / "e.rwkv").string(), auto_options).weight_types,
            "matrices f32, embedding bf16, head f32");
}

TEST(ConvertApi, OtherFormatsKeepWhatTheyHold) {
  rwkv_test::ScratchDir dir;
  const rwkv::ConvertReport report =
      rwkv::convert_model(fixture("tiny-v6.0.F16.gguf"), (dir / "m.rwkv").string(), {});
  EXPECT_EQ(report.source_format, "gguf");
  EXPECT_THAT(report.weight_types, HasSubstr("matrices f16"));
}

TEST(ConvertApi, ErrorsNameTheOption) {
  rwkv_test::ScratchDir dir;
  const std::string in = fixture("tiny-v7.0.pth"), out = (dir / "m.rwkv").string();
  rwkv::ConvertOptions options;
  options.type = "q3";
  auto [option, message] = option_error_of([&] { rwkv::convert_model(in, out, options); });
  EXPECT_EQ(option, "type");
  EXPECT_EQ(message, "type: unknown weight type 'q3': expected f32, f16, bf16, q8_0 or q4_s");

  options.type = "f16";
  options.head_type = "q9";
  EXPECT_EQ(option_error_of([&] { rwkv::convert_model(in, out, options); }).first, "head_type");
  options.head_type = "";
  options.embedding_type = "x";
  EXPECT_EQ(option_error_of([&] { rwkv::convert_model(in, out, options); }).first, "embedding_type");
  options.embedding_type = "";
  options.tokenizer = "gpt2";
  std::tie(option, message) = option_error_of([&] { rwkv::convert_model(in, out, options); });
  EXPECT_EQ(option, "tokenizer");
  EXPECT_THAT(message, HasSubstr("unknown tokenizer 'gpt2'"));
  EXPECT_FALSE(std::filesystem::exists(out));

  // The input is opened first: an unreadable file is reported before the options.
  try {
    rwkv::convert_model((dir / "missing.pth").string(), out, options);
    FAIL() << "no error";
  } catch (const rwkv::ConvertOptionError& e) {
    FAIL() << e.what();
  } catch (const rwkv::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing.pth"));
  }
}

TEST(ConvertApi, QuantizeNeedsATypeAndRefusesRoundingTwice) {
  rwkv_test::ScratchDir dir;
  const std::string f32 = (dir / "f32.rwkv").string(), q8 = (dir / "q8.rwkv").string(),
                    q4 = (dir / "q4.rwkv").string();
  rwkv::convert_model(fixture("tiny-v7.0.pth"), f32, {});
  EXPECT_EQ(option_error_of([&] { rwkv::quantize_model(f32, q8, {}); }).first, "type");
  rwkv::ConvertOptions options;
  options.type = "auto";  // only convert_model infers the type
  EXPECT_EQ(option_error_of([&] { rwkv::quantize_model(f32, q8, options); }).first, "type");

  options.type = "q8_0";
  const rwkv::ConvertReport report = rwkv::quantize_model(f32, q8, options);
  EXPECT_EQ(report.source_format, "native");
  EXPECT_EQ(report.weight_types, "matrices q8_0, embedding f16, head q8_0");
  EXPECT_GT(report.converted_tensors, 0u);

  options.type = "q4_s";
  try {
    rwkv::quantize_model(q8, q4, options);
    FAIL() << "no error";
  } catch (const rwkv::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("allow-requantize"));
  }
  options.allow_requantize = true;
  EXPECT_GT(rwkv::quantize_model(q8, q4, options).converted_tensors, 0u);
}

TEST(ModelFiles, BytesModelsNeedNoVocabulary) {
  rwkv_test::ScratchDir dir;
  const std::string path = (dir / "m.rwkv").string();
  rwkv::convert_model(fixture("tiny-v5.2.pth"), path, {});
  const auto model = rwkv::Model::load(path);
  EXPECT_EQ(rwkv::load_model_tokenizer(*model)->kind(), rwkv::TokenizerKind::Bytes);
  EXPECT_EQ(rwkv::load_model_tokenizer(*model, "/nonexistent/vocab.txt")->kind(), rwkv::TokenizerKind::Bytes);
}

TEST(ModelFiles, DefaultModelPath) {
  {
    ScopedEnv env("RWKV_DEFAULT_MODEL", "/somewhere/model.rwkv");
    EXPECT_EQ(rwkv::default_model_path(), "/somewhere/model.rwkv");
  }
  ScopedEnv env("RWKV_DEFAULT_MODEL", nullptr);
  // An installed default model comes first; without one, this build tree's.
  const std::string found = rwkv::default_model_path();
  if (found != RWKV_DEFAULT_MODEL_PATH) {
    EXPECT_THAT(found, HasSubstr("share/rwkv/default-rwkv7.rwkv"));
  }
  EXPECT_TRUE(std::filesystem::is_regular_file(found)) << found;
}

TEST(Threads, TheSizeIsFixedAtTheFirstUse) {
  EXPECT_GE(rwkv::physical_core_count(), 1u);
  const unsigned threads = rwkv::thread_count();
  EXPECT_GE(threads, 1u);
  rwkv::set_thread_count(threads);  // the size that the first use takes anyway
  rwkv_test::ScratchDir dir;
  const std::string path = (dir / "m.rwkv").string();
  rwkv::convert_model(fixture("tiny-v5.2.pth"), path, {});
  rwkv::Model::load(path);  // a first use
  EXPECT_EQ(rwkv::thread_count(), threads);
  rwkv::set_thread_count(threads);  // no change: accepted
  try {
    rwkv::set_thread_count(threads + 1);
    FAIL() << "no error";
  } catch (const rwkv::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("already started with " + std::to_string(threads) + " threads"));
  }
}

TEST(Machine, ProbesMeasureSomething) {
  rwkv::BandwidthProbe probe(size_t(4) << 20);
  EXPECT_GT(probe.pass(), 0.0);
  EXPECT_GT(rwkv::measure_fma_peak_once(), 0.0);
}

TEST(RandomCheckpoint, PresetsAndUnknownNames) {
  std::vector<std::string> names;
  for (const rwkv::CheckpointPreset& p : rwkv::checkpoint_presets()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"rwkv7-0.1b", "rwkv7-1.5b", "rwkv4-169m"}));
  rwkv_test::ScratchDir dir;
  rwkv::RandomCheckpointOptions options;
  options.preset = "rwkv9-7b";
  try {
    rwkv::write_random_checkpoint((dir / "m.pth").string(), options);
    FAIL() << "no error";
  } catch (const rwkv::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("unknown preset 'rwkv9-7b'"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "m.pth"));
}

TEST(InputFiles, BoundedAndRegularOnly) {
  rwkv_test::ScratchDir dir;
  rwkv_test::write_file(dir / "t.txt", "hello");
  EXPECT_EQ(rwkv::read_regular_file((dir / "t.txt").string(), "the prompt", 5), "hello");
  try {
    rwkv::read_regular_file((dir / "t.txt").string(), "the prompt", 4);
    FAIL() << "no error";
  } catch (const rwkv::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("the prompt is 5 bytes, more than the 4 bytes allowed"));
  }
  try {
    rwkv::read_regular_file(dir.path().string(), "the prompt", 100);
    FAIL() << "no error";
  } catch (const rwkv::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("the prompt is a directory, expected a regular file"));
  }
  EXPECT_EQ(rwkv::printable("a\x1b[31m\n"), "a\\x1b[31m\\n");
}

}  // namespace
