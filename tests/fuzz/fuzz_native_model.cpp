// libFuzzer target: the native model reader; a model that loads runs a token one at a
// time and two in sequence mode, so that damaged weights reach the kernels.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "fuzz_support.hpp"
#include "rwkv/error.hpp"
#include "rwkv/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::shared_ptr<const rwkv::Model> model;
  {
    // Closing the descriptor right after the load also checks that the model keeps
    // what it needs (the mapping) rather than the path.
    const rwkv_fuzz::MemFile file(data, size);
    try {
      model = rwkv::Model::load(file.path());
    } catch (const rwkv::Error&) {
      return 0;
    }
  }
  const rwkv::ModelInfo& info = model->info();
  (void)model->tensors();
  rwkv::State state = model->new_state();
  std::vector<float> logits(info.n_vocab);
  const auto token = [&](size_t i) { return static_cast<int32_t>(data[i % size] % info.n_vocab); };
  try {
    model->forward(token(size - 1), state, logits);
    const int32_t sequence[2] = {token(size - 2), token(size - 3)};
    model->forward_sequence(sequence, state, logits);
  } catch (const rwkv::Error&) {
    return 0;
  }
  return 0;
}
