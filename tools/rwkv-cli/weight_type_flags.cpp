#include "weight_type_flags.hpp"

#include <fmt/format.h>

#include <vector>

namespace rwkv_cli {

namespace {

// "f32, f16, bf16, q8_0 or q4_s"
std::string weight_type_list() {
  const std::vector<std::string> names = rwkv::weight_type_names();
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

std::string flag_value(const ArgParser& args, const char* flag) {
  const std::string value = args.get(flag);
  return value.empty() ? kEmptyFlagValue : value;
}

}  // namespace

void declare_weight_type_flags(ArgParser& args, const char* default_type) {
  const std::string names = weight_type_list();
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

void read_weight_type_flags(const ArgParser& args, bool with_tokenizer, rwkv::ConvertOptions& options) {
  options.type = flag_value(args, "type");
  if (args.has("embedding-type")) options.embedding_type = flag_value(args, "embedding-type");
  if (args.has("head-type")) options.head_type = flag_value(args, "head-type");
  if (with_tokenizer && args.has("tokenizer")) options.tokenizer = flag_value(args, "tokenizer");
}

void throw_flag_error(const ArgParser& args, const rwkv::ConvertOptionError& error) {
  std::string flag = error.option();
  for (char& c : flag) {
    if (c == '_') c = '-';
  }
  if (args.has(flag) && args.get(flag).empty()) {
    // The library saw kEmptyFlagValue: the message is about "".
    if (flag == "tokenizer") parse_flag(args, flag, rwkv::parse_tokenizer_kind);
    throw UsageError(fmt::format("flag --{}: unknown weight type '': expected {}", flag, weight_type_list()));
  }
  throw UsageError("flag --" + flag + ": " + error.problem());
}

}  // namespace rwkv_cli
