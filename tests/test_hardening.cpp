// Files a hostile or careless user may hand us: each case here crashed, hung or was
// silently misread before (issue 16), and must now give a clear error that names the
// file and the field, or load correctly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "convert/to_native.hpp"
#include "io/files.hpp"
#include "io/printable.hpp"
#include "kernels/dtype.hpp"
#include "kernels/finite_check.hpp"
#include "kernels/half.hpp"
#include "kernels/quant_blocks.hpp"
#include "rwkv/error.hpp"
#include "rwkv/model.hpp"
#include "rwkv/state_file.hpp"
#include "rwkv/tokenizer.hpp"
#include "test_support.hpp"
#include "tokenizer/byte_trie.hpp"
#include "tokenizer_test_support.hpp"
#include "weights/format.hpp"

namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using rwkv_test::error_of;

// ---- files that are not regular files, and sizes ----

TEST(HardeningFiles, FifoIsRefusedWithoutBlocking) {
  rwkv_test::ScratchDir dir;
  const std::string fifo = (dir / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(error_of([&] { rwkv::Model::load(fifo); }), AllOf(HasSubstr(fifo), HasSubstr("is a FIFO")));
  EXPECT_THAT(error_of([&] { rwkv::load_tokenizer(rwkv::TokenizerKind::World, fifo); }),
              AllOf(HasSubstr(fifo), HasSubstr("World vocabulary is a FIFO, expected a regular file")));
  EXPECT_THAT(error_of([&] { rwkv::load_tokenizer(rwkv::TokenizerKind::NeoX, fifo); }), HasSubstr("is a FIFO"));
  EXPECT_THAT(error_of([&] { rwkv::io::read_regular_file(fifo, "the prompt", 100); }), HasSubstr("is a FIFO"));
}

TEST(HardeningFiles, DirectoryIsNamed) {
  rwkv_test::ScratchDir dir;
  const std::string d = dir.path().string();
  EXPECT_THAT(error_of([&] { rwkv::load_tokenizer(rwkv::TokenizerKind::World, d); }),
              AllOf(HasSubstr(d), HasSubstr("World vocabulary is a directory")));
  EXPECT_THAT(error_of([&] { rwkv::Model::load(d); }), AllOf(HasSubstr(d), HasSubstr("is a directory")));
  EXPECT_THAT(error_of([&] { rwkv::io::read_regular_file(d, "the input file", 100); }),
              AllOf(HasSubstr(d), HasSubstr("the input file is a directory")));
}

TEST(HardeningFiles, DevicesAreRefused) {
  EXPECT_THAT(error_of([] { rwkv::io::read_regular_file("/dev/zero", "the input file", 1 << 20); }),
              HasSubstr("/dev/zero: the input file is a character device"));
}

TEST(HardeningFiles, SizeLimitHoldsWhileReading) {
  rwkv_test::ScratchDir dir;
  const auto path = dir / "f";
  rwkv_test::write_file(path, std::string(11, 'x'));
  EXPECT_THAT(error_of([&] { rwkv::io::read_regular_file(path.string(), "the input file", 10); }),
              HasSubstr("11 bytes, more than the 10 bytes allowed"));
  EXPECT_EQ(rwkv::io::read_regular_file(path.string(), "the input file", 11), std::string(11, 'x'));
  // A pseudo-file reports size 0 but has content: the limit still applies.
  EXPECT_THAT(error_of([] { rwkv::io::read_regular_file("/proc/self/maps", "the input file", 16); }),
              HasSubstr("more than the 16 bytes allowed"));
  EXPECT_FALSE(rwkv::io::read_regular_file("/proc/self/maps", "the input file", 1 << 24).empty());
}

TEST(HardeningFiles, WriteFailureSaysWhy) {
  rwkv_test::ScratchDir dir;
  const std::string path = (dir / "no-such-dir" / "state.bin").string();
  EXPECT_THAT(error_of([&] { rwkv::io::write_file_replacing(path, "the state file", "abc"); }),
              AllOf(HasSubstr(path), HasSubstr("No such file or directory")));
}

TEST(HardeningFiles, StreamsAreBounded) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const std::string text = "line one\nline two that is long\n" + std::string(100, 'z');
  ASSERT_EQ(::write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fds[1]);
  std::string line;
  EXPECT_TRUE(rwkv::io::read_line(fds[0], line, "standard input", 16));
  EXPECT_EQ(line, "line one");
  EXPECT_THAT(error_of([&] { rwkv::io::read_line(fds[0], line, "standard input", 16); }),
              HasSubstr("standard input: a line longer than the 16 bytes allowed"));
  EXPECT_THAT(error_of([&] { rwkv::io::read_stream(fds[0], "standard input", 50); }),
              HasSubstr("standard input: more than the 50 bytes allowed"));
  ::close(fds[0]);
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_EQ(::write(fds[1], "abc", 3), 3);
  ::close(fds[1]);
  EXPECT_EQ(rwkv::io::read_stream(fds[0], "standard input", 3), "abc");
  EXPECT_FALSE(rwkv::io::read_line(fds[0], line, "standard input", 16));
  ::close(fds[0]);
}

TEST(HardeningCli, ChatRefusesAnEndlessLine) {
  auto result = rwkv_test::run_command("timeout 60 '" + rwkv_test::cli_path() + "' chat --model " +
                                       RWKV_DEFAULT_MODEL_PATH + " < /dev/zero 2>&1");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("standard input: a line longer than the 16777216 bytes allowed"));
}

// ---- messages ----

TEST(HardeningMessages, PrintableEscapesAndCuts) {
  using rwkv::io::printable;
  EXPECT_EQ(printable("plain"), "plain");
  EXPECT_EQ(printable("a\x1b[31mb\n\t\\"), "a\\x1b[31mb\\n\\t\\\\");
  EXPECT_EQ(printable("caf\xc3\xa9 \xe4\xb8\xad"), "caf\xc3\xa9 \xe4\xb8\xad");  // valid UTF-8 kept
  EXPECT_EQ(printable("\xff\xc3"), "\\xff\\xc3");                               // invalid bytes escaped
  EXPECT_EQ(printable("\xc2\x9b"), "\\xc2\\x9b");                               // a C1 control (CSI)
  EXPECT_EQ(printable(std::string(1000, 'a'), 10), "aaaaaaaaaa... (1000 bytes)");
}

// ---- tokenizers ----

TEST(HardeningTokenizers, TrieTakesVeryLongKeysWithoutRecursion) {
  // The recursive build overflowed the stack at about 50 KB (9 KB under ASan).
  const std::string long_key(1 << 20, 'a');
  rwkv::detail::ByteTrie trie;
  trie.build({std::string_view("a"), std::string_view(long_key)}, {1, 2});
  const auto* p = reinterpret_cast<const unsigned char*>(long_key.data());
  EXPECT_EQ(trie.longest_prefix(p, long_key.size()), (std::pair<size_t, int32_t>{long_key.size(), 2}));
  EXPECT_EQ(trie.longest_prefix(p, 5), (std::pair<size_t, int32_t>{1, 1}));
}

TEST(HardeningTokenizers, WorldTokenLongerThanTheLimit) {
  rwkv_test::ScratchDir dir;
  const auto path = dir / "vocab.txt";
  const std::string big(50000, 'x');
  rwkv_test::write_file(path, "1 'a' 1\n2 '" + big + "' 50000\n");
  EXPECT_THAT(error_of([&] { rwkv::load_tokenizer(rwkv::TokenizerKind::World, path.string()); }),
              AllOf(HasSubstr(path.string() + ":2:"), HasSubstr("token 2 is 50000 bytes long, more than the 1024")));
  // A length field that lies about a long literal is caught too.
  rwkv_test::write_file(path, "1 'a' 1\n2 '" + big + "' 5\n");
  EXPECT_THAT(error_of([&] { rwkv::load_tokenizer(rwkv::TokenizerKind::World, path.string()); }),
              HasSubstr(":2: the literal is 50000 bytes but the line says 5"));
  // At the limit, the file loads and the token encodes.
  const std::string at_limit(1024, 'y');
  rwkv_test::write_file(path, "1 'y' 1\n2 '" + at_limit + "' 1024\n");
  auto tok = rwkv::load_tokenizer(rwkv::TokenizerKind::World, path.string());
  EXPECT_EQ(tok->encode(at_limit + "y"), (std::vector<int32_t>{2, 1}));
}

TEST(HardeningTokenizers, WorldEchoesAreEscaped) {
  rwkv_test::ScratchDir dir;
  const auto path = dir / "vocab.txt";
  rwkv_test::write_file(path, "\x1b[2J 'a' 1\n");
  const std::string msg = error_of([&] { rwkv::load_tokenizer(rwkv::TokenizerKind::World, path.string()); });
  EXPECT_THAT(msg, AllOf(HasSubstr("bad token id '\\x1b[2J'"), Not(HasSubstr("\x1b"))));
}

std::string neox_error(const std::string& json_text) {
  rwkv_test::ScratchDir dir;
  const auto path = dir / "tok.json";
  rwkv_test::write_file(path, json_text);
  return error_of([&] { rwkv::load_tokenizer(rwkv::TokenizerKind::NeoX, path.string()); });
}

// The small NeoX fixture with `added` spliced in as its added_tokens.
std::string neox_with_added_tokens(const std::string& added) {
  std::string text = rwkv_test::read_file(rwkv_test::tokenizer_fixture("neox_small.json"));
  auto j = nlohmann::json::parse(text);
  j.erase("added_tokens");
  text = j.dump();
  text.insert(1, "\"added_tokens\": " + added + ",");
  return text;
}

TEST(HardeningTokenizers, DeepJsonIsRefusedWhileParsing) {
  // 10^6 levels crashed the plain build in the constructor's subtree copies.
  const size_t depth = 1000000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  EXPECT_THAT(neox_error("{\"normalizer\": " + nested + "}"), HasSubstr("JSON nested deeper than 128 levels"));
  std::string objects;
  for (int i = 0; i < 200; ++i) objects += "{\"a\":";
  objects += "1" + std::string(200, '}');
  EXPECT_THAT(neox_error("{\"normalizer\": " + objects + "}"), HasSubstr("JSON nested deeper than 128 levels"));
}

TEST(HardeningTokenizers, NeoxAddedTokenLongerThanTheLimit) {
  const std::string content(100000, 'z');
  const std::string msg = neox_error(neox_with_added_tokens("[{\"id\": 30, \"content\": \"" + content + "\"}]"));
  EXPECT_THAT(msg, HasSubstr("added_tokens[0] (id 30): content is 100000 bytes, more than the 1024"));
}

TEST(HardeningTokenizers, NeoxHugeIdsAreReportedAsWritten) {
  EXPECT_THAT(neox_error(neox_with_added_tokens("[{\"id\": 18446744073709551615, \"content\": \"q\"}]")),
              HasSubstr("added_tokens[0]: bad id 18446744073709551615"));
  EXPECT_THAT(neox_error(neox_with_added_tokens("[{\"id\": 9223372036854775807, \"content\": \"q\"}]")),
              HasSubstr("added_tokens[0]: bad id 9223372036854775807"));
  EXPECT_THAT(neox_error(neox_with_added_tokens("[{\"id\": -1, \"content\": \"q\"}]")),
              HasSubstr("added_tokens[0]: bad id -1"));
  EXPECT_THAT(neox_error("{\"model\": {\"vocab\": {\"a\": 18446744073709551615}}}"),
              HasSubstr("model.vocab \"a\": bad id 18446744073709551615"));
}

// ---- native model files ----

class HardeningNative : public ::testing::Test {
 protected:
  // The v7 fixture converted to `type`; returns its path.
  std::string convert(const char* stem, rwkv::DType type) {
    const std::string path = (dir_ / (std::string(stem) + "." + rwkv::dtype_name(type) + ".rwkv")).string();
    rwkv::convert::ConvertOptions options;
    options.types = rwkv::convert::WeightTypes::for_type(type);
    rwkv::convert::convert_pth((rwkv_test::fixtures_dir() / (std::string(stem) + ".pth")).string(), path, options);
    return path;
  }
  // Writes `bytes` beside the others and returns the loader's error.
  std::string load_error(const std::string& bytes) {
    const auto path = dir_ / "bad.rwkv";
    rwkv_test::write_file(path, bytes);
    std::string msg = error_of([&] { rwkv::Model::load(path.string()); });
    EXPECT_THAT(msg, HasSubstr("bad.rwkv"));
    return msg;
  }
  // Where the table entry of tensor `name` keeps its offset field.
  static size_t offset_field(const std::string& bytes, const std::string& name) {
    uint32_t n_tensors;
    std::memcpy(&n_tensors, bytes.data() + 52, 4);
    size_t at = rwkv::kNativeHeaderBytes;
    for (uint32_t i = 0; i < n_tensors; ++i) {
      uint16_t len;
      std::memcpy(&len, bytes.data() + at, 2);
      const std::string entry_name = bytes.substr(at + 2, len);
      at += 2 + len + 1;
      const auto ndim = static_cast<uint8_t>(bytes[at]);
      at += 1 + 8 * size_t(ndim);
      if (entry_name == name) return at;
      at += 16;
    }
    ADD_FAILURE() << "no tensor " << name;
    return 0;
  }
  static uint64_t data_offset(const std::string& bytes, const std::string& name) {
    uint64_t offset;
    std::memcpy(&offset, bytes.data() + offset_field(bytes, name), 8);
    return offset;
  }
  template <typename T>
  static void poke(std::string& bytes, size_t at, T value) {
    std::memcpy(bytes.data() + at, &value, sizeof(T));
  }

  rwkv_test::ScratchDir dir_;
};

TEST_F(HardeningNative, NonFiniteWeightsAreRefused) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (rwkv::DType type : {rwkv::DType::F32, rwkv::DType::F16, rwkv::DType::BF16}) {
    const std::string good = rwkv_test::read_file(convert("tiny-v7.0", type));
    for (float bad : {nan, inf, -inf}) {
      std::string b = good;
      // A float32 vector, and an element in the middle of a matrix of the tested type.
      poke(b, data_offset(b, "blocks.0.att.x_k") + 4 * 3, bad);
      EXPECT_THAT(load_error(b), HasSubstr("tensor 'blocks.0.att.x_k' (f32) holds a NaN or infinite value at element 3"));
      b = good;
      const uint64_t at = data_offset(b, "blocks.1.att.key.weight");
      if (type == rwkv::DType::F32) {
        poke(b, at + 4 * 100, bad);
      } else {
        poke<uint16_t>(b, at + 2 * 100, type == rwkv::DType::F16 ? rwkv::fp32_to_fp16(bad) : uint16_t(0x7f80 | (bad != bad ? 1 : 0)));
      }
      EXPECT_THAT(load_error(b), HasSubstr(fmt::format("tensor 'blocks.1.att.key.weight' ({}) holds a NaN or infinite "
                                                       "value at element 100",
                                                       rwkv::dtype_name(type))));
    }
  }
  {
    std::string b = rwkv_test::read_file(convert("tiny-v7.0", rwkv::DType::Q8_0));
    poke<uint16_t>(b, data_offset(b, "blocks.1.att.key.weight") + 34 * 2, 0x7c00);  // block 2's scale: +inf
    EXPECT_THAT(load_error(b), HasSubstr("tensor 'blocks.1.att.key.weight' (q8_0) has a scale that is NaN or infinite"));
  }
  {
    const std::string good = rwkv_test::read_file(convert("tiny-v7.0", rwkv::DType::Q4_S));
    for (auto [field, value] : {std::pair{0, nan}, {4, inf}, {0, 1e36f}}) {
      std::string b = good;
      poke(b, data_offset(b, "blocks.1.att.key.weight") + field, value);  // overflows at 255 * 15 steps
      EXPECT_THAT(load_error(b), HasSubstr("tensor 'blocks.1.att.key.weight' (q4_s) has a scale"));
    }
  }
}

TEST(HardeningFinite, KernelFindsTheFirstBadValue) {
  std::vector<float> v(10000, 1.0f);
  EXPECT_EQ(rwkv::find_non_finite(rwkv::DType::F32, v.data(), v.size() * 4), rwkv::kAllFinite);
  v[9999] = std::numeric_limits<float>::infinity();
  v[5000] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(rwkv::find_non_finite(rwkv::DType::F32, v.data(), v.size() * 4), 5000u);
  v[5000] = std::numeric_limits<float>::max();  // large but finite
  EXPECT_EQ(rwkv::find_non_finite(rwkv::DType::F32, v.data(), v.size() * 4), 9999u);
}

TEST_F(HardeningNative, OverlappingTensorsAreRefused) {
  std::string b = rwkv_test::read_file(convert("tiny-v7.0", rwkv::DType::F32));
  // Two vectors of the same size: the table stays consistent except for the overlap.
  poke(b, offset_field(b, "blocks.0.att.x_k"), data_offset(b, "blocks.0.att.x_r"));
  EXPECT_THAT(load_error(b), AllOf(HasSubstr("overlaps tensor"), HasSubstr("blocks.0.att.x_k"),
                                   HasSubstr("blocks.0.att.x_r")));
}

TEST_F(HardeningNative, HeaderMustAgreeWithTheTable) {
  const std::string good = rwkv_test::read_file(convert("tiny-v7.0", rwkv::DType::F32));
  uint32_t n_layer, n_head, head_size;
  std::memcpy(&n_layer, good.data() + 24, 4);
  std::memcpy(&n_head, good.data() + 36, 4);
  std::memcpy(&head_size, good.data() + 40, 4);
  ASSERT_GE(n_layer, 2u);

  std::string b = good;
  poke<uint32_t>(b, 24, n_layer - 1);
  EXPECT_THAT(load_error(b), HasSubstr(fmt::format("tensor 'blocks.{}.", n_layer - 1)));
  EXPECT_THAT(load_error(b), HasSubstr(fmt::format("is not part of an RWKV 7.0 model with n_layer {}", n_layer - 1)));

  b = good;  // the same n_embd split into twice the heads of half the size
  poke<uint32_t>(b, 36, n_head * 2);
  poke<uint32_t>(b, 40, head_size / 2);
  EXPECT_THAT(load_error(b), HasSubstr(fmt::format("tensor 'blocks.0.att.r_k' has shape [{}, {}], expected [{}, {}]",
                                                   n_head, head_size, n_head * 2, head_size / 2)));

  for (const char* stem : {"tiny-v5.2", "tiny-v6.0"}) {
    std::string v = rwkv_test::read_file(convert(stem, rwkv::DType::F32));
    uint32_t h, n;
    std::memcpy(&h, v.data() + 36, 4);
    std::memcpy(&n, v.data() + 40, 4);
    poke<uint32_t>(v, 36, h * 2);
    poke<uint32_t>(v, 40, n / 2);
    EXPECT_THAT(load_error(v), HasSubstr("has shape")) << stem;
  }

  std::string v52 = rwkv_test::read_file(convert("tiny-v5.2", rwkv::DType::F32));
  std::memcpy(v52.data() + 16, "5.0\0\0\0\0\0", 8);  // 5.0 has no gate: its tensors would go unused
  EXPECT_THAT(load_error(v52), HasSubstr("is not part of an RWKV 5.0 model"));
}

TEST_F(HardeningNative, OldFormatVersionSaysConvertAgain) {
  std::string b = rwkv_test::read_file(convert("tiny-v7.0", rwkv::DType::F32));
  poke<uint32_t>(b, 8, 1);
  EXPECT_THAT(load_error(b), HasSubstr("format version 1, written by an earlier build; convert the checkpoint again"));
}

TEST_F(HardeningNative, NamesFromTheFileAreEscaped) {
  std::string b = rwkv_test::read_file(convert("tiny-v7.0", rwkv::DType::F32));
  std::memcpy(b.data() + 16, "\x1b[2J\0\0\0\0", 8);
  std::string msg = load_error(b);
  EXPECT_THAT(msg, AllOf(HasSubstr("unknown architecture '\\x1b[2J'"), Not(HasSubstr("\x1b"))));

  b = rwkv_test::read_file(convert("tiny-v7.0", rwkv::DType::F32));
  b[rwkv::kNativeHeaderBytes + 2] = '\n';            // the first tensor name's first byte
  b[rwkv::kNativeHeaderBytes + 2 + 10 + 1] = 9;      // and its rank ('emb.weight' is 10 bytes)
  msg = load_error(b);
  EXPECT_THAT(msg, AllOf(HasSubstr("tensor '\\nmb.weight' has rank 9"), Not(HasSubstr("\n"))));
}

// ---- state files ----

TEST_F(HardeningNative, StateFileErrorsNameThePath) {
  auto model = rwkv::Model::load(convert("tiny-v7.0", rwkv::DType::F32));
  const std::string d = dir_.path().string();
  EXPECT_THAT(error_of([&] { rwkv::load_state(d, *model); }), AllOf(HasSubstr(d), HasSubstr("is a directory")));
  const std::string missing_dir = (dir_ / "absent" / "s.state").string();
  EXPECT_THAT(error_of([&] { rwkv::save_state(missing_dir, *model, model->new_state()); }),
              AllOf(HasSubstr(missing_dir), HasSubstr("No such file or directory")));
}

// ---- the command line ----

TEST(HardeningCli, SpecialFilesGiveErrorsNotHangs) {
  rwkv_test::ScratchDir dir;
  const std::string fifo = (dir / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string model = RWKV_DEFAULT_MODEL_PATH;
  // `timeout` turns a regression into a failure instead of a hung suite.
  auto run = [](const std::string& args) { return rwkv_test::run_cli_with_stderr("" + args).output; };
  auto result = rwkv_test::run_command("timeout 20 '" + rwkv_test::cli_path() + "' info --model " + fifo + " 2>&1");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("is a FIFO"));
  result = rwkv_test::run_command("timeout 20 '" + rwkv_test::cli_path() + "' generate --model " + model +
                                  " --prompt-file /dev/zero --max-tokens 1 2>&1");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("/dev/zero: the input file is a character device"));
  EXPECT_THAT(run("generate --model " + model + " --prompt-file " + dir.path().string() + " --max-tokens 1"),
              AllOf(HasSubstr(dir.path().string()), HasSubstr("is a directory")));
  EXPECT_THAT(run("generate --model " + model + " --state-in " + dir.path().string() + " --prompt a --max-tokens 1"),
              AllOf(HasSubstr(dir.path().string()), HasSubstr("the state file is a directory")));
}

}  // namespace
