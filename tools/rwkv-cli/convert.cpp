#include <fmt/format.h>

#include "args.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "rwkv/convert.hpp"
#include "rwkv/error.hpp"
#include "rwkv/io.hpp"
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
  rwkv::ConvertOptions options;
  read_weight_type_flags(args, /*with_tokenizer=*/true, options);
  ProgressBar bar("converting");
  options.progress = [&](size_t done, size_t total) { bar.update(done, total); };
  const std::string output = args.get("OUTPUT");
  const rwkv::ConvertReport report =
      convert_with_flags(args, [&] { return rwkv::convert_model(input, output, options); });
  bar.finish();
  const rwkv::ModelInfo& info = report.info;
  fmt::print(stderr, "{} ({}): RWKV {}, {} layers, n_embd {}, n_vocab {}, tokenizer {}, {} -> {}\n", input,
             report.source_format, rwkv::arch_name(info.arch), info.n_layer, info.n_embd, info.n_vocab,
             rwkv::tokenizer_kind_name(info.tokenizer), report.weight_types, output);
  for (const std::string& name : report.ignored_tensors) {
    fmt::print(stderr, "note: tensor '{}' is not used by RWKV {} and was left out\n", rwkv::printable(name),
               rwkv::arch_name(info.arch));
  }
  return 0;
}

}  // namespace rwkv_cli
