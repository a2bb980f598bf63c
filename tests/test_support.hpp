// Helpers shared by the tests: where ../shared and the committed fixtures are,
// scratch directories, and reading raw float32 files.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

namespace rwkv_test {

// ../shared next to the source tree, or $RWKV_SHARED_DIR; nullopt when absent.
inline std::optional<std::filesystem::path> shared_dir() {
  if (const char* env = std::getenv("RWKV_SHARED_DIR"); env != nullptr && *env != '\0') {
    std::filesystem::path p(env);
    if (std::filesystem::is_directory(p)) return p;
    return std::nullopt;
  }
  std::filesystem::path p = std::filesystem::path(RWKV_SOURCE_DIR) / ".." / "shared";
  if (std::filesystem::is_directory(p / "models")) return std::filesystem::canonical(p);
  return std::nullopt;
}

// Why shared_dir() found nothing, for the skip message.
inline std::string shared_dir_missing_reason() {
  if (const char* env = std::getenv("RWKV_SHARED_DIR"); env != nullptr && *env != '\0') {
    return std::string("RWKV_SHARED_DIR=") + env + " is not a directory";
  }
  return "../shared not found next to the source tree and RWKV_SHARED_DIR not set";
}

inline std::filesystem::path source_dir() { return std::filesystem::path(RWKV_SOURCE_DIR); }
inline std::filesystem::path fixtures_dir() { return source_dir() / "tests" / "fixtures"; }
inline std::string cli_path() { return RWKV_CLI_PATH; }

// A fresh, empty directory for the current test, removed by the caller's scope end.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info ? info->test_suite_name() : "t") + "." + (info ? info->name() : "t");
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    path_ = std::filesystem::temp_directory_path() / ("rwkv-test-" + std::to_string(::getpid()) + "-" + name);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // what the command wrote to stdout
};

// Runs a shell command line and captures its stdout.
inline CommandResult run_command(const std::string& command_line) {
  std::FILE* pipe = ::popen(command_line.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + command_line);
  CommandResult result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// rwkv-cli with `args`, a shell fragment (quoting and redirections are the caller's);
// `environment`, if given, is put before the command (e.g. "RWKV_ISA=scalar").
inline CommandResult run_cli(const std::string& args, const std::string& environment = "") {
  std::string cmd = environment.empty() ? "" : environment + " ";
  cmd += "'";  // appended piece by piece: GCC 12 warns (-Wrestrict) on "'" + string
  cmd += cli_path();
  cmd += "' ";
  cmd += args;
  return run_command(cmd);
}

// rwkv-cli with `args`, its stderr captured with its stdout.
inline CommandResult run_cli_with_stderr(const std::string& args, const std::string& environment = "") {
  return run_cli(args + " 2>&1", environment);
}

inline std::vector<float> read_f32_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  in.seekg(0, std::ios::end);
  auto size = static_cast<size_t>(in.tellg());
  in.seekg(0);
  std::vector<float> out(size / sizeof(float));
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(float)));
  return out;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace rwkv_test

#define RWKV_SKIP_WITHOUT_SHARED()                                                         \
  do {                                                                                     \
    if (!rwkv_test::shared_dir()) {                                                        \
      GTEST_SKIP() << rwkv_test::shared_dir_missing_reason()                               \
                   << ": skipping the test against the shared reference data";            \
    }                                                                                      \
  } while (0)
