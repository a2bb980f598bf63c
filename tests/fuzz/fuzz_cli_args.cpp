// libFuzzer target: rwkv-cli's flag parser. The input is argv, split on NUL bytes; the
// declared flags mirror those of the real commands (values with and without defaults,
// repeated flags, bare flags, required and optional positionals).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "args.hpp"
#include "fuzz_support.hpp"

namespace {

using rwkv_cli::ArgParser;
using rwkv_cli::UsageError;

constexpr size_t kMaxArgs = 256;

// Runs `get` and treats a UsageError as the expected answer to a bad value.
template <typename Get>
void usage_error_ok(Get get) {
  try {
    get();
  } catch (const UsageError&) {
  }
}

// A value that a range-checked getter returns must lie in [min, max] (NaN included:
// it lies in no range).
template <typename T>
void check_range(T value, T min, T max, const char* getter) {
  if (!(value >= min && value <= max)) rwkv_fuzz::property_failed(getter);
}

// The numeric getters, in whichever forms this ArgParser has (plain, or range-checked
// with min and max): detected at compile time, so the target builds with either.
template <typename Parser>
void numeric_getters(const Parser& args) {
  if constexpr (requires { args.get_int(std::string()); }) {
    for (const char* name : {"max-tokens", "seed", "PROMPT"}) usage_error_ok([&] { (void)args.get_int(name); });
  }
  if constexpr (requires { args.get_double(std::string()); }) {
    for (const char* name : {"temperature", "top-p", "PROMPT"}) usage_error_ok([&] { (void)args.get_double(name); });
  }
  if constexpr (requires { args.get_int_list(std::string()); }) {
    for (const char* name : {"tokens", "stop"}) usage_error_ok([&] { (void)args.get_int_list(name); });
  }
  if constexpr (requires { args.get_int(std::string(), int64_t{0}, int64_t{0}); }) {
    struct Range { const char* name; int64_t min, max; };
    for (const Range r : {Range{"max-tokens", 1, 1 << 20}, Range{"seed", INT64_MIN, INT64_MAX},
                          Range{"seed", -1, 0}, Range{"PROMPT", 0, INT64_MAX}}) {
      usage_error_ok([&] { check_range(args.get_int(r.name, r.min, r.max), r.min, r.max, "get_int out of range"); });
    }
  }
  if constexpr (requires { args.get_double(std::string(), 0.0, 0.0); }) {
    struct Range { const char* name; double min, max; };
    const double big = std::numeric_limits<double>::max();
    for (const Range r : {Range{"temperature", 0.0, 100.0}, Range{"top-p", 0.0, 1.0}, Range{"PROMPT", -big, big}}) {
      usage_error_ok([&] {
        check_range(args.get_double(r.name, r.min, r.max), r.min, r.max, "get_double out of range");
      });
    }
  }
  if constexpr (requires { args.get_int_list(std::string(), int64_t{0}, int64_t{0}); }) {
    for (const char* name : {"tokens", "stop"}) {
      usage_error_ok([&] {
        for (int64_t v : args.get_int_list(name, 0, 65535)) {
          check_range<int64_t>(v, 0, 65535, "get_int_list out of range");
        }
      });
    }
  }
}

}  // namespace

// --help prints to stdout; keep the fuzzer's own output (stderr) readable.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (std::freopen("/dev/null", "w", stdout) == nullptr) std::perror("freopen /dev/null");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] != 0) {
      parts.back() += static_cast<char>(data[i]);
    } else if (parts.size() < kMaxArgs) {
      parts.emplace_back();
    } else {
      break;
    }
  }
  if (size == 0) parts.clear();
  std::vector<char*> argv;
  for (std::string& p : parts) argv.push_back(p.data());
  argv.push_back(nullptr);

  ArgParser args("generate", "[options] PROMPT [SUFFIX]", "The fuzz target's stand-in for a real command.");
  args.positional("PROMPT", "the prompt")
      .positional("SUFFIX", "an optional second argument", /*required=*/false)
      .option("model", "F", "the model file")
      .option("max-tokens", "N", "tokens to generate", "200")
      .option("temperature", "T", "sampling temperature", "1.0")
      .option("top-p", "P", "nucleus sampling")
      .option("seed", "N", "random seed")
      .option("tokens", "IDS", "comma-separated token ids", "1,2,3")
      .repeated("stop", "TEXT", "stop at this text")
      .flag("verbose", "print more")
      .flag("no-stream", "print at the end");
  bool run = false;
  try {
    run = args.parse(static_cast<int>(parts.size()), argv.data());
  } catch (const UsageError&) {
    return 0;
  }
  if (!run) return 0;

  for (const char* name : {"PROMPT", "SUFFIX", "model", "max-tokens", "temperature", "top-p", "seed", "tokens", "stop",
                           "verbose", "no-stream", "undeclared"}) {
    (void)args.has(name);
    (void)args.get_all(name);
    usage_error_ok([&] { (void)args.get(name); });
  }
  usage_error_ok([&] { args.require("PROMPT"); });
  numeric_getters(args);
  return 0;
}
