// libFuzzer target: the state-file reader, against the tiny RWKV 5.2 fixture model,
// then one token through the model from the state that loaded.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "convert/to_native.hpp"
#include "fuzz_support.hpp"
#include "rwkv/error.hpp"
#include "rwkv/model.hpp"
#include "rwkv/state_file.hpp"

namespace {

std::shared_ptr<const rwkv::Model> g_model;

// Converts the committed checkpoint in a scratch directory that is removed again at
// once: the model stays usable through its mapping, and nothing is left on disk.
std::shared_ptr<const rwkv::Model> load_fixture_model() {
  const std::string pth = std::string(RWKV_SOURCE_DIR) + "/tests/fixtures/tiny-v5.2.pth";
  std::string dir = (std::filesystem::temp_directory_path() / "rwkv-fuzz-state-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  const std::string native = dir + "/tiny-v5.2.rwkv";
  std::shared_ptr<const rwkv::Model> model;
  try {
    rwkv::convert::convert_pth(pth, native, rwkv::convert::ConvertOptions{});
    model = rwkv::Model::load(native);
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "fuzz_state_file: cannot prepare the model: %s\n", e.what());
    std::filesystem::remove_all(dir);
    std::abort();
  }
  std::filesystem::remove_all(dir);
  return model;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_model = load_fixture_model();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const rwkv_fuzz::MemFile file(data, size);
  rwkv::State state;
  try {
    state = rwkv::load_state(file.path(), *g_model);
  } catch (const rwkv::Error&) {
    return 0;
  }
  const rwkv::State fresh = g_model->new_state();
  if (state.n_layer != fresh.n_layer || state.floats_per_layer != fresh.floats_per_layer ||
      state.data.size() != fresh.data.size()) {
    rwkv_fuzz::property_failed("load_state returned a state of another shape than the model's");
  }
  // Whatever the floats hold (NaN, infinities, huge values), a step must stay defined.
  std::vector<float> logits(g_model->info().n_vocab);
  const int32_t token = data[size - 1] % static_cast<int32_t>(g_model->info().n_vocab);
  g_model->forward(token, state, logits);
  return 0;
}
