#include "kernels/thread_pool.hpp"

#include <atomic>
#include <mutex>
#include <thread>

namespace rwkv {

// Serial placeholder: runs every task on the calling thread.
struct ThreadPool::Impl {
  unsigned n_threads = 1;
};

ThreadPool::ThreadPool(unsigned n_threads) : impl_(std::make_unique<Impl>()) {
  impl_->n_threads = n_threads == 0 ? 1 : n_threads;
}
ThreadPool::~ThreadPool() = default;
unsigned ThreadPool::size() const { return impl_->n_threads; }

void ThreadPool::run(unsigned n_tasks, const std::function<void(unsigned task)>& fn) {
  for (unsigned t = 0; t < n_tasks; ++t) fn(t);
}

namespace {
std::atomic<unsigned> g_requested{0};
}

void set_thread_count(unsigned n_threads) { g_requested = n_threads; }

unsigned physical_core_count() {
  const unsigned logical = std::thread::hardware_concurrency();
  return logical == 0 ? 1 : logical;
}

ThreadPool& kernel_pool() {
  static ThreadPool pool(g_requested == 0 ? physical_core_count() : g_requested.load());
  return pool;
}

unsigned thread_count() { return kernel_pool().size(); }

}  // namespace rwkv
