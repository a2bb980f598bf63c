// Command-line flags declared once (name, value, default, help) so that parsing,
// validation and --help come from the same table.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace rwkv_cli {

// A bad command line: the message names the flag and what was expected.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ArgParser {
 public:
  ArgParser(std::string command, std::string synopsis, std::string description);
  // The program named in usage and error messages (default "rwkv-cli COMMAND"), for
  // tools that are programs of their own.
  ArgParser& program(std::string name);

  // --name VALUE; `default_value` is shown in --help and returned when absent.
  ArgParser& option(const std::string& name, const std::string& value_name, const std::string& help,
                    std::optional<std::string> default_value = std::nullopt);
  // --name VALUE, may be given several times.
  ArgParser& repeated(const std::string& name, const std::string& value_name, const std::string& help);
  // --name without a value.
  ArgParser& flag(const std::string& name, const std::string& help);
  // A bare argument, in declaration order.
  ArgParser& positional(const std::string& name, const std::string& help, bool required = true);

  // Besides --name, the short and long aliases llama.cpp users type are accepted for
  // the flags a command declares: -m (--model), -p (--prompt), -f (--prompt-file, or
  // --file where there is no --prompt-file), -n (--max-tokens), -t (--threads),
  // -s (--seed), -r (--stop) and --temp (--temperature).
  //
  // Returns false when --help was printed and the command should exit 0.
  // Throws UsageError on unknown flags, missing values or missing positionals.
  bool parse(int argc, char** argv);

  std::string help_text() const;

  bool has(const std::string& name) const;
  std::string get(const std::string& name) const;  // throws if absent and no default
  std::vector<std::string> get_all(const std::string& name) const;
  // Numeric values are parsed in 64 bits and checked against [min, max] before the
  // caller narrows them, so that a value never wraps into range. Errors name the flag,
  // the value as given and the accepted range:
  //   flag --top-k: 4294967297 is out of range (0 to 2147483647)
  int64_t get_int(const std::string& name, int64_t min, int64_t max) const;
  // A finite number in [min, max] (min and max finite); NaN and infinities are refused.
  double get_double(const std::string& name, double min, double max) const;
  // Parses "1,2,3" into integers, each in [min, max].
  std::vector<int64_t> get_int_list(const std::string& name, int64_t min, int64_t max) const;
  // Requires that `name` was given (for options with no default).
  void require(const std::string& name) const;

 private:
  struct Spec {
    std::string name;
    std::string value_name;
    std::string help;
    std::optional<std::string> default_value;
    bool takes_value = true;
    bool repeatable = false;
    bool is_positional = false;
    bool required = false;
  };
  const Spec* find(const std::string& name) const;
  // The declared flag a conventional alias stands for ("-m" -> "model"), or nullptr.
  const Spec* find_alias(const std::string& alias) const;
  std::vector<std::string> aliases_of(const std::string& name) const;

  std::string command_;
  std::string program_;
  std::string synopsis_;
  std::string description_;
  std::vector<Spec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
};

// Parses a flag's value with a library parser, turning its error into a UsageError
// that names the flag.
template <typename Parse>
auto parse_flag(const ArgParser& args, const std::string& name, Parse parse) -> decltype(parse(std::string())) {
  try {
    return parse(args.get(name));
  } catch (const std::runtime_error& e) {
    throw UsageError("flag --" + name + ": " + e.what());
  }
}

}  // namespace rwkv_cli
