#include "common.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "rwkv/error.hpp"
#include "rwkv/io.hpp"
#include "rwkv/state_file.hpp"

namespace rwkv_cli {

namespace {

std::filesystem::path program_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path() : exe.parent_path();
}

}  // namespace

std::string resolve_model_path(const ArgParser& args) {
  if (args.has("model")) return args.get("model");
  if (const char* env = std::getenv(kDefaultModelEnv); env != nullptr && *env != '\0') return env;
  const auto dir = program_dir();
  const std::vector<std::filesystem::path> candidates = {
      dir / "models" / kDefaultModelName, dir / ".." / "share" / "rwkv" / kDefaultModelName,
      dir / kDefaultModelName};
  for (const auto& c : candidates) {
    if (std::filesystem::is_regular_file(c)) return std::filesystem::weakly_canonical(c).string();
  }
  std::string tried;
  for (const auto& c : candidates) tried += "\n  " + c.lexically_normal().string();
  throw rwkv::Error(fmt::format("no --model given and no default model found (set ${} or pass --model); tried:{}",
                                kDefaultModelEnv, tried));
}

std::shared_ptr<const rwkv::Model> load_model(const std::string& path) {
  std::string format = "unknown";
  try {
    format = rwkv::model_file_format(path);
  } catch (const rwkv::Error&) {
    // Model::load names the problem.
  }
  if (format != "native" && format != "unknown") {
    fmt::print(stderr, "note: {} is a {} model, converted in memory; 'rwkv-cli convert {} OUT.rwkv' once makes "
               "loading instant\n", path, format, path);
  }
  return rwkv::Model::load(path);
}

std::shared_ptr<const rwkv::Tokenizer> load_model_tokenizer(const rwkv::Model& model, const ArgParser& args,
                                                            const std::string& vocab_flag) {
  // A flag given is used as it is, even "" (the library's "look for the usual file").
  if (args.has(vocab_flag)) return rwkv::load_tokenizer(model.info().tokenizer, args.get(vocab_flag));
  return rwkv::load_model_tokenizer(model);
}

rwkv::State read_start_state(const std::string& path, const rwkv::Model& model) {
  const bool is_pth = path.size() >= 4 && path.compare(path.size() - 4, 4, ".pth") == 0;
  return is_pth ? rwkv::load_tuned_state(path, model) : rwkv::load_state(path, model);
}

std::string read_file_bytes(const std::string& path, uint64_t max_bytes) {
  return rwkv::read_regular_file(path, "the input file", max_bytes);
}

}  // namespace rwkv_cli
