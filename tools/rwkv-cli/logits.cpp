#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "args.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "rwkv/error.hpp"
#include "rwkv/model.hpp"
#include "threads_flag.hpp"

namespace rwkv_cli {

int run_logits(int argc, char** argv) {
  ArgParser args("logits", "--model MODEL --tokens 34,105,110 --out FILE [--sequence]",
                 "Feeds the tokens one by one from the initial (zero) state and writes the logits after every\n"
                 "token as raw little-endian float32, row-major [T, n_vocab].");
  args.option("model", "MODEL", "model file: native, or any format convert reads (converted in memory)")
      .option("tokens", "IDS", "comma-separated token ids")
      .option("out", "FILE", "output file (written to a temporary name, then renamed)")
      .flag("sequence", "compute in sequence mode (many tokens per pass over the weights); same output");
  declare_threads_flag(args);
  if (!args.parse(argc, argv)) return 0;
  apply_threads_flag(args);
  const std::string out_path = args.get("out");
  const std::vector<int64_t> ids = args.get_int_list("tokens", 0, INT32_MAX);
  auto model = load_model(args.get("model"));
  const uint32_t n_vocab = model->info().n_vocab;
  for (int64_t id : ids) {
    if (id < 0 || id >= n_vocab) {
      throw UsageError(fmt::format("flag --tokens: token id {} is out of range (n_vocab = {})", id, n_vocab));
    }
  }
  rwkv::State state = model->new_state();
  std::vector<float> logits(n_vocab);
  const std::string tmp = out_path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw rwkv::Error(fmt::format("{}: cannot create: {}", tmp, std::strerror(errno)));
  bool ok = true;
  try {
    if (args.has("sequence")) {
      const std::vector<int32_t> tokens(ids.begin(), ids.end());
      std::vector<float> all(tokens.size() * n_vocab);
      model->forward_sequence(tokens, state, all);
      ok = std::fwrite(all.data(), sizeof(float), all.size(), f) == all.size();
    } else {
      for (int64_t id : ids) {
        model->forward(static_cast<int32_t>(id), state, logits);
        ok = ok && std::fwrite(logits.data(), sizeof(float), logits.size(), f) == logits.size();
      }
    }
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), out_path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw rwkv::Error(fmt::format("{}: write failed: {}", out_path, std::strerror(errno)));
  }
  return 0;
}

}  // namespace rwkv_cli
