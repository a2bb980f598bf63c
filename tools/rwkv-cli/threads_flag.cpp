#include "threads_flag.hpp"

#include <string>

#include "rwkv/threads.hpp"

namespace rwkv_cli {

namespace {
// More threads than this is a typo, not a machine.
constexpr int64_t kMaxThreads = 1024;
}  // namespace

void declare_threads_flag(ArgParser& args) {
  args.option("threads", "N", "threads for the matrix products (0 = one per physical core)",
              std::to_string(rwkv::physical_core_count()));
}

void apply_threads_flag(const ArgParser& args) {
  const int64_t threads = args.get_int("threads", 0, kMaxThreads);
  rwkv::set_thread_count(static_cast<unsigned>(threads));
}

}  // namespace rwkv_cli
