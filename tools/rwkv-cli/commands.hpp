// One function per rwkv-cli command, each in its own file; `args` excludes the
// program and command names. Commands throw on error; main() reports it.
#pragma once

namespace rwkv_cli {

int run_convert(int argc, char** argv);
int run_info(int argc, char** argv);
int run_logits(int argc, char** argv);
int run_generate(int argc, char** argv);
int run_chat(int argc, char** argv);
int run_perplexity(int argc, char** argv);

}  // namespace rwkv_cli
