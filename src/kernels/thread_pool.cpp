#include "kernels/thread_pool.hpp"

#include <cxxabi.h>
#include <fmt/format.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <typeinfo>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "rwkv/error.hpp"

namespace rwkv {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// The run state lives in one 64-bit word so that claiming a task and checking that
// it belongs to the current run is a single compare-and-swap: a worker that wakes
// late cannot claim a task of a run that has already finished.
//   bits 63..32: run generation, 31..16: number of tasks, 15..0: next unclaimed task.
constexpr unsigned kMaxTasksPerWord = 0xffff;
constexpr uint64_t make_word(uint32_t generation, uint32_t n_tasks, uint32_t next) {
  return (uint64_t(generation) << 32) | (uint64_t(n_tasks) << 16) | next;
}
constexpr uint32_t word_generation(uint64_t w) { return uint32_t(w >> 32); }
constexpr uint32_t word_tasks(uint64_t w) { return uint32_t(w >> 16) & 0xffff; }
constexpr uint32_t word_next(uint64_t w) { return uint32_t(w) & 0xffff; }

// How long an idle worker spins before sleeping: longer than the gaps between the
// matrix products of a decode step, so that a token's products never pay a wake-up.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(300);

// RWKV_POOL_STATS=1: each call site's hand-offs to the pool are counted and timed (wall
// time of the run, time its tasks were busy), and the pool prints them to stderr when it
// is destroyed: where many threads wait on each other, and which parallel regions are
// too short or too unbalanced to use them.
bool stats_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("RWKV_POOL_STATS");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}

struct SiteStats {
  uint64_t runs = 0;
  uint64_t tasks = 0;
  double wall_seconds = 0;
  double busy_seconds = 0;
};

// The call site of the next run on this thread (parallel_for's caller), where the
// function handed to run() is a wrapper of its own.
thread_local const std::type_info* t_site = nullptr;

std::string site_name(const std::type_info& type) {
  int status = 0;
  char* readable = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = status == 0 && readable != nullptr ? readable : type.name();
  std::free(readable);
  return name;
}

}  // namespace

struct ThreadPool::Stats {
  std::mutex mutex;
  std::map<const std::type_info*, SiteStats> sites;
};

struct ThreadPool::Impl {
  unsigned n_threads = 1;
  std::vector<std::thread> workers;

  std::atomic<uint64_t> word{0};
  std::atomic<unsigned> done{0};
  // Written by run() before it publishes a run's word and read only by a thread that
  // has claimed a task of that run, which run() waits for before writing it again.
  const std::function<void(unsigned)>* fn = nullptr;

  std::mutex mutex;
  std::condition_variable wake;
  std::atomic<unsigned> sleepers{0};
  std::atomic<bool> stopping{false};
  // Set while a run is in progress: a second caller (another thread sharing the
  // model, or a task calling run) does its tasks itself instead of waiting.
  std::atomic_flag in_use = ATOMIC_FLAG_INIT;

  // Claims and runs tasks of the run identified by `generation` until none are left.
  void work_on(uint32_t generation) {
    uint64_t w = word.load(std::memory_order_acquire);
    while (word_generation(w) == generation && word_next(w) < word_tasks(w)) {
      if (!word.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      (*fn)(word_next(w));
      done.fetch_add(1, std::memory_order_release);
      w = word.load(std::memory_order_acquire);
    }
  }

  void worker_loop() {
    // Generation 0 is the state before the first run. Not word's current value: a run
    // may already have been published before this thread started, and it must join it.
    uint32_t seen = 0;
    while (true) {
      uint32_t generation = seen;
      const auto spin_until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
      for (unsigned i = 1; !stopping.load(std::memory_order_relaxed); ++i) {
        generation = word_generation(word.load(std::memory_order_acquire));
        if (generation != seen) break;
        cpu_relax();
        if (i % 256 == 0 && std::chrono::steady_clock::now() > spin_until) {
          std::unique_lock lock(mutex);
          sleepers.fetch_add(1);
          wake.wait(lock, [&] {
            generation = word_generation(word.load());
            return generation != seen || stopping.load();
          });
          sleepers.fetch_sub(1);
          break;
        }
      }
      if (stopping.load()) return;
      seen = generation;
      work_on(generation);
    }
  }

  void run_batch(unsigned n_tasks, const std::function<void(unsigned)>& task_fn) {
    fn = &task_fn;
    done.store(0, std::memory_order_relaxed);
    const uint32_t generation = word_generation(word.load(std::memory_order_relaxed)) + 1;
    // Sequentially consistent, paired with the sleepers count: either a worker going
    // to sleep sees this run, or this thread sees the sleeper and wakes it.
    word.store(make_word(generation, n_tasks, 0));
    if (sleepers.load() > 0) {
      std::lock_guard lock(mutex);
      wake.notify_all();
    }
    work_on(generation);
    for (unsigned i = 1; done.load(std::memory_order_acquire) != n_tasks; ++i) {
      // A worker holding a task may have been preempted (the machine is shared).
      if (i % 1024 == 0) {
        std::this_thread::yield();
      } else {
        cpu_relax();
      }
    }
  }
};

ThreadPool::ThreadPool(unsigned n_threads) : impl_(std::make_unique<Impl>()) {
  impl_->n_threads = n_threads == 0 ? 1 : n_threads;
  impl_->workers.reserve(impl_->n_threads - 1);
  for (unsigned i = 1; i < impl_->n_threads; ++i) impl_->workers.emplace_back([this] { impl_->worker_loop(); });
  if (stats_enabled()) stats_ = std::make_unique<Stats>();
}

ThreadPool::~ThreadPool() {
  if (stats_ != nullptr && !stats_->sites.empty()) {
    std::vector<std::pair<std::string, SiteStats>> sorted;
    double total = 0;
    for (const auto& [type, site] : stats_->sites) {
      sorted.emplace_back(site_name(*type), site);
      total += site.wall_seconds;
    }
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.second.wall_seconds > b.second.wall_seconds; });
    fmt::print(stderr, "pool stats: {} threads, {:.1f} ms in runs; per call site: wall ms, runs, tasks, busy % of "
                       "threads x wall\n", impl_->n_threads, total * 1e3);
    for (const auto& [name, site] : sorted) {
      const std::string shown = name.size() > 150 ? "..." + name.substr(name.size() - 147) : name;
      fmt::print(stderr, "  {:9.2f} {:7} {:8} {:5.1f}%  {}\n", site.wall_seconds * 1e3, site.runs, site.tasks,
                 100.0 * site.busy_seconds / (site.wall_seconds * impl_->n_threads), shown);
    }
  }
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping.store(true);
  }
  impl_->wake.notify_all();
  for (std::thread& t : impl_->workers) t.join();
}

unsigned ThreadPool::size() const { return impl_->n_threads; }

void ThreadPool::run(unsigned n_tasks, const std::function<void(unsigned task)>& fn) {
  const std::type_info* site = t_site != nullptr ? t_site : &fn.target_type();
  t_site = nullptr;
  if (impl_->workers.empty() || n_tasks <= 1 || impl_->in_use.test_and_set(std::memory_order_acquire)) {
    for (unsigned t = 0; t < n_tasks; ++t) fn(t);
    return;
  }
  struct Release {
    std::atomic_flag& flag;
    ~Release() { flag.clear(std::memory_order_release); }
  } release{impl_->in_use};
  if (stats_ != nullptr) {
    std::atomic<int64_t> busy_ns{0};
    const std::function<void(unsigned)> timed = [&](unsigned t) {
      const auto start = std::chrono::steady_clock::now();
      fn(t);
      busy_ns.fetch_add((std::chrono::steady_clock::now() - start).count(), std::memory_order_relaxed);
    };
    const auto start = std::chrono::steady_clock::now();
    run_all(n_tasks, timed);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::lock_guard lock(stats_->mutex);
    SiteStats& s = stats_->sites[site];
    s.runs += 1;
    s.tasks += n_tasks;
    s.wall_seconds += wall;
    s.busy_seconds += double(busy_ns.load()) * 1e-9;
    return;
  }
  run_all(n_tasks, fn);
}

void ThreadPool::run_all(unsigned n_tasks, const std::function<void(unsigned task)>& fn) {
  for (unsigned first = 0; first < n_tasks; first += kMaxTasksPerWord) {
    const unsigned count = std::min(kMaxTasksPerWord, n_tasks - first);
    if (first == 0 && count == n_tasks) {
      impl_->run_batch(count, fn);
    } else {
      const std::function<void(unsigned)> shifted = [&](unsigned t) { fn(first + t); };
      impl_->run_batch(count, shifted);
    }
  }
}

namespace {

std::atomic<unsigned> g_requested_threads{0};
std::atomic<bool> g_pool_started{false};
thread_local ThreadPool* t_pool_override = nullptr;

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return in ? line : std::string();
}

unsigned requested_pool_size() {
  const unsigned requested = g_requested_threads.load();
  return requested == 0 ? physical_core_count() : requested;
}

unsigned start_kernel_pool() {
  g_pool_started = true;
  return requested_pool_size();
}

// The pool of the process, whatever a KernelPoolOverride says.
ThreadPool& process_pool() {
  static ThreadPool pool(start_kernel_pool());
  return pool;
}

}  // namespace

void set_thread_count(unsigned n_threads) {
  if (g_pool_started.load()) {
    const unsigned size = process_pool().size();
    // Asking again for the size in use changes nothing.
    if ((n_threads == 0 ? physical_core_count() : n_threads) == size) return;
    throw Error(fmt::format("set_thread_count({}): the kernel thread pool has already started with {} threads",
                            n_threads, size));
  }
  g_requested_threads = n_threads;
}

// From /sys/devices/system/cpu; hardware_concurrency() where that is unreadable.
unsigned physical_core_count() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  const bool have_mask = sched_getaffinity(0, sizeof(allowed), &allowed) == 0;
  std::set<std::pair<std::string, std::string>> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (have_mask && !CPU_ISSET(cpu, &allowed)) continue;
    const std::string dir = fmt::format("/sys/devices/system/cpu/cpu{}/topology/", cpu);
    const std::string core = read_first_line(dir + "core_id");
    const std::string package = read_first_line(dir + "physical_package_id");
    if (core.empty() || package.empty()) {
      if (!have_mask) break;  // without a mask, the first missing cpu ends the list
      continue;
    }
    cores.emplace(package, core);
  }
  if (!cores.empty()) return static_cast<unsigned>(cores.size());
  const unsigned logical = std::thread::hardware_concurrency();
  return logical == 0 ? 1 : logical;
}

ThreadPool& kernel_pool() {
  if (t_pool_override != nullptr) return *t_pool_override;
  return process_pool();
}

unsigned thread_count() {
  // Asking does not start the pool: set_thread_count may still follow.
  if (t_pool_override != nullptr) return t_pool_override->size();
  return g_pool_started.load() ? process_pool().size() : requested_pool_size();
}

void parallel_for(uint32_t n, uint32_t grain, const std::function<void(uint32_t, uint32_t)>& fn) {
  ThreadPool& pool = kernel_pool();
  const uint32_t grains = (n + grain - 1) / grain;
  if (pool.size() <= 1 || grains < 2) {
    if (n > 0) fn(0, n);
    return;
  }
  // Several tasks per thread, so that a thread slowed by other work on a shared
  // machine leaves the rest to the others.
  const uint32_t n_tasks = std::min(grains, pool.size() * 4);
  t_site = &fn.target_type();  // for RWKV_POOL_STATS: the caller's function, not the wrapper below
  pool.run(n_tasks, [&](unsigned task) {
    const uint32_t begin = uint32_t(uint64_t(grains) * task / n_tasks) * grain;
    const uint32_t end = std::min(n, uint32_t(uint64_t(grains) * (task + 1) / n_tasks) * grain);
    if (begin < end) fn(begin, end);
  });
}

KernelPoolOverride::KernelPoolOverride(ThreadPool& pool) : previous_(t_pool_override) { t_pool_override = &pool; }
KernelPoolOverride::~KernelPoolOverride() { t_pool_override = previous_; }

}  // namespace rwkv
