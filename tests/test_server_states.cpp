// rwkv-server's --state-dir with an official state-tuning checkpoint (NAME.pth): made
// here with the tests' torch.save writer, which the public API does not offer, so this
// test is an internal one (test_server.cpp covers NAME.state through the public API).
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <csignal>

#include "pth_writer.hpp"
#include "rwkv/model.hpp"
#include "rwkv/server.hpp"
#include "rwkv/state_file.hpp"
#include "test_support.hpp"

namespace {

using nlohmann::json;

// The greedy completion of `prompt` from start state `state` on a server whose
// --state-dir is `dir`.
std::string completion_from(const std::filesystem::path& dir, const std::string& state, const std::string& prompt,
                            std::shared_ptr<const rwkv::Model> model, std::shared_ptr<const rwkv::Tokenizer> tokenizer) {
  rwkv::ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.state_dir = dir.string();
  rwkv::Server server(options, std::move(model), std::move(tokenizer));
  server.start();
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(60);
  const json body = {{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}, {"state", state}};
  auto res = client.Post("/v1/completions", body.dump(), "application/json");
  EXPECT_TRUE(res);
  if (!res) return "";
  EXPECT_EQ(res->status, 200) << res->body;
  return json::parse(res->body)["choices"][0]["text"].get<std::string>();
}

TEST(ServerStates, StateTuningCheckpointStartsRequestsAsItsStateFileDoes) {
  ::signal(SIGPIPE, SIG_IGN);
  rwkv_test::ScratchDir dir;
  std::shared_ptr<const rwkv::Model> model = rwkv::Model::load(RWKV_DEFAULT_MODEL_PATH);
  std::shared_ptr<const rwkv::Tokenizer> tokenizer = rwkv::load_model_tokenizer(*model);
  const auto& info = model->info();
  const int64_t H = info.n_head, N = info.head_size;
  rwkv_test::CheckpointSpec spec;
  for (uint32_t layer = 0; layer < info.n_layer; ++layer) {
    std::vector<float> values(size_t(H * N * N));
    for (size_t i = 0; i < values.size(); ++i) values[i] = 5.0f * std::sin(float(layer * 7 + i));
    const std::string key = std::to_string(layer);
    spec.storages[key] = {"FloatStorage", int64_t(values.size()), rwkv_test::float_bytes(values)};
    spec.tensors.push_back({"blocks." + key + ".att.time_state", key, {H, N, N}, {N * N, N, 1}, 0});
  }
  const std::filesystem::path pth_dir = dir / "pth", state_dir = dir / "state";
  std::filesystem::create_directories(pth_dir);
  std::filesystem::create_directories(state_dir);
  rwkv_test::write_file(pth_dir / "tuned.pth", rwkv_test::make_checkpoint(spec));
  // The same state as our state file, through the library's reader of tuned checkpoints.
  rwkv::save_state((state_dir / "tuned.state").string(), *model,
                   rwkv::load_tuned_state((pth_dir / "tuned.pth").string(), *model));

  const std::string prompt = "The Python interpreter";
  const std::string from_pth = completion_from(pth_dir, "tuned", prompt, model, tokenizer);
  EXPECT_EQ(from_pth, completion_from(state_dir, "tuned", prompt, model, tokenizer));
  // And the tuned state does change the answer.
  rwkv::ServerOptions plain;
  plain.host = "127.0.0.1";
  plain.port = 0;
  rwkv::Server server(plain, model, tokenizer);
  server.start();
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Post("/v1/completions", json({{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}}).dump(),
                         "application/json");
  ASSERT_TRUE(res);
  EXPECT_NE(json::parse(res->body)["choices"][0]["text"].get<std::string>(), from_pth);
}

}  // namespace
