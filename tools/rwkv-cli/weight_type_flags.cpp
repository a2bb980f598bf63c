#include "weight_type_flags.hpp"

#include <fmt/format.h>

namespace rwkv_cli {

void declare_weight_type_flags(ArgParser& args, const char* default_type) {
  const std::string names = rwkv::dtype_names();
  if (default_type != nullptr) {
    args.option("type", "TYPE", "weight type of the large matrices: " + names, default_type);
  } else {
    args.option("type", "TYPE", "weight type of the large matrices: " + names + " (required)");
  }
  args.option("embedding-type", "TYPE",
              "type of emb.weight (default: f16 for q8_0 and q4_s, since one row is read per token; else --type)")
      .option("head-type", "TYPE", "type of head.weight (default: q8_0 for q4_s, which keeps the logits close; "
                                   "else --type)");
}

rwkv::convert::WeightTypes read_weight_type_flags(const ArgParser& args) {
  args.require("type");
  const rwkv::DType matrices = parse_flag(args, "type", rwkv::parse_dtype);
  std::optional<rwkv::DType> embedding, head;
  if (args.has("embedding-type")) embedding = parse_flag(args, "embedding-type", rwkv::parse_dtype);
  if (args.has("head-type")) head = parse_flag(args, "head-type", rwkv::parse_dtype);
  return rwkv::convert::WeightTypes::for_type(matrices, embedding, head);
}

std::string describe_weight_types(const rwkv::convert::WeightTypes& types) {
  return fmt::format("matrices {}, embedding {}, head {}", rwkv::dtype_name(types.matrices),
                     rwkv::dtype_name(types.embedding), rwkv::dtype_name(types.head));
}

}  // namespace rwkv_cli
