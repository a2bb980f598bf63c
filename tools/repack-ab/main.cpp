// rwkv-repack-ab: the same model file loaded twice in one process, as its file stores it
// (RWKV_REPACK=0) and packed for the kernels in use, then decode steps of each taken in
// turn, so that both meet the same machine: on a shared host the memory bandwidth moves
// by a fifth within a minute, and runs in separate processes minutes apart could not
// tell a 10% change from the noise. Prints medians and quartiles of ms per step.
#include <fmt/format.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "args.hpp"
#include "rwkv/model.hpp"
#include "rwkv/threads.hpp"

namespace {

using rwkv_cli::ArgParser;

struct Stepper {
  std::shared_ptr<const rwkv::Model> model;
  std::vector<rwkv::State> states;
  std::vector<float> logits;
  std::vector<int32_t> tokens;
  std::vector<double> ms;

  void step(uint32_t s) {
    const size_t V = model->info().n_vocab;
    std::vector<rwkv::BatchItem> items(states.size());
    for (size_t i = 0; i < states.size(); ++i) {
      tokens[i] = int32_t((s * 31 + i * 7) % std::min<size_t>(V, 1000));
      items[i].tokens = std::span<const int32_t>(&tokens[i], 1);
      items[i].state = &states[i];
      items[i].logits = std::span<float>(logits.data() + i * V, V);
    }
    const auto start = std::chrono::steady_clock::now();
    model->forward_batch(items);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
};

Stepper load(const std::string& path, bool packed, uint32_t batch) {
  if (!packed) ::setenv("RWKV_REPACK", "0", 1);
  Stepper s;
  s.model = rwkv::Model::load(path);
  ::unsetenv("RWKV_REPACK");
  for (uint32_t i = 0; i < batch; ++i) s.states.push_back(s.model->new_state());
  s.logits.resize(size_t(batch) * s.model->info().n_vocab);
  s.tokens.resize(batch);
  return s;
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[size_t(q * double(v.size() - 1) + 0.5)];
}

int run(int argc, char** argv) {
  ArgParser args("repack-ab", "--model FILE [--steps N] [--batch B] [--threads N]",
                 "Loads FILE twice, as stored (RWKV_REPACK=0) and packed for the kernels in use, and times\n"
                 "decode steps of the two alternately in one process.");
  args.program("rwkv-repack-ab");
  args.option("model", "FILE", "model file (.rwkv)")
      .option("steps", "N", "timed steps of each, after 2 untimed ones", "40")
      .option("batch", "B", "sequences per step", "1")
      .option("threads", "N", "threads", "2");
  if (!args.parse(argc, argv)) return 0;
  args.require("model");
  const auto steps = uint32_t(args.get_int("steps", 1, 100000));
  const auto batch = uint32_t(args.get_int("batch", 1, 1024));
  rwkv::set_thread_count(unsigned(args.get_int("threads", 1, 1024)));
  Stepper stored = load(args.get("model"), false, batch);
  Stepper packed = load(args.get("model"), true, batch);
  for (uint32_t s = 0; s < steps + 2; ++s) {
    stored.step(s);
    packed.step(s);
  }
  for (Stepper* x : {&stored, &packed}) {
    x->ms.erase(x->ms.begin(), x->ms.begin() + 2);
    fmt::print("{:6} batch {}: median {:.2f} ms/step (quartiles {:.2f}, {:.2f}) over {} steps\n",
               x == &stored ? "stored" : "packed", batch, quantile(x->ms, 0.5), quantile(x->ms, 0.25),
               quantile(x->ms, 0.75), x->ms.size());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc - 1, argv + 1);
  } catch (const rwkv_cli::UsageError& e) {
    fmt::print(stderr, "rwkv-repack-ab: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "rwkv-repack-ab: error: {}\n", e.what());
    return 1;
  }
}
