#include <fmt/format.h>

#include <chrono>
#include <cstdint>

#include "args.hpp"
#include "commands.hpp"
#include "rwkv/error.hpp"
#include "rwkv/io.hpp"
#include "rwkv/tokenizer.hpp"

namespace rwkv_cli {
namespace {

using Clock = std::chrono::steady_clock;

// The largest --min-mb: the text, its ids and the decoded copy are held at once, about
// three times this.
constexpr double kMaxMinMb = 16384;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Ordinary English prose for when no --file is given: these sentences in a fixed
// pseudo-random order, in paragraphs.
std::string generated_english(size_t min_bytes) {
  static const char* const kSentences[] = {
      "The committee met on Tuesday afternoon to discuss the budget for the coming year.",
      "She had never seen the ocean before, and the sound of the waves surprised her.",
      "Most of the villagers were farmers who grew wheat, barley and a few vegetables.",
      "It's not clear whether the new bridge will be finished before the winter storms arrive.",
      "He opened the letter slowly, as if he already knew what it would say.",
      "According to the report, sales increased by 12 percent during the third quarter.",
      "The children laughed when the dog jumped into the pond and chased the ducks.",
      "We'll need more time to review the documents, but we're making good progress.",
      "In the morning the city was quiet, and only a few cars moved along the main street.",
      "The museum's collection includes paintings, sculptures and rare manuscripts from Europe.",
      "They didn't expect the train to be late, so they missed the first part of the concert.",
      "Scientists believe that the climate of the region changed dramatically thousands of years ago.",
      "If you have any questions about the program, please contact the office before Friday.",
      "The old house at the end of the road had been empty for as long as anyone could remember.",
      "After dinner, the family gathered in the living room to listen to the radio.",
      "Her argument was simple: the project would cost less and help more people.",
  };
  constexpr size_t kCount = sizeof(kSentences) / sizeof(kSentences[0]);
  std::string text;
  text.reserve(min_bytes + 1024);
  uint64_t state = 0x2545F4914F6CDD1Dull;
  while (text.size() < min_bytes) {
    for (int s = 0; s < 5; ++s) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      if (s > 0) text += ' ';
      text += kSentences[(state >> 33) % kCount];
    }
    text += "\n\n";
  }
  return text;
}

}  // namespace

int run_bench_tokenizer(int argc, char** argv) {
  ArgParser args("bench-tokenizer", "[--tokenizer all|world|neox|bytes] [--file F] [--min-mb N] [--runs N]",
                 "Time loading each tokenizer and encoding a multi-megabyte text on one thread; prints MB/s\n"
                 "(10^6 bytes of input per second, best of --runs).");
  args.option("tokenizer", "KIND", "all, world, neox or bytes", "all")
      .option("world-vocab", "PATH", "World vocabulary", "rwkv_vocab_v20230424.txt")
      .option("neox-vocab", "PATH", "NeoX tokenizer.json", "20B_tokenizer.json")
      .option("file", "F", "text to encode, repeated up to --min-mb (default: generated English prose)")
      .option("min-mb", "N", "encode at least this many MB", "8")
      .option("runs", "N", "timed runs per measurement; the best is reported", "3");
  if (!args.parse(argc, argv)) return 0;

  const std::string which = args.get("tokenizer");
  std::vector<rwkv::TokenizerKind> kinds;
  if (which == "all") {
    kinds = {rwkv::TokenizerKind::World, rwkv::TokenizerKind::NeoX, rwkv::TokenizerKind::Bytes};
  } else {
    try {
      kinds = {rwkv::parse_tokenizer_kind(which)};
    } catch (const rwkv::Error& e) {
      throw UsageError(fmt::format("flag --tokenizer: {}", e.what()));
    }
  }
  const double min_mb = args.get_double("min-mb", 0, kMaxMinMb);
  const int64_t runs = args.get_int("runs", 1, INT32_MAX);
  if (min_mb == 0) throw UsageError("flag --min-mb: must be positive");
  const auto min_bytes = static_cast<size_t>(min_mb * 1e6);

  std::string text, source = "generated English prose";
  if (args.has("file")) {
    std::string unit = rwkv::read_regular_file(args.get("file"), "input file", kMaxTextFileBytes);
    if (unit.empty()) throw UsageError("flag --file: the file is empty");
    while (text.size() < min_bytes) text += unit;
    source = fmt::format("{} x {}", args.get("file"), text.size() / unit.size());
  } else {
    text = generated_english(min_bytes);
  }
  fmt::print("input: {:.2f} MB ({})\n", static_cast<double>(text.size()) / 1e6, source);
  fmt::print("{:<8} {:>9} {:>12} {:>12} {:>12} {:>12}\n", "kind", "load ms", "encode MB/s", "tokens",
             "bytes/token", "decode MB/s");

  for (rwkv::TokenizerKind kind : kinds) {
    std::string vocab = kind == rwkv::TokenizerKind::World  ? args.get("world-vocab")
                        : kind == rwkv::TokenizerKind::NeoX ? args.get("neox-vocab")
                                                            : std::string();
    double load_s = 1e30;
    std::unique_ptr<rwkv::Tokenizer> tokenizer;
    for (int64_t r = 0; r < runs; ++r) {
      auto start = Clock::now();
      tokenizer = load_cli_tokenizer(kind, vocab);
      load_s = std::min(load_s, seconds_since(start));
    }
    double encode_s = 1e30, decode_s = 1e30;
    std::vector<int32_t> ids;
    for (int64_t r = 0; r < runs; ++r) {
      auto start = Clock::now();
      ids = tokenizer->encode(text);
      encode_s = std::min(encode_s, seconds_since(start));
    }
    for (int64_t r = 0; r < runs; ++r) {
      auto start = Clock::now();
      std::string back = tokenizer->decode(ids);
      decode_s = std::min(decode_s, seconds_since(start));
      if (back.size() != text.size()) throw rwkv::Error("decode(encode(text)) does not give the text back");
    }
    const double mb = static_cast<double>(text.size()) / 1e6;
    fmt::print("{:<8} {:>9.1f} {:>12.1f} {:>12} {:>12.2f} {:>12.1f}\n", rwkv::tokenizer_kind_name(kind),
               load_s * 1e3, mb / encode_s, ids.size(),
               static_cast<double>(text.size()) / static_cast<double>(std::max<size_t>(ids.size(), 1)),
               mb / decode_s);
  }
  return 0;
}

}  // namespace rwkv_cli
