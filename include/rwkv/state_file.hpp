// States as files: save a State after a prompt and resume from it later, or start
// from a state produced by RWKV "state tuning".
#pragma once

#include <string>
#include <string_view>

#include "rwkv/model.hpp"
#include "rwkv/state.hpp"

namespace rwkv {

// Writes `state` with the model's architecture and sizes, to a temporary name that is
// renamed into place when complete. Throws rwkv::Error on I/O failure.
void save_state(const std::string& path, const Model& model, const State& state);

// Reads a state written by save_state. Throws rwkv::Error naming the file when it is
// missing, truncated, corrupt (checksum), of another format version, or made for a
// model of another architecture or size.
State load_state(const std::string& path, const Model& model);

// The bytes save_state writes, and back (`name` stands for them in error messages).
std::string state_to_bytes(const Model& model, const State& state);
State state_from_bytes(std::string_view bytes, const Model& model, const std::string& name = "state bytes");

// Reads a state-tuning checkpoint (.pth holding `blocks.N.att.time_state` [H, N, N]
// per layer) as the initial state of `model` (RWKV 5.x, 6 and 7). The tuned matrices
// are stored transposed relative to the recurrent state and are transposed here.
State load_tuned_state(const std::string& pth_path, const Model& model);

}  // namespace rwkv
