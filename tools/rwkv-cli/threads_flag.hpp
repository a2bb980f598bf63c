// --threads, shared by the commands that run a model, declared and applied in one place.
#pragma once

#include "args.hpp"

namespace rwkv_cli {

void declare_threads_flag(ArgParser& args);
// Sizes the kernel thread pool; call after parsing and before the model first runs.
void apply_threads_flag(const ArgParser& args);

}  // namespace rwkv_cli
