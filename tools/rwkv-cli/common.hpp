// What several commands share: finding the model (the default one when --model is
// absent) and its tokenizer, and reading prompts.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "args.hpp"
#include "rwkv/model.hpp"
#include "rwkv/tokenizer.hpp"

namespace rwkv_cli {

// Environment variable that overrides where the default model is looked for.
inline constexpr const char* kDefaultModelEnv = "RWKV_DEFAULT_MODEL";
inline constexpr const char* kDefaultModelName = "default-rwkv7.rwkv";

// --model if given, else $RWKV_DEFAULT_MODEL, else the default model next to the
// program (models/ beside it, where the build puts it, ../share/rwkv/ when installed,
// or beside it). Throws naming the places tried.
std::string resolve_model_path(const ArgParser& args);
// Model::load, with a one-line note on stderr when `path` is not a native model file
// (it is converted in memory, which `rwkv-cli convert` once makes unnecessary).
std::shared_ptr<const rwkv::Model> load_model(const std::string& path);

// The model's tokenizer: bytes needs no file; World and NeoX read `vocab_flag` if
// given, else their usual file name in the working directory or beside the model.
std::shared_ptr<const rwkv::Tokenizer> load_model_tokenizer(const rwkv::Model& model, const ArgParser& args,
                                                            const std::string& vocab_flag);

// --state-in: a state file written by save_state, or a state-tuning checkpoint (.pth).
rwkv::State read_start_state(const std::string& path, const rwkv::Model& model);

// Prompts are tokenized whole in memory (about 5 bytes of ids per byte of text, in the
// worst case of the bytes tokenizer); larger inputs are refused with a clear error.
inline constexpr uint64_t kMaxInputBytes = uint64_t(1) << 30;

// Raw bytes of a file (prompts need not be valid UTF-8); throws naming the file, also
// when it is larger than max_bytes.
std::string read_file_bytes(const std::string& path, uint64_t max_bytes = kMaxInputBytes);

}  // namespace rwkv_cli
