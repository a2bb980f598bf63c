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
                 "INPUT OUTPUT [--type f32|f16|bf16|q8_0|q4_s] [--embedding-type T] [--head-type T] "
                 "[--tokenizer bytes|world|neox]",
                 "Converts an RWKV model (v4, v5.x, v6, v7) to the native format. INPUT is told apart by its\n"
                 "content: an official PyTorch checkpoint (.pth), an rwkv.cpp .bin, a llama.cpp GGUF file, a\n"
                 ".safetensors file or a Hugging Face directory (config.json + safetensors or pytorch_model.bin).\n"
                 "Matrices are stored in --type; vectors, decays, norms and LoRA matrices stay float32.\n"
                 "--type auto (the default): f32 for a .pth; for other formats the type that loses nothing more than the\n"
                 "file already lost (F32 -> f32, F16 -> f16, Q8_0 -> q8_0 bit for bit, other quantized -> f16).");
  args.positional("INPUT", "the model to convert")
      .positional("OUTPUT", "the native model file to write (written to a temporary name, then renamed)");
  declare_weight_type_flags(args, "auto");
  args.option("tokenizer", "KIND", "bytes, world or neox (default: inferred from n_vocab)");
  if (!args.parse(argc, argv)) return 0;

  const std::string input = args.get("INPUT");
  const rwkv::convert::SourceModel source = rwkv::convert::open_source(input);
  rwkv::convert::ConvertOptions options;
  if (args.get("type") != "auto") {
    options.types = read_weight_type_flags(args);
  } else {
    options.types = source.format == "pth" ? rwkv::convert::WeightTypes::for_type(rwkv::DType::F32)
                                           : rwkv::convert::lossless_types(source);
    if (args.has("embedding-type")) options.types.embedding = parse_flag(args, "embedding-type", rwkv::parse_dtype);
    if (args.has("head-type")) options.types.head = parse_flag(args, "head-type", rwkv::parse_dtype);
  }
  if (args.has("tokenizer")) options.tokenizer = parse_flag(args, "tokenizer", rwkv::parse_tokenizer_kind);
  ProgressBar bar("converting");
  options.progress = [&](size_t done, size_t total) { bar.update(done, total); };
  const std::string output = args.get("OUTPUT");
  auto result = rwkv::convert::convert_source(source, output, options);
  bar.finish();
  const rwkv::ModelInfo& info = result.info;
  fmt::print(stderr, "{} ({}): RWKV {}, {} layers, n_embd {}, n_vocab {}, tokenizer {}, {} -> {}\n", input,
             source.format, rwkv::arch_name(info.arch), info.n_layer, info.n_embd, info.n_vocab,
             rwkv::tokenizer_kind_name(info.tokenizer), describe_weight_types(options.types), output);
  for (const std::string& name : result.ignored_tensors) {
    fmt::print(stderr, "note: tensor '{}' is not used by RWKV {} and was left out\n", rwkv::io::printable(name),
               rwkv::arch_name(info.arch));
  }
  return 0;
}

}  // namespace rwkv_cli
