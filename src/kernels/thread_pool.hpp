// A small persistent thread pool: the threads are created once and wait for work,
// so splitting each matrix product across cores costs no thread creation per token.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "rwkv/threads.hpp"

namespace rwkv {

class ThreadPool {
 public:
  // n_threads counts the calling thread, which takes part in every run.
  explicit ThreadPool(unsigned n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned size() const;
  // Calls fn(task) for every task in [0, n_tasks), spread over the threads, and returns
  // when all are done. fn must not throw. While a run is in progress, another run on
  // the same pool (from another thread, or from inside fn) does its tasks on its own
  // calling thread, so a Model shared by several threads stays correct.
  void run(unsigned n_tasks, const std::function<void(unsigned task)>& fn);

  struct Impl;
  struct Stats;

 private:
  void run_all(unsigned n_tasks, const std::function<void(unsigned task)>& fn);
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<Stats> stats_;  // RWKV_POOL_STATS=1 (thread_pool.cpp)
};

// The pool the kernels use. Its size is set once, before the first use, by
// set_thread_count (rwkv/threads.hpp; 0 = the number of physical cores). Model::load is
// a first use: it checks the weights for NaN and infinity on this pool.
ThreadPool& kernel_pool();

// Calls fn(begin, end) on contiguous parts of [0, n) spread over kernel_pool(), each
// part a whole number of `grain`s. Every index is handled by exactly one call, so work
// whose parts are independent gives the same result whatever the thread count.
void parallel_for(uint32_t n, uint32_t grain, const std::function<void(uint32_t begin, uint32_t end)>& fn);

// While alive, kernel_pool() on this thread returns `pool` instead of the process
// pool: lets tests run the same model with pools of different sizes.
class KernelPoolOverride {
 public:
  explicit KernelPoolOverride(ThreadPool& pool);
  ~KernelPoolOverride();
  KernelPoolOverride(const KernelPoolOverride&) = delete;
  KernelPoolOverride& operator=(const KernelPoolOverride&) = delete;

 private:
  ThreadPool* previous_;
};

}  // namespace rwkv
