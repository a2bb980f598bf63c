// One function per rwkv-cli command, each in its own file; `args` excludes the
// program and command names. Commands throw on error; main() reports it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "rwkv/tokenizer.hpp"

namespace rwkv_cli {

int run_convert(int argc, char** argv);
int run_quantize(int argc, char** argv);
int run_info(int argc, char** argv);
int run_logits(int argc, char** argv);
int run_generate(int argc, char** argv);
int run_chat(int argc, char** argv);
int run_perplexity(int argc, char** argv);
int run_tokenize(int argc, char** argv);
int run_bench_tokenizer(int argc, char** argv);
int run_bench(int argc, char** argv);

// What `tokenize` and `bench-tokenizer` read from --file at most: as much as a
// vocabulary file may hold (256 MiB).
inline constexpr uint64_t kMaxTextFileBytes = uint64_t(256) << 20;

// Loads a tokenizer for a command; an empty path means the kind's usual file name in the
// working directory.
std::unique_ptr<rwkv::Tokenizer> load_cli_tokenizer(rwkv::TokenizerKind kind, const std::string& vocab_path);

}  // namespace rwkv_cli
