// --type, --embedding-type and --head-type, declared and read the same way by
// `convert` and `quantize`.
#pragma once

#include "args.hpp"
#include "convert/weight_types.hpp"

namespace rwkv_cli {

// `default_type` empty means --type is required.
void declare_weight_type_flags(ArgParser& args, const char* default_type);
rwkv::convert::WeightTypes read_weight_type_flags(const ArgParser& args);
// "matrices q4_s, embedding f16, head q8_0"
std::string describe_weight_types(const rwkv::convert::WeightTypes& types);

}  // namespace rwkv_cli
