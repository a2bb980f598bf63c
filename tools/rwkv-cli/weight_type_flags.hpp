// --type, --embedding-type and --head-type, declared and read the same way by
// `convert` and `quantize`, and the library's option errors reported as these flags.
#pragma once

#include <string>

#include "args.hpp"
#include "rwkv/convert.hpp"

namespace rwkv_cli {

// `default_type` empty means --type is required.
void declare_weight_type_flags(ArgParser& args, const char* default_type);
// Copies the flags given into `options` (and --tokenizer, where `with_tokenizer`); the
// library checks them, in its order, when it converts.
void read_weight_type_flags(const ArgParser& args, bool with_tokenizer, rwkv::ConvertOptions& options);

// A flag given as "" is an error, where the library takes "" for its default: such a
// flag is passed on as this value, which the library refuses as no type or tokenizer.
inline constexpr const char* kEmptyFlagValue = " ";

// Why the library refused `flag` (a ConvertOptionError): a UsageError naming the flag.
[[noreturn]] void throw_flag_error(const ArgParser& args, const rwkv::ConvertOptionError& error);

// Calls convert() (rwkv::convert_model or quantize_model), reporting an option the
// library refuses as the flag it came from.
template <typename Convert>
rwkv::ConvertReport convert_with_flags(const ArgParser& args, Convert&& convert) {
  try {
    return convert();
  } catch (const rwkv::ConvertOptionError& e) {
    throw_flag_error(args, e);
  }
}

}  // namespace rwkv_cli
