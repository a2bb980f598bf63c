// rwkv-gen-model: writes an official-format checkpoint (torch.save zip, bfloat16
// storages, as released files are) with the tensor names and shapes of a released
// RWKV model and seeded random weights (rwkv/random_checkpoint.hpp), so that real-size
// speed and memory can be measured without downloading gigabytes.
#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "args.hpp"
#include "rwkv/random_checkpoint.hpp"

namespace {

using rwkv_cli::ArgParser;
using rwkv_cli::UsageError;

// The most --n-layer takes: released models have at most 61 layers.
constexpr int64_t kMaxLayers = 1024;

int run(int argc, char** argv) {
  const std::vector<rwkv::CheckpointPreset> presets = rwkv::checkpoint_presets();
  std::string names;
  for (const rwkv::CheckpointPreset& p : presets) {
    names += fmt::format("{}{} ({})", names.empty() ? "" : ", ", p.name, p.released_as);
  }
  ArgParser args("gen-model", "--preset NAME --out FILE.pth [--seed N] [--n-layer N]",
                 "Writes a torch.save checkpoint (bfloat16) with the tensor names and shapes of a released RWKV\n"
                 "model and seeded random weights, for benchmarks. Presets: " + names + ".");
  args.program("rwkv-gen-model");
  args.option("preset", "NAME", "which released model's shapes")
      .option("out", "FILE", "output .pth (written to a temporary name, then renamed)")
      .option("seed", "N", "random seed", "1")
      .option("n-layer", "N", "override the number of layers (0 = the preset's)", "0");
  if (!args.parse(argc, argv)) return 0;
  rwkv::RandomCheckpointOptions options;
  options.preset = args.get("preset");
  bool known = false;
  for (const rwkv::CheckpointPreset& p : presets) known = known || p.name == options.preset;
  if (!known) {
    throw UsageError(fmt::format("flag --preset: unknown preset '{}': expected one of {}", options.preset, names));
  }
  options.n_layer = static_cast<uint32_t>(args.get_int("n-layer", 0, kMaxLayers));
  options.seed = static_cast<uint64_t>(args.get_int("seed", 0, INT64_MAX));
  bool all_begun = false;
  options.progress = [&](size_t done, size_t total, uint64_t written) {
    fmt::print(stderr, "\r{}/{} tensors, {:.0f} MB", done, total, double(written) / 1e6);
    all_begun = done == total;
  };
  const std::string out = args.get("out");
  try {
    rwkv::write_random_checkpoint(out, options);
  } catch (...) {
    // Once every tensor is out, the progress line ends before a failed close or rename
    // is reported.
    if (all_begun) fmt::print(stderr, "\n");
    throw;
  }
  fmt::print(stderr, "\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc - 1, argv + 1);
  } catch (const UsageError& e) {
    fmt::print(stderr, "rwkv-gen-model: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "rwkv-gen-model: error: {}\n", e.what());
    return 1;
  }
}
