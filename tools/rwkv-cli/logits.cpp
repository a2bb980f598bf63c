#include <stdexcept>

#include "commands.hpp"

namespace rwkv_cli {

int run_logits(int, char**) { throw std::runtime_error("rwkv-cli logits: not built yet"); }

}  // namespace rwkv_cli
