// The committed fixtures: tiny random-weight checkpoints of every architecture
// version with logits from the independent Python reference in tools/reference.
// These run without ../shared, so a bare clone still tests every version's math.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "rwkv/model.hpp"
#include "reference_support.hpp"

namespace {

using rwkv_test::fixture_list;

std::vector<std::string> fixture_names() {
  std::vector<std::string> out;
  for (const auto& m : fixture_list()) out.push_back(m["name"]);
  return out;
}

nlohmann::json fixture(const std::string& name) {
  for (const auto& m : fixture_list()) {
    if (m["name"] == name) return m;
  }
  throw std::runtime_error("no fixture " + name);
}

double max_error(const rwkv::Model& model, const nlohmann::json& f) {
  return rwkv_test::compare_with_fixture(model, f).max_abs;
}

class FixtureModels : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureModels, ConvertDetectsArchitectureAndMatchesReferenceLogits) {
  const auto f = fixture(GetParam());
  rwkv_test::ScratchDir dir;
  const std::string out = (dir / "model.rwkv").string();
  auto report = rwkv::convert_model((rwkv_test::fixtures_dir() / f["file"].get<std::string>()).string(), out, {});
  EXPECT_EQ(rwkv::arch_name(report.info.arch), f["arch_version"].get<std::string>());
  auto model = rwkv::Model::load(out);
  EXPECT_EQ(model->info().n_layer, f["n_layer"].get<uint32_t>());
  EXPECT_EQ(model->info().n_embd, f["n_embd"].get<uint32_t>());
  EXPECT_EQ(model->info().n_ffn, f["n_ffn"].get<uint32_t>());
  EXPECT_EQ(model->info().tokenizer, rwkv::TokenizerKind::Bytes);
  const double err = max_error(*model, f);
  std::printf("[ measured ] fixture %s (RWKV %s): max abs logit diff %.3g\n", GetParam().c_str(),
              f["arch_version"].get<std::string>().c_str(), err);
  EXPECT_LE(err, 2e-4);
}

TEST_P(FixtureModels, Float16StorageStaysClose) {
  const auto f = fixture(GetParam());
  rwkv_test::ScratchDir dir;
  const std::string out = (dir / "model.rwkv").string();
  rwkv::ConvertOptions options;
  options.type = "f16";
  rwkv::convert_model((rwkv_test::fixtures_dir() / f["file"].get<std::string>()).string(), out, options);
  EXPECT_LE(max_error(*rwkv::Model::load(out), f), 2e-2);
}

// RWKV-7's LoRA matrices keep a half-precision checkpoint's own values (half the bytes
// decode reads for them) and float32 ones stay float32, whatever type the big matrices
// get; either way the logits match the reference at the float32 bound.
TEST(FixtureModelsLowRank, StoredAsTheCheckpointsOwnHalfValuesElseFloat32) {
  for (const auto& [name, expected] : std::vector<std::pair<std::string, std::string>>{
           {"tiny-v7.0", "f32"}, {"tiny-v7.0-bf16", "bf16"}, {"tiny-v7.0-fp16", "f16"}}) {
    const auto f = fixture(name);
    for (const char* type : {"", "q8_0"}) {
      rwkv_test::ScratchDir dir;
      const std::string out = (dir / "model.rwkv").string();
      rwkv::ConvertOptions options;
      options.type = type;
      rwkv::convert_model((rwkv_test::fixtures_dir() / f["file"].get<std::string>()).string(), out, options);
      const auto model = rwkv::Model::load(out);
      int low_rank = 0;
      for (const rwkv::TensorInfo& t : model->tensors()) {
        for (const char* lora : {".att.w1", ".att.w2", ".att.a1", ".att.a2", ".att.g1", ".att.g2"}) {
          if (!t.name.ends_with(lora)) continue;
          ++low_rank;
          EXPECT_EQ(t.dtype, expected) << name << " --type '" << type << "' " << t.name;
        }
        if (t.name.ends_with(".att.x_r")) {
          EXPECT_EQ(t.dtype, "f32") << name << " " << t.name;
        }
      }
      EXPECT_GT(low_rank, 0) << name;
      if (std::string(type).empty()) {
        EXPECT_LE(max_error(*model, f), 2e-4) << name;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Committed, FixtureModels, ::testing::ValuesIn(fixture_names()), [](const auto& info) {
  std::string n = info.param;
  std::replace_if(n.begin(), n.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  return n;
});

}  // namespace
