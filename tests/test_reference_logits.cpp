// Every model in ../shared/models/pth, converted by our converter, against the
// official implementation's logits at every position of every open case.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "rwkv/machine.hpp"
#include "rwkv/model.hpp"
#include "reference_support.hpp"

namespace {

std::vector<std::string> reference_models() { return rwkv_test::reference_models(); }
nlohmann::json manifest(const std::string& model) { return rwkv_test::reference_manifest(model); }

std::string convert(const rwkv_test::ScratchDir& dir, const std::string& pth_relative, const std::string& type) {
  return rwkv_test::convert_checkpoint(dir, *rwkv_test::shared_dir() / pth_relative, type);
}

// Max |ours - reference| over every position of every case.
double max_logit_error(const rwkv::Model& model, const std::string& ref_model) {
  return rwkv_test::compare_with_reference(model, ref_model).max_abs;
}

class ReferenceLogits : public ::testing::TestWithParam<std::string> {};

// Sets each kernel level this processor runs in turn (rwkv::set_kernel_isa, as
// RWKV_ISA), and restores the best one after.
struct EveryKernelLevel {
  std::vector<std::string> levels = rwkv::supported_kernel_isas();
  ~EveryKernelLevel() { rwkv::set_kernel_isa("native"); }
};

// At every instruction-set level of the kernels.
TEST_P(ReferenceLogits, Float32WithinTwoTenThousandths) {
  RWKV_SKIP_WITHOUT_SHARED();
  rwkv_test::ScratchDir dir;
  const auto m = manifest(GetParam());
  auto model = rwkv::Model::load(convert(dir, m["model_pth"], "f32"));
  EXPECT_EQ(model->info().n_layer, m["n_layer"].get<uint32_t>());
  EXPECT_EQ(model->info().n_embd, m["n_embd"].get<uint32_t>());
  EveryKernelLevel every;
  for (const std::string& level : every.levels) {
    rwkv::set_kernel_isa(level);
    const double err = max_logit_error(*model, GetParam());
    RecordProperty("max_abs_diff_f32_" + level, std::to_string(err));
    std::printf("[ measured ] %s f32 %s max abs logit diff %.3g\n", GetParam().c_str(), level.c_str(), err);
    EXPECT_LE(err, 2e-4) << level;
  }
}

TEST_P(ReferenceLogits, Float16WithinTwoHundredths) {
  RWKV_SKIP_WITHOUT_SHARED();
  rwkv_test::ScratchDir dir;
  const std::string path = convert(dir, manifest(GetParam())["model_pth"], "f16");
  EveryKernelLevel every;
  for (const std::string& level : every.levels) {
    rwkv::set_kernel_isa(level);
    // Loaded at each level: the AVX-512 levels rearrange f16 matrices at load for their kernels.
    auto model = rwkv::Model::load(path);
    const double err = max_logit_error(*model, GetParam());
    std::printf("[ measured ] %s f16 %s max abs logit diff %.3g\n", GetParam().c_str(), level.c_str(), err);
    EXPECT_LE(err, 2e-2) << level;
  }
}

// The official state list after case b, compared tensor by tensor with ours.
TEST_P(ReferenceLogits, StateAfterCaseBMatchesOfficialState) {
  RWKV_SKIP_WITHOUT_SHARED();
  rwkv_test::ScratchDir dir;
  const auto m = manifest(GetParam());
  auto model = rwkv::Model::load(convert(dir, m["model_pth"], "f32"));
  rwkv::State state = model->new_state();
  for (const auto& c : m["cases"]) {
    if (c["name"] != "b_english_64") continue;
    for (int32_t token : c["tokens"].get<std::vector<int32_t>>()) model->advance(token, state);
  }
  const auto folder = *rwkv_test::shared_dir() / "reference" / "logits" / GetParam();
  std::vector<float> official;
  for (const auto& entry : m["state_after_case_b"]) {
    auto part = rwkv_test::read_f32_file(folder / entry["file"].get<std::string>());
    official.insert(official.end(), part.begin(), part.end());
  }
  ASSERT_EQ(official.size(), state.data.size());
  double worst = 0;
  for (size_t i = 0; i < official.size(); ++i) {
    // v4's pp is a log-scale running maximum; compare it relatively.
    const double scale = std::max(1.0, std::abs(double(official[i])));
    worst = std::max(worst, std::abs(double(state.data[i]) - official[i]) / scale);
  }
  EXPECT_LE(worst, 1e-4);
}

// Saving the state midway, restoring it into a freshly loaded model and continuing
// gives exactly the logits of running straight through.
TEST_P(ReferenceLogits, StateRestoredMidwayContinuesIdentically) {
  RWKV_SKIP_WITHOUT_SHARED();
  rwkv_test::ScratchDir dir;
  const auto m = manifest(GetParam());
  const std::string path = convert(dir, m["model_pth"], "f32");
  const auto tokens = m["cases"][2]["tokens"].get<std::vector<int32_t>>();
  const size_t half = tokens.size() / 2;

  auto straight_model = rwkv::Model::load(path);
  rwkv::State straight = straight_model->new_state();
  std::vector<float> expected(straight_model->info().n_vocab), got(expected.size());
  rwkv::State saved;
  std::vector<std::vector<float>> straight_rows;
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (t == half) saved = straight;
    straight_model->forward(tokens[t], straight, expected);
    if (t >= half) straight_rows.push_back(expected);
  }
  straight_model.reset();

  auto fresh_model = rwkv::Model::load(path);
  rwkv::State restored = saved;
  for (size_t t = half; t < tokens.size(); ++t) {
    fresh_model->forward(tokens[t], restored, got);
    ASSERT_EQ(got, straight_rows[t - half]) << "position " << t;
  }
  EXPECT_EQ(restored, straight);
}

INSTANTIATE_TEST_SUITE_P(Shared, ReferenceLogits, ::testing::ValuesIn(reference_models()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// Released checkpoints store bfloat16 or float16; the converter must read them as
// exactly those values, so the logits stay close to the float32 reference.
TEST(ReferenceLogitsHalfCheckpoints, Bf16AndFp16CheckpointsConvert) {
  RWKV_SKIP_WITHOUT_SHARED();
  for (const std::string model : {"4v0-660K", "7v0-834K"}) {
    for (const std::string kind : {"fp16", "bf16"}) {
      rwkv_test::ScratchDir dir;
      const std::string pth = "models/pth/tiny-rwkv-" + model + "-" + kind + ".pth";
      auto m = rwkv::Model::load(convert(dir, pth, "f32"));
      const double err = max_logit_error(*m, model);
      std::printf("[ measured ] %s from %s checkpoint: max abs logit diff %.3g\n", model.c_str(), kind.c_str(), err);
      // The weights themselves are rounded to 11 (fp16) or 8 (bf16) significant bits.
      EXPECT_LE(err, kind == "fp16" ? 2e-2 : 1e-1) << pth;
    }
  }
}

}  // namespace
