#include "args.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cctype>
#include <cstdlib>

namespace rwkv_cli {

ArgParser::ArgParser(std::string command, std::string synopsis, std::string description)
    : command_(std::move(command)),
      program_("rwkv-cli " + command_),
      synopsis_(std::move(synopsis)),
      description_(std::move(description)) {}

ArgParser& ArgParser::program(std::string name) {
  program_ = std::move(name);
  return *this;
}

ArgParser& ArgParser::option(const std::string& name, const std::string& value_name, const std::string& help,
                             std::optional<std::string> default_value) {
  specs_.push_back({name, value_name, help, std::move(default_value), true, false, false, false});
  return *this;
}

ArgParser& ArgParser::repeated(const std::string& name, const std::string& value_name, const std::string& help) {
  specs_.push_back({name, value_name, help, std::nullopt, true, true, false, false});
  return *this;
}

ArgParser& ArgParser::flag(const std::string& name, const std::string& help) {
  specs_.push_back({name, "", help, std::nullopt, false, false, false, false});
  return *this;
}

ArgParser& ArgParser::positional(const std::string& name, const std::string& help, bool required) {
  specs_.push_back({name, name, help, std::nullopt, true, false, true, required});
  return *this;
}

const ArgParser::Spec* ArgParser::find(const std::string& name) const {
  for (const Spec& s : specs_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

namespace {
// llama.cpp's spellings, each with the flags it may stand for, first declared wins.
struct ConventionalAlias {
  const char* alias;
  std::vector<const char*> names;
};
const std::vector<ConventionalAlias>& conventional_aliases() {
  static const std::vector<ConventionalAlias> table = {
      {"-m", {"model"}},  {"-p", {"prompt"}},  {"-f", {"prompt-file", "file"}}, {"-n", {"max-tokens"}},
      {"-t", {"threads"}}, {"-s", {"seed"}},   {"-r", {"stop"}},                {"--temp", {"temperature"}},
  };
  return table;
}
}  // namespace

const ArgParser::Spec* ArgParser::find_alias(const std::string& alias) const {
  for (const ConventionalAlias& a : conventional_aliases()) {
    if (alias != a.alias) continue;
    for (const char* name : a.names) {
      const Spec* spec = find(name);
      if (spec != nullptr && !spec->is_positional) return spec;
    }
  }
  return nullptr;
}

std::vector<std::string> ArgParser::aliases_of(const std::string& name) const {
  std::vector<std::string> out;
  for (const ConventionalAlias& a : conventional_aliases()) {
    const Spec* spec = find_alias(a.alias);
    if (spec != nullptr && spec->name == name) out.push_back(a.alias);
  }
  return out;
}

bool ArgParser::parse(int argc, char** argv) {
  std::vector<const Spec*> positionals;
  for (const Spec& s : specs_) {
    if (s.is_positional) positionals.push_back(&s);
  }
  size_t next_positional = 0;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help_text().c_str(), stdout);
      return false;
    }
    // An alias becomes its flag's --name (keeping an inline "=value" of --temp=0.5).
    {
      const std::string alias = arg.substr(0, arg.find('='));
      if (const Spec* spec = find_alias(alias); spec != nullptr) {
        arg = "--" + spec->name + arg.substr(alias.size());
      } else if (arg.size() == 2 && arg[0] == '-' && std::isalpha(static_cast<unsigned char>(arg[1]))) {
        throw UsageError(fmt::format("unknown flag {} (see '{} --help')", arg, program_));
      }
    }
    if (arg.size() > 2 && arg.rfind("--", 0) == 0) {
      std::string name = arg.substr(2);
      std::optional<std::string> inline_value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      const Spec* spec = find(name);
      if (spec == nullptr || spec->is_positional) {
        throw UsageError(fmt::format("unknown flag --{} (see '{} --help')", name, program_));
      }
      if (!spec->takes_value) {
        if (inline_value) throw UsageError(fmt::format("flag --{} takes no value", name));
        values_[name].push_back("1");
        continue;
      }
      std::string value;
      if (inline_value) {
        value = *inline_value;
      } else {
        if (i + 1 >= argc) throw UsageError(fmt::format("flag --{} needs a value ({})", name, spec->value_name));
        value = argv[++i];
      }
      if (!spec->repeatable && values_.count(name)) {
        throw UsageError(fmt::format("flag --{} given more than once", name));
      }
      values_[name].push_back(value);
      continue;
    }
    if (next_positional >= positionals.size()) {
      throw UsageError(fmt::format("unexpected argument '{}' (see '{} --help')", arg, program_));
    }
    values_[positionals[next_positional++]->name].push_back(arg);
  }
  for (const Spec* p : positionals) {
    if (p->required && !values_.count(p->name)) {
      throw UsageError(fmt::format("missing argument {} (see '{} --help')", p->name, program_));
    }
  }
  return true;
}

std::string ArgParser::help_text() const {
  std::string out = fmt::format("usage: {} {}\n\n{}\n", program_, synopsis_, description_);
  bool any_positional = false;
  for (const Spec& s : specs_) any_positional |= s.is_positional;
  if (any_positional) {
    out += "\narguments:\n";
    for (const Spec& s : specs_) {
      if (s.is_positional) out += fmt::format("  {:<26} {}\n", s.name, s.help);
    }
  }
  out += "\noptions:\n";
  for (const Spec& s : specs_) {
    if (s.is_positional) continue;
    std::string left;
    for (const std::string& alias : aliases_of(s.name)) left += alias + ", ";
    left += "--" + s.name + (s.takes_value ? " " + s.value_name : "");
    std::string right = s.help;
    if (s.default_value) right += fmt::format(" (default: {})", s.default_value->empty() ? "\"\"" : *s.default_value);
    if (s.repeatable) right += " (repeatable)";
    out += fmt::format("  {:<26} {}\n", left, right);
  }
  out += fmt::format("  {:<26} {}\n", "--help", "show this help and exit");
  return out;
}

bool ArgParser::has(const std::string& name) const { return values_.count(name) > 0; }

std::string ArgParser::get(const std::string& name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second.back();
  const Spec* spec = find(name);
  if (spec && spec->default_value) return *spec->default_value;
  if (spec && spec->is_positional) throw UsageError(fmt::format("missing argument {}", name));
  throw UsageError(fmt::format("missing required flag --{}", name));
}

std::vector<std::string> ArgParser::get_all(const std::string& name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second;
  return {};
}

void ArgParser::require(const std::string& name) const { (void)get(name); }

namespace {

// The whole of `text` as an integer in [min, max]. A value beyond int64 itself is out
// of every range, and is reported as such rather than wrapped.
int64_t parse_int_in_range(const std::string& text, const std::string& flag, int64_t min, int64_t max) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ptr != end || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    throw UsageError(fmt::format("flag --{}: expected an integer, got '{}'", flag, text));
  }
  if (ec == std::errc::result_out_of_range || value < min || value > max) {
    throw UsageError(fmt::format("flag --{}: {} is out of range ({} to {})", flag, text, min, max));
  }
  return value;
}

}  // namespace

int64_t ArgParser::get_int(const std::string& name, int64_t min, int64_t max) const {
  return parse_int_in_range(get(name), name, min, max);
}

double ArgParser::get_double(const std::string& name, double min, double max) const {
  const std::string text = get(name);
  double value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ptr != end || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    throw UsageError(fmt::format("flag --{}: expected a number, got '{}'", name, text));
  }
  if (ec == std::errc::result_out_of_range) {
    // from_chars sets no value here; strtod tells beyond the largest double (inf) from
    // too close to 0 for any double.
    if (!std::isinf(std::strtod(text.c_str(), nullptr))) {
      throw UsageError(fmt::format("flag --{}: {} is too close to 0 to be represented ({} to {})", name, text,
                                   min, max));
    }
  } else if (std::isnan(value)) {
    throw UsageError(fmt::format("flag --{}: {} is not a number ({} to {})", name, text, min, max));
  }
  // Also refuses the infinities, and beyond-double overflow from above.
  if (ec == std::errc::result_out_of_range || !(value >= min && value <= max)) {
    throw UsageError(fmt::format("flag --{}: {} is out of range ({} to {})", name, text, min, max));
  }
  return value;
}

std::vector<int64_t> ArgParser::get_int_list(const std::string& name, int64_t min, int64_t max) const {
  std::string text = get(name);
  std::vector<int64_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.empty()) throw UsageError(fmt::format("flag --{}: empty item in list '{}'", name, text));
    out.push_back(parse_int_in_range(item, name, min, max));
    start = comma + 1;
  }
  return out;
}

}  // namespace rwkv_cli
