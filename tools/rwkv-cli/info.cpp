#include <stdexcept>

#include "commands.hpp"

namespace rwkv_cli {

int run_info(int, char**) { throw std::runtime_error("rwkv-cli info: not built yet"); }

}  // namespace rwkv_cli
