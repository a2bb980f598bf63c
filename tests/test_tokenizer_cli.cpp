// rwkv-cli tokenize: flags and outputs as documented, run as a subprocess.
#include <gtest/gtest.h>

#include <cstdio>

#include "tokenizer_test_support.hpp"

namespace {

struct CliResult {
  int status;
  std::string out;
  std::string err;
};

// Runs rwkv-cli with `args` (already shell-quoted) in `dir`.
CliResult run_cli(const std::string& args, const std::filesystem::path& dir) {
  auto err_path = dir / "stderr.txt";
  std::string cmd = "cd '" + dir.string() + "' && '" + rwkv_test::cli_path() + "' " + args + " 2>'" +
                    err_path.string() + "'";
  const rwkv_test::CommandResult run = rwkv_test::run_command(cmd);
  return {run.exit_code, run.output, rwkv_test::read_file(err_path)};
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

TEST(TokenizerCli, BytesEncodeDecode) {
  rwkv_test::ScratchDir dir;
  CliResult r = run_cli("tokenize --tokenizer bytes --text hi", dir.path());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "[104,105]\n");
  r = run_cli("tokenize --tokenizer bytes --decode --ids 104,105", dir.path());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "hi");
  r = run_cli("tokenize --tokenizer bytes --text ''", dir.path());
  EXPECT_EQ(r.out, "[]\n");
}

TEST(TokenizerCli, WorldFileWithRawBytes) {
  rwkv_test::ScratchDir dir;
  rwkv_test::write_file(dir / "in.bin", "\xE4\xB8\xFF" "abcd");
  const std::string vocab = quote(rwkv_test::tokenizer_fixture("world_small.txt"));
  CliResult r = run_cli("tokenize --tokenizer world --vocab " + vocab + " --file in.bin", dir.path());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "[17,21,7]\n");
  r = run_cli("tokenize --tokenizer world --vocab " + vocab + " --decode --ids 17,21,7", dir.path());
  EXPECT_EQ(r.out, "\xE4\xB8\xFF" "abcd");
  r = run_cli("tokenize --tokenizer world --vocab " + vocab + " --decode --keep-special --ids 0,1", dir.path());
  EXPECT_EQ(r.out, "<|endoftext|>a");
}

TEST(TokenizerCli, Errors) {
  rwkv_test::ScratchDir dir;
  // The default vocabulary is the usual file name in the working directory.
  CliResult r = run_cli("tokenize --tokenizer world --text hi", dir.path());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("rwkv_vocab_v20230424.txt"), std::string::npos) << r.err;
  r = run_cli("tokenize --tokenizer neox --text hi", dir.path());
  EXPECT_NE(r.err.find("20B_tokenizer.json"), std::string::npos) << r.err;
  r = run_cli("tokenize --tokenizer bytes --decode --ids 1,300", dir.path());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("token id 300"), std::string::npos) << r.err;
  r = run_cli("tokenize --tokenizer klingon --text hi", dir.path());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("unknown tokenizer 'klingon'"), std::string::npos) << r.err;
  r = run_cli("tokenize --tokenizer bytes --text a --file b", dir.path());
  EXPECT_EQ(r.status, 2);
  r = run_cli("tokenize --tokenizer bytes --decode", dir.path());
  EXPECT_EQ(r.status, 2);
}

TEST(TokenizerCli, SharedVocabularies) {
  RWKV_SKIP_WITHOUT_SHARED();
  rwkv_test::ScratchDir dir;
  const auto tokenizers = *rwkv_test::shared_dir() / "tokenizers";
  CliResult r = run_cli("tokenize --tokenizer world --vocab " + quote((tokenizers / "rwkv_vocab_v20230424.txt").string()) +
                      " --text 'Hello, world!'",
                  dir.path());
  EXPECT_EQ(r.out, "[33155,45,40213,34]\n") << r.err;
  r = run_cli("tokenize --tokenizer neox --vocab " + quote((tokenizers / "20B_tokenizer.json").string()) +
                  " --text 'Hello, world!'",
              dir.path());
  EXPECT_EQ(r.out, "[12092,13,1533,2]\n") << r.err;
  // --vocab defaults to the usual name in the working directory.
  std::filesystem::copy_file(tokenizers / "20B_tokenizer.json", dir / "20B_tokenizer.json");
  r = run_cli("tokenize --tokenizer neox --decode --ids 12092,13,1533,2,0", dir.path());
  EXPECT_EQ(r.out, "Hello, world!") << r.err;
}

}  // namespace
