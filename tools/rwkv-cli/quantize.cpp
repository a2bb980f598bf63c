#include <fmt/format.h>

#include "args.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "rwkv/convert.hpp"
#include "weight_type_flags.hpp"

namespace rwkv_cli {

int run_quantize(int argc, char** argv) {
  ArgParser args("quantize", "IN OUT --type f32|f16|bf16|q8_0|q4_s [--embedding-type T] [--head-type T] "
                             "[--allow-requantize]",
                 "Stores a native model's large matrices in another weight type: each is widened to float32\n"
                 "and encoded again. Vectors, decays, norms and LoRA matrices stay float32.");
  args.positional("IN", "the native model file to read")
      .positional("OUT", "the native model file to write (written to a temporary name, then renamed)");
  declare_weight_type_flags(args, nullptr);
  args.flag("allow-requantize",
            "allow going from one lossy type (f16, bf16, q8_0, q4_s) to a different one: the values are rounded "
            "twice and both errors add up, so converting the original checkpoint is better");
  if (!args.parse(argc, argv)) return 0;

  args.require("type");
  rwkv::ConvertOptions options;
  read_weight_type_flags(args, /*with_tokenizer=*/false, options);
  options.allow_requantize = args.has("allow-requantize");
  ProgressBar bar("quantizing");
  options.progress = [&](size_t done, size_t total) { bar.update(done, total); };
  const std::string input = args.get("IN");
  const std::string output = args.get("OUT");
  const rwkv::ConvertReport report =
      convert_with_flags(args, [&] { return rwkv::quantize_model(input, output, options); });
  bar.finish();
  fmt::print(stderr, "{}: RWKV {}, {} tensors re-encoded ({}) -> {}\n", input, rwkv::arch_name(report.info.arch),
             report.converted_tensors, report.weight_types, output);
  return 0;
}

}  // namespace rwkv_cli
