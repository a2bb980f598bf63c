#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

#include "args.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "rwkv/machine.hpp"
#include "rwkv/model.hpp"

namespace rwkv_cli {

int run_info(int argc, char** argv) {
  ArgParser args("info", "--model MODEL [--tensors]", "Prints a model's architecture, sizes, data types and file size.");
  args.option("model", "MODEL", "a model: native (from 'rwkv-cli convert') or any format convert reads").flag("tensors", "also list every tensor");
  if (!args.parse(argc, argv)) return 0;
  const std::string path = args.get("model");
  auto model = load_model(path);
  const rwkv::ModelInfo& info = model->info();
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;  // dtype -> (tensors, bytes)
  uint64_t params = 0;
  for (const rwkv::TensorInfo& t : model->tensors()) {
    auto& [count, bytes] = by_type[t.dtype];
    ++count;
    bytes += t.bytes;
    uint64_t n = 1;
    for (uint64_t d : t.shape) n *= d;
    params += n;
  }
  fmt::print("file:         {}\n", model->path());
  if (const std::string format = rwkv::model_file_format(path); format != "native") {
    const rwkv::SourceSummary source = rwkv::summarize_source_file(path);
    std::vector<std::string> types;
    for (const auto& [type, count] : source.tensor_types) types.push_back(fmt::format("{} ({} tensors)", type, count));
    fmt::print("source:       {}, {}\n", source.format, fmt::join(types, ", "));
    fmt::print("converted in memory; the sizes below are of the native form\n");
  }
  fmt::print("file size:    {} bytes ({:.2f} MiB)\n", model->file_bytes(), model->file_bytes() / 1048576.0);
  fmt::print("architecture: RWKV {}\n", rwkv::arch_name(info.arch));
  fmt::print("n_layer:      {}\n", info.n_layer);
  fmt::print("n_embd:       {}\n", info.n_embd);
  fmt::print("n_vocab:      {}\n", info.n_vocab);
  if (info.n_head > 0) {
    fmt::print("n_head:       {}\n", info.n_head);
    fmt::print("head_size:    {}\n", info.head_size);
  }
  fmt::print("n_ffn:        {}\n", info.n_ffn);
  fmt::print("tokenizer:    {}\n", rwkv::tokenizer_kind_name(info.tokenizer));
  fmt::print("parameters:   {}\n", params);
  fmt::print("kernels:      {}\n", rwkv::kernel_isa());
  const auto tensors = model->tensors();
  const auto packed = std::count_if(tensors.begin(), tensors.end(), [](const rwkv::TensorInfo& t) { return t.packed; });
  if (packed > 0) {
    fmt::print("packed:       {} tensors rearranged at load for these kernels (RWKV_REPACK=0: as stored)\n", packed);
  }
  for (const auto& [dtype, stats] : by_type) {
    fmt::print("{:<13} {} tensors, {} bytes\n", dtype + ":", stats.first, stats.second);
  }
  if (args.has("tensors")) {
    for (const rwkv::TensorInfo& t : model->tensors()) {
      fmt::print("  {:<40} {:<4} [{}]\n", t.name, t.dtype, fmt::join(t.shape, ", "));
    }
  }
  return 0;
}

}  // namespace rwkv_cli
