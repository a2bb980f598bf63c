// Official-format checkpoints (torch.save zip, bfloat16 storages, as released files
// are) with the tensor names and shapes of a released RWKV model and seeded random
// weights, so that real-size speed and memory can be measured without downloading
// gigabytes. The weights are scaled so that activations stay finite through every
// layer; the text they produce is noise.
//
//   rwkv::RandomCheckpointOptions opt;
//   opt.preset = "rwkv7-0.1b";
//   rwkv::write_random_checkpoint("random-0.1b.pth", opt);   // then convert_model
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace rwkv {

// A released model whose shapes write_random_checkpoint reproduces.
struct CheckpointPreset {
  std::string name;         // "rwkv7-0.1b"
  std::string released_as;  // "RWKV-x070-World-0.1B"
};

// Every preset: "rwkv7-0.1b", "rwkv7-1.5b", "rwkv4-169m".
std::vector<CheckpointPreset> checkpoint_presets();

struct RandomCheckpointOptions {
  std::string preset;    // a CheckpointPreset's name
  uint64_t seed = 1;     // each tensor's values follow from the seed and its name alone
  uint32_t n_layer = 0;  // 0 = the preset's
  // Called as each tensor is about to be written: (tensors begun, tensors in all, bytes
  // of the file written so far).
  std::function<void(size_t done, size_t total, uint64_t bytes_written)> progress;
};

// Writes the checkpoint to a temporary name beside `path` and renames it into place.
// Throws rwkv::Error for an unknown preset or naming the file when it cannot be written.
void write_random_checkpoint(const std::string& path, const RandomCheckpointOptions& options);

}  // namespace rwkv
