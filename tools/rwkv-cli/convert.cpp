#include <fmt/format.h>

#include "args.hpp"
#include "rwkv/error.hpp"
#include "commands.hpp"
#include "convert/to_native.hpp"
#include "io/printable.hpp"
#include "progress.hpp"
#include "weight_type_flags.hpp"

namespace rwkv_cli {

int run_convert(int argc, char** argv) {
  ArgParser args("convert",
                 "INPUT.pth OUTPUT [--type f32|f16|bf16|q8_0|q4_s] [--embedding-type T] [--head-type T] "
                 "[--tokenizer bytes|world|neox]",
                 "Converts an official RWKV PyTorch checkpoint (v4, v5.x, v6, v7) to the native format.\n"
                 "Matrices are stored in --type; vectors, decays, norms and LoRA matrices stay float32.");
  args.positional("INPUT.pth", "the checkpoint, as torch.save wrote it")
      .positional("OUTPUT", "the native model file to write (written to a temporary name, then renamed)");
  declare_weight_type_flags(args, "f32");
  args.option("tokenizer", "KIND", "bytes, world or neox (default: inferred from n_vocab)");
  if (!args.parse(argc, argv)) return 0;

  rwkv::convert::ConvertOptions options;
  options.types = read_weight_type_flags(args);
  if (args.has("tokenizer")) options.tokenizer = parse_flag(args, "tokenizer", rwkv::parse_tokenizer_kind);
  ProgressBar bar("converting");
  options.progress = [&](size_t done, size_t total) { bar.update(done, total); };
  const std::string input = args.get("INPUT.pth");
  const std::string output = args.get("OUTPUT");
  auto result = rwkv::convert::convert_pth(input, output, options);
  bar.finish();
  const rwkv::ModelInfo& info = result.info;
  fmt::print(stderr, "{}: RWKV {} , {} layers, n_embd {}, n_vocab {}, tokenizer {}, {} -> {}\n", input,
             rwkv::arch_name(info.arch), info.n_layer, info.n_embd, info.n_vocab,
             rwkv::tokenizer_kind_name(info.tokenizer), describe_weight_types(options.types), output);
  for (const std::string& name : result.ignored_tensors) {
    fmt::print(stderr, "note: tensor '{}' is not used by RWKV {} and was left out\n", rwkv::io::printable(name),
               rwkv::arch_name(info.arch));
  }
  return 0;
}

}  // namespace rwkv_cli
