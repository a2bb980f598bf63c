// Sequence mode (many tokens per pass over the weights) against serial mode (one
// token at a time), for every architecture version.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "rwkv/convert.hpp"
#include "rwkv/error.hpp"
#include "rwkv/model.hpp"
#include "test_support.hpp"

namespace {

struct Comparison {
  double logits = 0;
  double state = 0;
};

// Serial and sequence logits for every token, and the states they end in.
Comparison compare_modes(const rwkv::Model& model, const std::vector<int32_t>& tokens) {
  const size_t V = model.info().n_vocab;
  rwkv::State serial = model.new_state();
  std::vector<float> row(V), serial_logits;
  for (int32_t t : tokens) {
    model.forward(t, serial, row);
    serial_logits.insert(serial_logits.end(), row.begin(), row.end());
  }
  rwkv::State sequence = model.new_state();
  std::vector<float> sequence_logits(tokens.size() * V);
  model.forward_sequence(tokens, sequence, sequence_logits);
  Comparison c;
  for (size_t i = 0; i < serial_logits.size(); ++i) {
    c.logits = std::max(c.logits, std::abs(double(serial_logits[i]) - sequence_logits[i]));
  }
  for (size_t i = 0; i < serial.data.size(); ++i) {
    const double scale = std::max(1.0, std::abs(double(serial.data[i])));
    c.state = std::max(c.state, std::abs(double(serial.data[i]) - sequence.data[i]) / scale);
  }
  // Asking only for the last token's logits gives that row.
  rwkv::State last_state = model.new_state();
  model.forward_sequence(tokens, last_state, row);
  for (size_t v = 0; v < V; ++v) {
    c.logits = std::max(c.logits, std::abs(double(row[v]) - sequence_logits[(tokens.size() - 1) * V + v]));
  }
  return c;
}

TEST(SequenceMode, FixturesOfEveryVersionAgreeWithSerial) {
  std::ifstream in(rwkv_test::fixtures_dir() / "fixtures.json");
  const auto fixtures = nlohmann::json::parse(in)["models"];
  rwkv_test::ScratchDir dir;
  for (const auto& f : fixtures) {
    const std::string out = (dir / "m.rwkv").string();
    rwkv::convert_model((rwkv_test::fixtures_dir() / f["file"].get<std::string>()).string(), out, {});
    auto model = rwkv::Model::load(out);
    // The fixture's tokens repeated past one 128-token chunk, so chunk boundaries are crossed.
    std::vector<int32_t> tokens;
    while (tokens.size() < 300) {
      for (int32_t t : f["tokens"]) tokens.push_back(t);
    }
    const Comparison c = compare_modes(*model, tokens);
    std::printf("[ measured ] %s sequence vs serial: logits %.3g, state (relative) %.3g\n",
                f["name"].get<std::string>().c_str(), c.logits, c.state);
    EXPECT_LE(c.logits, 2e-4) << f["name"];
    EXPECT_LE(c.state, 2e-4) << f["name"];
  }
}

TEST(SequenceMode, SharedModelsAgreeWithSerialAndTheReference) {
  RWKV_SKIP_WITHOUT_SHARED();
  rwkv_test::ScratchDir dir;
  for (const std::string name : {"4v0-660K", "5v1-730K", "5v2-730K", "6v0-1m", "6v0-3m", "7v0-834K"}) {
    const auto folder = *rwkv_test::shared_dir() / "reference" / "logits" / name;
    std::ifstream in(folder / "manifest.json");
    const auto m = nlohmann::json::parse(in);
    const std::string out = (dir / "m.rwkv").string();
    rwkv::convert_model((*rwkv_test::shared_dir() / m["model_pth"].get<std::string>()).string(), out, {});
    auto model = rwkv::Model::load(out);
    for (const auto& c : m["cases"]) {
      const auto tokens = c["tokens"].get<std::vector<int32_t>>();
      const Comparison cmp = compare_modes(*model, tokens);
      EXPECT_LE(cmp.logits, 2e-4) << name << " " << c["name"];
      EXPECT_LE(cmp.state, 2e-4) << name << " " << c["name"];
      rwkv::State state = model->new_state();
      std::vector<float> logits(tokens.size() * 256);
      model->forward_sequence(tokens, state, logits);
      const auto expected = rwkv_test::read_f32_file(folder / c["logits"].get<std::string>());
      double worst = 0;
      for (size_t i = 0; i < logits.size(); ++i) worst = std::max(worst, std::abs(double(logits[i]) - expected[i]));
      EXPECT_LE(worst, 2e-4) << name << " " << c["name"];
    }
  }
}

TEST(SequenceMode, BadArguments) {
  rwkv_test::ScratchDir dir;
  const std::string out = (dir / "m.rwkv").string();
  rwkv::convert_model((rwkv_test::fixtures_dir() / "tiny-v5.2.pth").string(), out, {});
  auto model = rwkv::Model::load(out);
  rwkv::State state = model->new_state();
  const std::vector<int32_t> tokens = {1, 2, 3};
  std::vector<float> odd(257);
  EXPECT_THROW(model->forward_sequence(tokens, state, odd), rwkv::Error);
  const std::vector<int32_t> bad = {1, 999};
  const rwkv::State before = state;
  EXPECT_THROW(model->forward_sequence(bad, state, {}), rwkv::Error);
  EXPECT_EQ(state, before);
  EXPECT_NO_THROW(model->forward_sequence({}, state, {}));
}

}  // namespace
