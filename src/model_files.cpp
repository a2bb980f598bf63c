// Finding the files that go with a model: its tokenizer's vocabulary and the shipped
// default model.
#include <fmt/format.h>

#include <cstdlib>
#include <dlfcn.h>
#include <filesystem>
#include <string>
#include <vector>

#include "rwkv/error.hpp"
#include "rwkv/model.hpp"

namespace rwkv {

std::unique_ptr<Tokenizer> load_model_tokenizer(const Model& model, const std::string& vocab_path) {
  const TokenizerKind kind = model.info().tokenizer;
  if (kind == TokenizerKind::Bytes) return load_tokenizer(kind, "");
  if (kind == TokenizerKind::World && vocab_path.empty() && !model.embedded_vocabulary().empty()) {
    return load_world_tokenizer_text(model.path() + " (embedded vocabulary)", model.embedded_vocabulary());
  }
  std::string path = vocab_path;
  if (path.empty()) {
    const std::string name = default_vocab_filename(kind);
    const auto beside_model = std::filesystem::path(model.path()).parent_path() / name;
    path = std::filesystem::exists(name) || !std::filesystem::exists(beside_model) ? name : beside_model.string();
  }
  return load_tokenizer(kind, path);
}

std::string default_model_path() {
  constexpr const char* kEnv = "RWKV_DEFAULT_MODEL";
  if (const char* env = std::getenv(kEnv); env != nullptr && *env != '\0') return env;
  // Set by CMakeLists.txt: the installation's data directory seen from the library's
  // own directory (so that an installation moved elsewhere, or made with
  // `cmake --install --prefix`, finds its model), the configured data directory, then
  // this build tree.
  std::vector<std::string> candidates;
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&default_model_path), &self) != 0 && self.dli_fname != nullptr) {
    std::error_code ec;
    const auto library = std::filesystem::canonical(self.dli_fname, ec);
    if (!ec) candidates.push_back((library.parent_path() / RWKV_LIBDIR_TO_DEFAULT_MODEL).lexically_normal().string());
  }
  candidates.push_back(RWKV_INSTALLED_DEFAULT_MODEL);
  candidates.push_back(RWKV_BUILD_TREE_DEFAULT_MODEL);
  for (const std::string& c : candidates) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(c, ec)) return c;
  }
  std::string tried;
  for (const std::string& c : candidates) tried += "\n  " + c;
  throw Error(fmt::format("no default model found (set ${} to a model file); tried:{}", kEnv, tried));
}

}  // namespace rwkv
