// rwkv.cpp model files, as rwkv.cpp's own converter and quantizer wrote them
// (../shared/models/rwkvcpp), imported and held to the bounds of the .pth of the same
// weights against the official logits; the quantized ones against the logits of their
// exactly dequantized weights.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "convert/rwkvcpp_file.hpp"
#include "convert/to_native.hpp"
#include "reference_support.hpp"
#include "rwkv/error.hpp"
#include "test_support.hpp"

namespace {

using rwkv_test::ScratchDir;

std::string import_file(const ScratchDir& dir, const std::filesystem::path& source, const std::string& name,
                        std::optional<rwkv::DType> type = std::nullopt) {
  const std::string out = (dir / (name + ".rwkv")).string();
  const rwkv::convert::SourceModel model = rwkv::convert::open_source(source.string());
  rwkv::convert::ConvertOptions options;
  options.types = type ? rwkv::convert::WeightTypes::for_type(*type) : rwkv::convert::lossless_types(model);
  rwkv::convert::convert_source(model, out, options);
  return out;
}

// rwkv.cpp's file of the reference model `ref` ("7v0-834K") of type `suffix` ("FP16.bin").
std::filesystem::path rwkvcpp_file(const std::string& ref, const std::string& suffix) {
  return *rwkv_test::shared_dir() / "models" / "rwkvcpp" / ("tiny-rwkv-" + ref + "-" + suffix);
}

TEST(ImportRwkvCpp, FloatFilesMatchTheOfficialLogits) {
  if (!rwkv_test::shared_dir()) GTEST_SKIP() << rwkv_test::shared_dir_missing_reason();
  const ScratchDir dir;
  for (const std::string& ref : rwkv_test::reference_models()) {
    const nlohmann::json manifest = rwkv_test::reference_manifest(ref);
    for (const auto& [suffix, type, bound] : {std::tuple{"FP32.bin", rwkv::DType::F32, 2e-4},
                                              std::tuple{"FP16.bin", rwkv::DType::F16, 2e-2}}) {
      const std::filesystem::path file = rwkvcpp_file(ref, suffix);
      if (!std::filesystem::exists(file)) continue;  // 6v0-3m has only quantized files
      const std::string native = import_file(dir, file, ref + suffix);
      const auto model = rwkv::Model::load(native);
      for (const rwkv::TensorInfo& t : model->tensors()) {
        if (t.name.ends_with("key.weight")) {
          EXPECT_EQ(t.dtype, rwkv::dtype_name(type)) << file << " " << t.name;
        }
      }
      const rwkv_test::LogitComparison c = rwkv_test::compare_with_reference(*model, ref);
      std::printf("[ measured ] rwkv.cpp %s %s: max abs logit diff %.3g, mean KL %.3g\n", ref.c_str(), suffix,
                  c.max_abs, c.mean_kl());
      EXPECT_LE(c.max_abs, bound) << file;
      EXPECT_GT(c.positions, 0u);
    }
  }
}

// Q5_0 / Q5_1: imported by default as f16 (the values of 5-bit blocks do not all fit
// f16 exactly); measured against the exactly dequantized weights (stored f32) and,
// for the quantization's own cost, against the official logits.
TEST(ImportRwkvCpp, QuantizedFilesMatchTheirDequantizedWeights) {
  if (!rwkv_test::shared_dir()) GTEST_SKIP() << rwkv_test::shared_dir_missing_reason();
  const ScratchDir dir;
  for (const std::string& ref : rwkv_test::reference_models()) {
    const nlohmann::json manifest = rwkv_test::reference_manifest(ref);
    for (const char* suffix : {"Q5_0.bin", "Q5_1.bin"}) {
      const std::filesystem::path file = rwkvcpp_file(ref, suffix);
      ASSERT_TRUE(std::filesystem::exists(file)) << file;
      const auto exact = rwkv::Model::load(import_file(dir, file, ref + suffix + ".f32", rwkv::DType::F32));
      const auto stored = rwkv::Model::load(import_file(dir, file, ref + suffix));
      for (const rwkv::TensorInfo& t : stored->tensors()) {
        if (t.name.ends_with("key.weight")) {
          EXPECT_EQ(t.dtype, "f16") << file << " " << t.name;
        }
      }
      // The f32 import's logits as the reference for the default (f16) import.
      rwkv_test::LogitComparison rounding;
      const nlohmann::json cases = manifest["cases"];
      std::vector<float> a(exact->info().n_vocab), b(a.size());
      for (const auto& c : cases) {
        rwkv::State sa = exact->new_state(), sb = stored->new_state();
        for (int32_t token : c["tokens"].get<std::vector<int32_t>>()) {
          exact->forward(token, sa, a);
          stored->forward(token, sb, b);
          rounding.add(b.data(), a.data(), a.size());
        }
      }
      const rwkv_test::LogitComparison quantization = rwkv_test::compare_with_reference(*exact, ref);
      std::printf("[ measured ] rwkv.cpp %s %s: f16 import vs exact dequantization max abs %.3g, mean KL %.3g; "
                  "exact dequantization vs official fp32 max abs %.3g, mean KL %.3g\n",
                  ref.c_str(), suffix, rounding.max_abs, rounding.mean_kl(), quantization.max_abs,
                  quantization.mean_kl());
      // Measured: at most 0.026 (5v2 Q5_0) and a mean KL below 5e-7.
      EXPECT_LE(rounding.max_abs, 5e-2) << file;
      EXPECT_LE(rounding.mean_kl(), 5e-6) << file;
      EXPECT_LE(quantization.mean_kl(), 5e-2) << file;  // measured: at most 0.0202 (5v1 Q5_0)
      // 6v0-3m's official checkpoint was made from this very file: its exact
      // dequantization must give the official logits at the f32 bound.
      if (manifest["model_ggml_source_of_pth"].get<std::string>().ends_with(suffix)) {
        EXPECT_LE(quantization.max_abs, 2e-4) << file;
      }
    }
  }
}

// rwkv.cpp's converter stores some tensors transformed; the import hands the same
// official tensors to the converter as the .pth does.
TEST(ImportRwkvCpp, PresentsTheOfficialTensors) {
  if (!rwkv_test::shared_dir()) GTEST_SKIP() << rwkv_test::shared_dir_missing_reason();
  const nlohmann::json manifest = rwkv_test::reference_manifest("7v0-834K");
  const auto bin = rwkv::convert::open_source(rwkvcpp_file("7v0-834K", "FP32.bin").string());
  const auto pth = rwkv::convert::open_source((*rwkv_test::shared_dir() / manifest["model_pth"].get<std::string>()).string());
  EXPECT_EQ(bin.format, "rwkv.cpp");
  for (const char* name : {"blocks.1.att.x_a", "blocks.1.att.w1", "blocks.1.att.v2", "blocks.2.ffn.key.weight"}) {
    const auto* a = bin.find(name);
    const auto* b = pth.find(name);
    ASSERT_TRUE(a && b) << name;
    EXPECT_EQ(a->values(), b->values()) << name;
  }
}

std::string header(uint32_t magic, uint32_t version, uint32_t type = 0) {
  std::string out(24, '\0');
  const uint32_t fields[6] = {magic, version, 4, 32, 1, type};
  std::memcpy(out.data(), fields, sizeof(fields));
  return out;
}

std::string parameter(const std::string& name, std::vector<uint32_t> ggml_dims, uint32_t type, size_t data_bytes) {
  std::string out;
  const uint32_t head[3] = {uint32_t(ggml_dims.size()), uint32_t(name.size()), type};
  out.append(reinterpret_cast<const char*>(head), sizeof(head));
  out.append(reinterpret_cast<const char*>(ggml_dims.data()), ggml_dims.size() * 4);
  out += name;
  out.append(data_bytes, '\0');
  return out;
}

void expect_refused(const ScratchDir& dir, const std::string& bytes, const std::string& needle) {
  const auto path = dir / "bad.bin";
  rwkv_test::write_file(path, bytes);
  try {
    rwkv::convert::open_rwkvcpp_source(path.string());
    ADD_FAILURE() << "accepted; expected an error containing '" << needle << "'";
  } catch (const rwkv::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what() << " (expected: " << needle << ")";
  }
}

TEST(ImportRwkvCpp, RefusesMalformedFiles) {
  const ScratchDir dir;
  const std::string emb = parameter("emb.weight", {32, 4}, 0, 32 * 4 * 4);
  expect_refused(dir, header(0x12345678, 101) + emb, "magic");
  expect_refused(dir, header(0x67676d66, 102) + emb, "file version 102");
  expect_refused(dir, header(0x67676d66, 101, 5) + emb, "data_type 5");
  expect_refused(dir, header(0x67676d66, 101) + parameter("emb.weight", {32, 4}, 6, 0), "data_type 6");
  expect_refused(dir, header(0x67676d66, 101) + emb.substr(0, emb.size() - 1), "the file ends after");
  expect_refused(dir, header(0x67676d66, 101) + emb + emb, "appears twice");
  expect_refused(dir, header(0x67676d66, 101) + parameter("emb.weight", {32, 4, 1, 1}, 0, 0), "dim_count 4");
  expect_refused(dir, header(0x67676d66, 101) + parameter("emb.weight", {32, 0}, 0, 0), "dimension 1 is 0");
  expect_refused(dir, header(0x67676d66, 100) + parameter("emb.weight", {32, 4}, 8, 4 * 24), "file version 100");
  expect_refused(dir, header(0x67676d66, 101) + parameter("emb.weight", {16, 3}, 8, 2 * 24), "whole number");
  expect_refused(dir, header(0x67676d66, 101) + parameter("emb.weight", {32, 5}, 0, 32 * 5 * 4), "disagree");
  expect_refused(dir, header(0x67676d66, 101).substr(0, 20), "too short");
}

}  // namespace
