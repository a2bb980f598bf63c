// rwkv-cli's command-line parser on its own: flags, positionals, --help, and numbers
// parsed in 64 bits and range-checked before any command narrows them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "args.hpp"

namespace {

using rwkv_cli::ArgParser;
using rwkv_cli::UsageError;
using ::testing::HasSubstr;

// A parser with one of each kind of declaration.
ArgParser make_parser() {
  ArgParser args("demo", "IN [OUT] [options]", "A parser for the tests.");
  args.positional("IN", "input")
      .positional("OUT", "output", false)
      .option("n", "N", "a number", "7")
      .option("x", "X", "a number with no default")
      .option("ids", "1,2,3", "a list")
      .repeated("stop", "S", "repeatable")
      .flag("json", "a switch");
  return args;
}

// Parses `argv` (the command's arguments, without the program and command names).
bool parse(ArgParser& args, std::vector<std::string> argv) {
  std::vector<char*> pointers;
  for (std::string& a : argv) pointers.push_back(a.data());
  return args.parse(static_cast<int>(pointers.size()), pointers.data());
}

// The UsageError message of parsing `argv`, or "" when it parses.
std::string parse_error(std::vector<std::string> argv) {
  ArgParser args = make_parser();
  try {
    parse(args, std::move(argv));
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

// A parser that has read `--n value`.
ArgParser with_n(const std::string& value) {
  ArgParser args = make_parser();
  parse(args, {"in", "--n", value});
  return args;
}

std::string int_error(const std::string& value, int64_t min, int64_t max) {
  try {
    with_n(value).get_int("n", min, max);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

std::string double_error(const std::string& value, double min, double max) {
  try {
    with_n(value).get_double("n", min, max);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

std::string list_error(const std::string& value, int64_t min, int64_t max) {
  ArgParser args = make_parser();
  parse(args, {"in", "--ids", value});
  try {
    args.get_int_list("ids", min, max);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(Args, UnknownFlagMissingValueAndDuplicates) {
  EXPECT_THAT(parse_error({"in", "--modle", "x"}), HasSubstr("unknown flag --modle (see 'rwkv-cli demo --help')"));
  EXPECT_THAT(parse_error({"in", "--IN", "x"}), HasSubstr("unknown flag --IN"));  // positionals are not flags
  EXPECT_EQ(parse_error({"in", "--n"}), "flag --n needs a value (N)");
  EXPECT_EQ(parse_error({"in", "--n", "1", "--n", "2"}), "flag --n given more than once");
  EXPECT_EQ(parse_error({"in", "--n=1", "--n", "2"}), "flag --n given more than once");
  EXPECT_EQ(parse_error({"in", "--json=1"}), "flag --json takes no value");
  EXPECT_EQ(parse_error({"in", "--stop", "a", "--stop", "b"}), "");  // repeatable
}

TEST(Args, NameEqualsValueAndLastValue) {
  ArgParser args = make_parser();
  ASSERT_TRUE(parse(args, {"in", "--n=12", "--x=", "--stop=a=b", "--stop", "c", "--json"}));
  EXPECT_EQ(args.get("n"), "12");
  EXPECT_TRUE(args.has("x"));
  EXPECT_EQ(args.get("x"), "");
  EXPECT_EQ(args.get_all("stop"), (std::vector<std::string>{"a=b", "c"}));
  EXPECT_TRUE(args.has("json"));
  // A value that looks like a flag is still the value.
  ArgParser dashed = make_parser();
  ASSERT_TRUE(parse(dashed, {"in", "--x", "--json"}));
  EXPECT_EQ(dashed.get("x"), "--json");
  EXPECT_FALSE(dashed.has("json"));
}

TEST(Args, PositionalsDefaultsAndRequired) {
  ArgParser args = make_parser();
  ASSERT_TRUE(parse(args, {"--json", "first", "second"}));
  EXPECT_EQ(args.get("IN"), "first");
  EXPECT_EQ(args.get("OUT"), "second");
  EXPECT_FALSE(args.has("n"));
  EXPECT_EQ(args.get("n"), "7");  // the default
  EXPECT_EQ(args.get_int("n", 0, 10), 7);
  EXPECT_FALSE(args.has("x"));
  try {
    args.require("x");
    ADD_FAILURE() << "--x has no default";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "missing required flag --x");
  }
  EXPECT_THAT(parse_error({"a", "b", "c"}), HasSubstr("unexpected argument 'c'"));
  EXPECT_THAT(parse_error({"--json"}), HasSubstr("missing argument IN"));
  EXPECT_EQ(parse_error({"only-in"}), "");  // OUT is optional
  ArgParser renamed("gen-model", "", "");
  renamed.program("rwkv-gen-model");
  try {
    parse(renamed, {"--nope"});
    ADD_FAILURE() << "--nope is not declared";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("see 'rwkv-gen-model --help'"));
  }
}

TEST(Args, HelpPrintsTheTableAndStops) {
  for (const char* help : {"--help", "-h"}) {
    ArgParser args = make_parser();
    ::testing::internal::CaptureStdout();
    // --help wins even before a missing positional or after a bad flag value.
    const bool go_on = parse(args, {"--n", "abc", help});
    const std::string out = ::testing::internal::GetCapturedStdout();
    EXPECT_FALSE(go_on) << help;
    EXPECT_THAT(out, HasSubstr("usage: rwkv-cli demo IN [OUT] [options]"));
    EXPECT_THAT(out, HasSubstr("--n N"));
    EXPECT_THAT(out, HasSubstr("a number (default: 7)"));
    EXPECT_THAT(out, HasSubstr("repeatable (repeatable)"));
    EXPECT_THAT(out, HasSubstr("--help"));
    EXPECT_EQ(out, args.help_text());
  }
}

TEST(Args, IntegerParseErrors) {
  for (const char* bad : {"abc", "", "1e3", "12x", " 5", "5 ", "+5", "0x10", "1.0", "-", "--5"}) {
    EXPECT_EQ(int_error(bad, INT64_MIN, INT64_MAX), std::string("flag --n: expected an integer, got '") + bad + "'")
        << "'" << bad << "'";
  }
  // Digits beyond int64 followed by junk are not an integer at all.
  EXPECT_EQ(int_error("99999999999999999999x", 0, 10), "flag --n: expected an integer, got '99999999999999999999x'");
}

TEST(Args, IntegerBeyondInt64IsOutOfRangeNotWrapped) {
  EXPECT_EQ(int_error("99999999999999999999", 0, INT32_MAX),
            "flag --n: 99999999999999999999 is out of range (0 to 2147483647)");
  EXPECT_EQ(int_error("-99999999999999999999", 0, INT32_MAX),
            "flag --n: -99999999999999999999 is out of range (0 to 2147483647)");
  // 2^64 + 5 would wrap to 5 in 64 bits.
  EXPECT_EQ(int_error("18446744073709551621", 0, 10), "flag --n: 18446744073709551621 is out of range (0 to 10)");
  // The int64 limits themselves, and one past each.
  EXPECT_EQ(with_n("9223372036854775807").get_int("n", INT64_MIN, INT64_MAX), INT64_MAX);
  EXPECT_EQ(with_n("-9223372036854775808").get_int("n", INT64_MIN, INT64_MAX), INT64_MIN);
  EXPECT_EQ(int_error("9223372036854775808", INT64_MIN, INT64_MAX),
            "flag --n: 9223372036854775808 is out of range (-9223372036854775808 to 9223372036854775807)");
  EXPECT_EQ(int_error("-9223372036854775809", INT64_MIN, INT64_MAX),
            "flag --n: -9223372036854775809 is out of range (-9223372036854775808 to 9223372036854775807)");
}

// The bounds of int32 flags such as --top-k and --max-tokens, and the values that wrap
// into range when cut to 32 bits.
TEST(Args, IntegerRangeBoundaries) {
  EXPECT_EQ(with_n("0").get_int("n", 0, INT32_MAX), 0);
  EXPECT_EQ(with_n("-0").get_int("n", 0, INT32_MAX), 0);
  EXPECT_EQ(with_n("2147483647").get_int("n", 0, INT32_MAX), INT32_MAX);
  EXPECT_EQ(with_n("-2147483648").get_int("n", INT32_MIN, INT32_MAX), INT32_MIN);
  EXPECT_EQ(with_n("1").get_int("n", 1, 1), 1);
  const char* range = " is out of range (0 to 2147483647)";
  for (const char* bad : {"-1", "2147483648", "4294967295", "4294967296", "4294967297", "-2147483648",
                          "-2147483649", "-4294967295", "-4294967296"}) {
    EXPECT_EQ(int_error(bad, 0, INT32_MAX), std::string("flag --n: ") + bad + range);
  }
  EXPECT_EQ(int_error("-2147483649", INT32_MIN, INT32_MAX),
            "flag --n: -2147483649 is out of range (-2147483648 to 2147483647)");
  EXPECT_EQ(int_error("2147483648", INT32_MIN, INT32_MAX),
            "flag --n: 2147483648 is out of range (-2147483648 to 2147483647)");
  EXPECT_EQ(int_error("0", 1, 65536), "flag --n: 0 is out of range (1 to 65536)");
  EXPECT_EQ(int_error("65537", 1, 65536), "flag --n: 65537 is out of range (1 to 65536)");
  EXPECT_EQ(int_error("17592186044416", 1, 65536), "flag --n: 17592186044416 is out of range (1 to 65536)");
  // The default is checked like a given value.
  try {
    make_parser().get_int("n", 8, 10);
    ADD_FAILURE() << "the default 7 is below 8";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "flag --n: 7 is out of range (8 to 10)");
  }
}

TEST(Args, Doubles) {
  EXPECT_EQ(with_n("0.5").get_double("n", 0, 1), 0.5);
  EXPECT_EQ(with_n("0").get_double("n", 0, 1), 0.0);
  EXPECT_EQ(with_n("1").get_double("n", 0, 1), 1.0);
  EXPECT_EQ(with_n("1e-3").get_double("n", 0, 1), 1e-3);
  EXPECT_EQ(with_n("-1e6").get_double("n", -1e6, 1e6), -1e6);
  EXPECT_EQ(with_n("7").get_double("n", 0, 10), 7.0);  // an integer is a number
  EXPECT_EQ(double_error("hot", 0, 1), "flag --n: expected a number, got 'hot'");
  EXPECT_EQ(double_error("", 0, 1), "flag --n: expected a number, got ''");
  EXPECT_EQ(double_error("0.5x", 0, 1), "flag --n: expected a number, got '0.5x'");
  EXPECT_EQ(double_error(" 0.5", 0, 1), "flag --n: expected a number, got ' 0.5'");
  EXPECT_EQ(double_error("1.5", 0, 1), "flag --n: 1.5 is out of range (0 to 1)");
  EXPECT_EQ(double_error("1.0000001", 0, 1), "flag --n: 1.0000001 is out of range (0 to 1)");
  EXPECT_EQ(double_error("-0.001", 0, 1), "flag --n: -0.001 is out of range (0 to 1)");
  EXPECT_EQ(double_error("1000001", -1e6, 1e6), "flag --n: 1000001 is out of range (-1000000 to 1000000)");
  EXPECT_EQ(double_error("0", 1e-6, 1e6), "flag --n: 0 is out of range (1e-06 to 1000000)");
}

TEST(Args, DoublesRefuseNanInfinityAndBeyondDouble) {
  for (const char* nan : {"nan", "NaN", "-nan", "nan(1)"}) {
    EXPECT_EQ(double_error(nan, 0, 1), std::string("flag --n: ") + nan + " is not a number (0 to 1)");
  }
  for (const char* inf : {"inf", "-inf", "infinity", "INF"}) {
    EXPECT_EQ(double_error(inf, -1e6, 1e6), std::string("flag --n: ") + inf + " is out of range (-1000000 to 1000000)");
  }
  EXPECT_EQ(double_error("1e400", 0, 1e6), "flag --n: 1e400 is out of range (0 to 1000000)");
  EXPECT_EQ(double_error("-1e400", 0, 1e6), "flag --n: -1e400 is out of range (0 to 1000000)");
  EXPECT_EQ(double_error("1e-400", 0, 1), "flag --n: 1e-400 is too close to 0 to be represented (0 to 1)");
}

TEST(Args, IntLists) {
  ArgParser args = make_parser();
  parse(args, {"in", "--ids", " 1, 2 ,3,0,2147483647"});
  EXPECT_EQ(args.get_int_list("ids", 0, INT32_MAX), (std::vector<int64_t>{1, 2, 3, 0, INT32_MAX}));
  EXPECT_EQ(list_error("1,,2", 0, 9), "flag --ids: empty item in list '1,,2'");
  EXPECT_EQ(list_error("1,", 0, 9), "flag --ids: empty item in list '1,'");
  EXPECT_EQ(list_error("", 0, 9), "flag --ids: empty item in list ''");
  EXPECT_EQ(list_error("1,abc", 0, 9), "flag --ids: expected an integer, got 'abc'");
  EXPECT_EQ(list_error("1,4294967296", 0, INT32_MAX), "flag --ids: 4294967296 is out of range (0 to 2147483647)");
  EXPECT_EQ(list_error("1,4294967297", 0, INT32_MAX), "flag --ids: 4294967297 is out of range (0 to 2147483647)");
  EXPECT_EQ(list_error("2147483648", 0, INT32_MAX), "flag --ids: 2147483648 is out of range (0 to 2147483647)");
  EXPECT_EQ(list_error("-1", 0, INT32_MAX), "flag --ids: -1 is out of range (0 to 2147483647)");
  EXPECT_EQ(list_error("5,99999999999999999999", 0, INT32_MAX),
            "flag --ids: 99999999999999999999 is out of range (0 to 2147483647)");
}

TEST(Args, ParseFlagNamesTheFlag) {
  ArgParser args = with_n("bad");
  try {
    rwkv_cli::parse_flag(args, "n", [](const std::string& s) -> int {
      throw std::runtime_error("unknown value '" + s + "'");
    });
    ADD_FAILURE() << "the parser threw";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "flag --n: unknown value 'bad'");
  }
}

}  // namespace

namespace {

// llama.cpp's aliases stand for the flags a command declares, and only those.
TEST(Args, ConventionalAliases) {
  ArgParser args("demo", "[options]", "Aliases.");
  args.option("model", "M", "m").option("max-tokens", "N", "n").option("file", "F", "f").option("temperature", "T", "t")
      .repeated("stop", "S", "s");
  ASSERT_TRUE(parse(args, {"-m", "a.rwkv", "-n", "5", "-f", "x.txt", "--temp=0.5", "-r", "A", "-r", "B"}));
  EXPECT_EQ(args.get("model"), "a.rwkv");
  EXPECT_EQ(args.get("max-tokens"), "5");
  EXPECT_EQ(args.get("file"), "x.txt");  // -f is --file where there is no --prompt-file
  EXPECT_EQ(args.get("temperature"), "0.5");
  EXPECT_EQ(args.get_all("stop"), (std::vector<std::string>{"A", "B"}));
  // A value that looks like an alias is still a value.
  ArgParser values("demo", "[options]", "Aliases.");
  values.option("model", "M", "m").option("prompt", "S", "p");
  ASSERT_TRUE(parse(values, {"--prompt", "-m"}));
  EXPECT_EQ(values.get("prompt"), "-m");
  EXPECT_FALSE(values.has("model"));
  // -p is not declared here; -m twice is a duplicate like --model twice.
  ArgParser dup("demo", "[options]", "Aliases.");
  dup.option("model", "M", "m");
  try {
    parse(dup, {"-p", "x"});
    ADD_FAILURE() << "-p accepted";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("unknown flag -p"));
  }
  ArgParser twice("demo", "[options]", "Aliases.");
  twice.option("model", "M", "m");
  EXPECT_THROW(parse(twice, {"-m", "a", "--model", "b"}), UsageError);
  EXPECT_THAT(args.help_text(), HasSubstr("-m, --model M"));
  EXPECT_THAT(args.help_text(), HasSubstr("--temp, --temperature T"));
}

}  // namespace
