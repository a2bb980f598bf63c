#include <fmt/format.h>

#include <cstdint>
#include <cstdio>

#include "args.hpp"
#include "commands.hpp"
#include "rwkv/error.hpp"
#include "rwkv/io.hpp"
#include "rwkv/tokenizer.hpp"

namespace rwkv_cli {

std::unique_ptr<rwkv::Tokenizer> load_cli_tokenizer(rwkv::TokenizerKind kind, const std::string& vocab_path) {
  std::string path = vocab_path.empty() ? rwkv::default_vocab_filename(kind) : vocab_path;
  return rwkv::load_tokenizer(kind, path);
}

int run_tokenize(int argc, char** argv) {
  ArgParser args("tokenize", "--tokenizer world|neox|bytes [--vocab PATH] (--text S | --file F | --decode --ids 1,2,3)",
                 "Encode text to token ids, printed as a JSON array on one line, or decode ids to text\n"
                 "(--decode: the decoded bytes are printed as they are, with no newline added).");
  args.option("tokenizer", "KIND", "world, neox or bytes")
      .option("vocab", "PATH",
              "vocabulary file (default: rwkv_vocab_v20230424.txt for world, 20B_tokenizer.json for neox, "
              "in the working directory; bytes needs none)")
      .option("text", "S", "text to encode (its UTF-8 bytes)")
      .option("file", "F", "encode the raw bytes of this file (need not be valid UTF-8 for world and bytes)")
      .flag("decode", "decode --ids instead of encoding")
      .option("ids", "1,2,3", "with --decode: the token ids, comma-separated")
      .flag("keep-special", "with --decode: print special tokens such as <|endoftext|> instead of dropping them");
  if (!args.parse(argc, argv)) return 0;

  rwkv::TokenizerKind kind;
  try {
    kind = rwkv::parse_tokenizer_kind(args.get("tokenizer"));
  } catch (const rwkv::Error& e) {
    throw UsageError(fmt::format("flag --tokenizer: {}", e.what()));
  }
  const bool decode = args.has("decode");
  if (decode) {
    if (!args.has("ids")) throw UsageError("--decode needs --ids");
    if (args.has("text") || args.has("file")) throw UsageError("--decode takes --ids, not --text or --file");
  } else {
    if (args.has("ids") || args.has("keep-special")) throw UsageError("--ids and --keep-special need --decode");
    if (args.has("text") == args.has("file")) throw UsageError("give exactly one of --text and --file");
  }
  auto tokenizer = load_cli_tokenizer(kind, args.has("vocab") ? args.get("vocab") : std::string());

  if (decode) {
    std::vector<int32_t> ids;
    if (!args.get("ids").empty()) {
      for (int64_t id : args.get_int_list("ids", 0, INT32_MAX)) ids.push_back(static_cast<int32_t>(id));
    }
    std::string text = tokenizer->decode(ids, args.has("keep-special"));
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  std::string input = args.has("text") ? args.get("text")
                                        : rwkv::read_regular_file(args.get("file"), "input file", kMaxTextFileBytes);
  std::vector<int32_t> ids = tokenizer->encode(input);
  fmt::print("[{}]\n", fmt::join(ids, ","));
  return 0;
}

}  // namespace rwkv_cli
