// GGUF files made by llama.cpp's converter and quantizer, and Hugging Face directories
// made by the official conversion scripts, from the committed tiny checkpoints
// (tools/fixtures/make_gguf_fixtures.sh): imported and compared with the .pth they came
// from and with the official logits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstring>

#include "convert/gguf_file.hpp"
#include "convert/to_native.hpp"
#include "reference_support.hpp"
#include "rwkv/error.hpp"
#include "rwkv/tokenizer.hpp"
#include "test_support.hpp"
#include "weights/format.hpp"

namespace {

using rwkv_test::ScratchDir;

nlohmann::json fixture(const std::string& name) {
  for (const auto& f : rwkv_test::fixture_list()) {
    if (f["name"] == name) return f;
  }
  ADD_FAILURE() << "no fixture " << name;
  return {};
}

std::shared_ptr<const rwkv::Model> import_model(const ScratchDir& dir, const std::filesystem::path& source,
                                                const std::string& name) {
  const std::string out = (dir / (name + ".rwkv")).string();
  const rwkv::convert::SourceModel model = rwkv::convert::open_source(source.string());
  rwkv::convert::ConvertOptions options;
  options.types = rwkv::convert::lossless_types(model);
  rwkv::convert::convert_source(model, out, options);
  return rwkv::Model::load(out);
}

// Logits of `a` against those of `b` on the fixture's tokens.
rwkv_test::LogitComparison compare_models(const rwkv::Model& a, const rwkv::Model& b, const nlohmann::json& f) {
  rwkv_test::LogitComparison c;
  std::vector<float> la(a.info().n_vocab), lb(b.info().n_vocab);
  rwkv::State sa = a.new_state(), sb = b.new_state();
  for (int32_t token : f["tokens"].get<std::vector<int32_t>>()) {
    a.forward(token, sa, la);
    b.forward(token, sb, lb);
    c.add(la.data(), lb.data(), la.size());
  }
  return c;
}

struct GgufCase {
  const char* type;
  double max_abs;   // against the official logits
  double mean_kl;
};

// Bounds measured on these fixtures (see the [ measured ] lines), with headroom.
constexpr GgufCase kGgufCases[] = {
    {"F32", 2e-4, 1e-9}, {"F16", 2e-2, 1e-5}, {"BF16", 0.15, 2e-4}, {"Q8_0", 0.4, 2e-3},  {"Q4_0", 4.0, 0.2},
    {"Q4_1", 4.0, 0.2},  {"Q5_0", 3.5, 0.08}, {"Q5_1", 3.5, 0.08}, {"Q4_K", 3.5, 0.08}, {"Q5_K", 3.5, 0.08},
    {"Q6_K", 0.4, 2e-3},
};

TEST(ImportGguf, MatchesThePthAndTheOfficialLogits) {
  const ScratchDir dir;
  for (const char* stem : {"tiny-v6.0", "tiny-v7.0"}) {
    const nlohmann::json f = fixture(stem);
    const auto pth = import_model(dir, rwkv_test::fixtures_dir() / (std::string(stem) + ".pth"), stem);
    for (const GgufCase& c : kGgufCases) {
      const auto path = rwkv_test::fixtures_dir() / fmt::format("{}.{}.gguf", stem, c.type);
      ASSERT_TRUE(std::filesystem::exists(path)) << path;
      const auto model = import_model(dir, path, fmt::format("{}-{}", stem, c.type));
      EXPECT_EQ(model->info().arch, pth->info().arch);
      EXPECT_EQ(model->info().tokenizer, rwkv::TokenizerKind::World) << path;
      const rwkv_test::LogitComparison official = rwkv_test::compare_with_fixture(*model, f);
      std::printf("[ measured ] GGUF %s %s: vs official max abs %.3g, mean KL %.3g\n", stem, c.type, official.max_abs,
                  official.mean_kl());
      EXPECT_LE(official.max_abs, c.max_abs) << path;
      EXPECT_LE(official.mean_kl(), c.mean_kl) << path;
      if (std::strcmp(c.type, "F32") == 0) {
        const rwkv_test::LogitComparison same = compare_models(*model, *pth, f);
        std::printf("[ measured ] GGUF %s F32 vs its .pth: max abs %.3g\n", stem, same.max_abs);
        EXPECT_LE(same.max_abs, 1e-5) << path;
      }
    }
  }
}

// K-quant blocks, which need rows of 256: a wider fixture (n_embd 256) whose matrices
// llama-quantize really stored as Q4_K, Q5_K and Q6_K.
TEST(ImportGguf, KQuantFilesMatchTheOfficialLogits) {
  const ScratchDir dir;
  const nlohmann::json f = fixture("tiny-v7.0-c256");
  for (const auto& [type, max_abs, mean_kl] :
       // Measured 1.82 / 0.058, 0.62 / 0.012, 0.37 / 0.0036, 0.18 / 5.5e-4: bounds of twice that.
       {std::tuple{"Q4_K", 3.6, 0.12}, std::tuple{"Q5_K", 1.25, 0.025}, std::tuple{"Q6_K", 0.75, 0.008},
        std::tuple{"Q8_0", 0.36, 1.2e-3}}) {
    const auto path = rwkv_test::fixtures_dir() / fmt::format("tiny-v7.0-c256.{}.gguf", type);
    const rwkv::SourceSummary summary = rwkv::summarize_source_file(path.string());
    bool has_type = false;
    for (const auto& [name, count] : summary.tensor_types) has_type = has_type || (name == type && count >= 7);
    EXPECT_TRUE(has_type) << path << ": its matrices should be " << type;
    const auto model = import_model(dir, path, fmt::format("c256-{}", type));
    const rwkv_test::LogitComparison official = rwkv_test::compare_with_fixture(*model, f);
    std::printf("[ measured ] GGUF tiny-v7.0-c256 %s: vs official max abs %.3g, mean KL %.3g\n", type,
                official.max_abs, official.mean_kl());
    EXPECT_LE(official.max_abs, max_abs) << path;
    EXPECT_LE(official.mean_kl(), mean_kl) << path;
  }
}

// What rounding twice costs: a 4/5-bit GGUF re-quantized to q4_s (`convert --type q4_s`)
// against the official logits, beside q4_s made from the original weights.
TEST(ImportGguf, DoubleRoundingToQ4_S) {
  const ScratchDir dir;
  const nlohmann::json f = fixture("tiny-v7.0-c256");
  const auto to_q4_s = [&](const std::filesystem::path& source, const std::string& name) {
    const std::string out = (dir / (name + ".rwkv")).string();
    rwkv::convert::ConvertOptions options;
    options.types = rwkv::convert::WeightTypes::for_type(rwkv::DType::Q4_S);
    rwkv::convert::convert_source(rwkv::convert::open_source(source.string()), out, options);
    return rwkv::Model::load(out);
  };
  const auto once = rwkv_test::compare_with_fixture(*to_q4_s(rwkv_test::fixtures_dir() / "tiny-v7.0-c256.pth", "pth"), f);
  std::printf("[ measured ] q4_s from the .pth: vs official max abs %.3g, mean KL %.3g\n", once.max_abs,
              once.mean_kl());
  for (const char* type : {"Q4_K", "Q5_K", "Q6_K", "Q8_0"}) {
    const auto path = rwkv_test::fixtures_dir() / fmt::format("tiny-v7.0-c256.{}.gguf", type);
    const auto source_alone = rwkv_test::compare_with_fixture(*import_model(dir, path, type), f);
    const auto twice = rwkv_test::compare_with_fixture(*to_q4_s(path, std::string(type) + "-q4_s"), f);
    std::printf("[ measured ] q4_s from GGUF %s: vs official max abs %.3g, mean KL %.3g (the GGUF alone: %.3g, "
                "%.3g)\n",
                type, twice.max_abs, twice.mean_kl(), source_alone.max_abs, source_alone.mean_kl());
    // Twice rounded is worse than either rounding alone, but not by more than their sum.
    EXPECT_LE(twice.mean_kl(), 2.0 * (once.mean_kl() + source_alone.mean_kl())) << type;
    EXPECT_GE(twice.mean_kl(), 0.5 * std::max(once.mean_kl(), source_alone.mean_kl())) << type;
  }
}

// A Q8_0 matrix is stored as the native q8_0 it already is, bit for bit.
TEST(ImportGguf, KeepsQ8_0BlocksBitForBit) {
  const ScratchDir dir;
  const auto path = rwkv_test::fixtures_dir() / "tiny-v7.0.Q8_0.gguf";
  const auto model = import_model(dir, path, "q8");
  const auto gguf = rwkv::convert::GgufFile::open(path.string());
  const rwkv::NativeFile native = rwkv::read_native_file((dir / "q8.rwkv").string());
  size_t compared = 0;
  for (const auto& [native_name, gguf_name] : {std::pair{"blocks.1.att.key.weight", "blk.1.time_mix_key.weight"},
                                               {"blocks.0.ffn.key.weight", "blk.0.channel_mix_key.weight"},
                                               {"head.weight", "output.weight"}}) {
    const rwkv::NativeTensor* n = native.find(native_name);
    const rwkv::convert::GgufTensor* g = gguf.find(gguf_name);
    ASSERT_TRUE(n && g) << native_name;
    EXPECT_EQ(n->dtype, rwkv::DType::Q8_0) << native_name;
    ASSERT_EQ(n->bytes, g->bytes) << native_name;
    EXPECT_EQ(std::memcmp(n->data, g->data, g->bytes), 0) << native_name;
    ++compared;
  }
  EXPECT_EQ(compared, 3u);
}

// The GGUF's World tokens go into the native file: no vocabulary file is needed.
TEST(ImportGguf, CarriesItsTokenizer) {
  const ScratchDir dir;
  const auto model = import_model(dir, rwkv_test::fixtures_dir() / "tiny-v6.0.F16.gguf", "tok");
  ASSERT_FALSE(model->embedded_vocabulary().empty());
  const auto tokenizer = rwkv::load_world_tokenizer_text("embedded", model->embedded_vocabulary());
  // llama.cpp's converter made token i (1..255) of byte i - 1 from the first 255 lines of
  // the World vocabulary.
  EXPECT_EQ(tokenizer->encode("A"), std::vector<int32_t>{'A' + 1});
  EXPECT_EQ(tokenizer->decode(std::vector<int32_t>{1, 255}), std::string("\x00\xfe", 2));
  const auto reloaded = rwkv::Model::load((dir / "tok.rwkv").string());
  EXPECT_EQ(reloaded->embedded_vocabulary(), model->embedded_vocabulary());
}

TEST(ImportHuggingFace, DirectoriesMatchTheirPth) {
  const ScratchDir dir;
  for (const char* stem : {"tiny-v4", "tiny-v5.2", "tiny-v6.0", "tiny-v7.0"}) {
    const nlohmann::json f = fixture(stem);
    const auto hf = rwkv_test::fixtures_dir() / (std::string(stem) + ".hf");
    ASSERT_TRUE(std::filesystem::is_directory(hf)) << hf;
    EXPECT_EQ(rwkv::model_file_format(hf.string()), "huggingface");
    const auto model = import_model(dir, hf, std::string(stem) + "-hf");
    const auto pth = import_model(dir, rwkv_test::fixtures_dir() / (std::string(stem) + ".pth"), stem);
    const rwkv_test::LogitComparison same = compare_models(*model, *pth, f);
    const rwkv_test::LogitComparison official = rwkv_test::compare_with_fixture(*model, f);
    std::printf("[ measured ] Hugging Face %s: vs its .pth max abs %.3g; vs official max abs %.3g\n", stem,
                same.max_abs, official.max_abs);
    EXPECT_LE(same.max_abs, 1e-5) << hf;
    EXPECT_LE(official.max_abs, 2e-4) << hf;
  }
}

// Model::load takes any of these directly (converted in memory).
TEST(ImportFormats, ModelLoadConvertsInMemory) {
  const auto gguf = rwkv::Model::load((rwkv_test::fixtures_dir() / "tiny-v7.0.Q8_0.gguf").string());
  EXPECT_EQ(gguf->path(), (rwkv_test::fixtures_dir() / "tiny-v7.0.Q8_0.gguf").string());
  EXPECT_EQ(gguf->info().arch, rwkv::Arch::V7_0);
  const auto hf = rwkv::Model::load((rwkv_test::fixtures_dir() / "tiny-v6.0.hf").string());
  EXPECT_EQ(hf->info().arch, rwkv::Arch::V6_0);
  EXPECT_EQ(rwkv::model_file_format((rwkv_test::fixtures_dir() / "tiny-v6.0.pth").string()), "pth");
  EXPECT_EQ(rwkv::model_file_format((rwkv_test::fixtures_dir() / "tiny-v6.0.F32.gguf").string()), "gguf");
}

// The command line: convert detects the format by content (the file's name says
// nothing), info names the source, and --model takes an import with a note.
TEST(ImportFormats, CommandLine) {
  const ScratchDir dir;
  const auto renamed = dir / "model.bin";  // a GGUF under a misleading name
  std::filesystem::copy_file(rwkv_test::fixtures_dir() / "tiny-v7.0.Q8_0.gguf", renamed);
  const auto out = dir / "out.rwkv";
  const auto convert = rwkv_test::run_cli_with_stderr("convert " + renamed.string() + " " + out.string());
  EXPECT_EQ(convert.exit_code, 0) << convert.output;
  EXPECT_THAT(convert.output, testing::HasSubstr("(gguf)"));
  EXPECT_THAT(convert.output, testing::HasSubstr("matrices q8_0"));
  const auto info = rwkv_test::run_cli_with_stderr("info --model " + renamed.string());
  EXPECT_EQ(info.exit_code, 0) << info.output;
  EXPECT_THAT(info.output, testing::HasSubstr("converted in memory"));
  EXPECT_THAT(info.output, testing::HasSubstr("source:       gguf, "));
  EXPECT_THAT(info.output, testing::HasSubstr("Q8_0 ("));
  const auto text = dir / "notes.txt";
  rwkv_test::write_file(text, "not a model\n");
  const auto bad = rwkv_test::run_cli_with_stderr("convert " + text.string() + " " + out.string());
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.output, testing::HasSubstr("not a model file this engine reads"));
}

}  // namespace
