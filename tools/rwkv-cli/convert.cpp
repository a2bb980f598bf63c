#include <stdexcept>

#include "commands.hpp"

namespace rwkv_cli {

int run_convert(int, char**) { throw std::runtime_error("rwkv-cli convert: not built yet"); }

}  // namespace rwkv_cli
