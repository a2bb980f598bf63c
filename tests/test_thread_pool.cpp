// The kernel thread pool, and the row split of the matrix products over it: results
// must not depend on the number of threads.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <thread>
#include <memory>
#include <vector>

#include "convert/to_native.hpp"
#include "kernels/half.hpp"
#include "kernels/matvec.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/isa.hpp"
#include "rwkv/machine.hpp"
#include "kernels/thread_pool.hpp"
#include "rwkv/model.hpp"
#include "test_support.hpp"

namespace {

// Every task runs exactly once, whatever the ratio of tasks to threads.
void expect_each_task_once(rwkv::ThreadPool& pool, unsigned n_tasks) {
  std::vector<std::atomic<int>> hits(n_tasks);
  pool.run(n_tasks, [&](unsigned t) { hits[t].fetch_add(1, std::memory_order_relaxed); });
  for (unsigned t = 0; t < n_tasks; ++t) ASSERT_EQ(hits[t].load(), 1) << "task " << t << " of " << n_tasks;
}

TEST(ThreadPool, RunsEveryTaskOnceForAnyTaskCount) {
  for (unsigned threads : {1u, 2u, 3u, 5u}) {
    rwkv::ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (unsigned n_tasks : {0u, 1u, 2u, threads - 1, threads, threads + 1, 7u * threads, 1000u}) {
      expect_each_task_once(pool, n_tasks);
    }
  }
}

TEST(ThreadPool, ZeroThreadsMeansOne) { EXPECT_EQ(rwkv::ThreadPool(0).size(), 1u); }

TEST(ThreadPool, ManyShortRunsInARow) {
  rwkv::ThreadPool pool(3);
  std::vector<uint64_t> sums(4, 0);
  for (int run = 0; run < 20000; ++run) {
    pool.run(4, [&](unsigned t) { sums[t] += t + 1; });
  }
  for (unsigned t = 0; t < 4; ++t) EXPECT_EQ(sums[t], 20000u * (t + 1));
}

TEST(ThreadPool, WakesWorkersThatFellAsleep) {
  rwkv::ThreadPool pool(2);
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the workers' spin time
    expect_each_task_once(pool, 8);
  }
}

TEST(ThreadPool, MoreTasksThanOneRunWordHolds) {
  rwkv::ThreadPool pool(2);
  expect_each_task_once(pool, 70000);
}

TEST(ThreadPool, ConcurrentAndNestedRunsStillRunEveryTask) {
  rwkv::ThreadPool pool(2);
  std::atomic<uint64_t> total{0};
  auto work = [&] {
    for (int i = 0; i < 200; ++i) {
      pool.run(6, [&](unsigned) {
        pool.run(3, [&](unsigned) { total.fetch_add(1, std::memory_order_relaxed); });
      });
    }
  };
  std::thread other(work);
  work();
  other.join();
  EXPECT_EQ(total.load(), 2u * 200 * 6 * 3);
}

// The cost of a hand-off: each run's two tasks wait for each other, so every run
// needs the worker to pick up a task (tiny tasks alone the caller would do itself).
// Bounded in time: on a loaded machine a preempted worker makes a run last a time slice.
TEST(ThreadPool, OverheadPerRunIsSmall) {
  rwkv::ThreadPool pool(2);
  std::atomic<unsigned> arrived{0};
  auto one_run = [&] {
    arrived = 0;
    pool.run(2, [&](unsigned) {
      arrived.fetch_add(1);
      while (arrived.load() < 2) {
      }
    });
  };
  for (int i = 0; i < 100; ++i) one_run();
  std::vector<double> micros;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (micros.size() < 20000 && std::chrono::steady_clock::now() < deadline) {
    const auto start = std::chrono::steady_clock::now();
    one_run();
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(micros.begin(), micros.end());
  const double median = micros[micros.size() / 2];
  std::printf("[ measured ] thread pool: run handed to both threads: min %.2f us, median %.2f us, 90%% %.2f us (%zu runs)\n",
              micros.front(), median, micros[micros.size() * 9 / 10], micros.size());
  // On a loaded machine one of the two threads is often not running for a whole time
  // slice (milliseconds), so the bound only catches a pool that sleeps through runs.
  EXPECT_LT(micros.front(), 50000.0);
}

TEST(ThreadPool, PhysicalCoresAreCounted) {
  const unsigned cores = rwkv::physical_core_count();
  EXPECT_GE(cores, 1u);
  EXPECT_LE(cores, std::max(1u, std::thread::hardware_concurrency()));
}

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> out(n);
  for (float& v : out) v = normal(rng);
  return out;
}

// Every row (and every token × head of the per-head work) is computed by one task with
// the same code whatever the split, so our own kernels give bit-identical results for
// any thread count. The scalar level uses Eigen's GEMM in sequence mode, which sums a
// row in an order that depends on where its row block starts: close, not identical.
bool own_gemm() { return rwkv::kernels().matmat_rows != nullptr; }

// y = W x (and Y = W X) with pools of 1, 2 and 3 threads.
void expect_same_products_for_any_pool(rwkv::DType dtype, uint32_t rows, uint32_t cols) {
  const std::vector<float> weights = random_values(size_t(rows) * cols, rows * 31 + cols);
  const std::vector<std::byte> stored =
      dtype == rwkv::DType::F32 ? std::vector<std::byte>() : rwkv::quantize_rows(weights.data(), rows, cols, dtype);
  rwkv::MatrixRef w{dtype, rows, cols,
                    dtype == rwkv::DType::F32 ? static_cast<const void*>(weights.data()) : stored.data()};
  // 5 tokens: the few-token kernel; 70: the GEMM, whose tokens are split too where the
  // rows are too few for the threads.
  constexpr uint32_t kFewTokens = 5, kManyTokens = 70;
  const std::vector<float> x = random_values(size_t(kManyTokens) * cols, 7);
  auto products = [&](unsigned threads) {
    rwkv::ThreadPool pool(threads);
    rwkv::KernelPoolOverride use(pool);
    std::vector<float> y(rows), Y(size_t(kFewTokens) * rows), Z(size_t(kManyTokens) * rows);
    rwkv::matvec(w, x.data(), y.data());
    rwkv::matmat(w, x.data(), Y.data(), kFewTokens);
    rwkv::matmat(w, x.data(), Z.data(), kManyTokens);
    y.insert(y.end(), Y.begin(), Y.end());
    y.insert(y.end(), Z.begin(), Z.end());
    return y;
  };
  const std::vector<float> serial = products(1);
  for (unsigned threads : {2u, 3u}) {
    const std::vector<float> split = products(threads);
    ASSERT_EQ(split.size(), serial.size());
    for (size_t i = 0; i < serial.size(); ++i) {
      const bool bit_identical = own_gemm() || i < rows;
      const float tolerance = bit_identical ? 0.0f : 1e-5f * std::sqrt(float(cols)) * std::max(1.0f, std::abs(serial[i]));
      ASSERT_NEAR(split[i], serial[i], tolerance) << rwkv::kernel_isa() << " " << rwkv::dtype_name(dtype) << " [" << rows << ", " << cols << "], "
                                                  << threads << " threads, output " << i;
    }
  }
}

// At every instruction-set level this processor runs.
TEST(RowSplit, SameResultsForAnyThreadCount) {
  ASSERT_GT(768u * 768u, rwkv::min_weights_to_split()) << "the matrices below must be large enough to be split";
  for (rwkv::IsaLevel level : rwkv::supported_isa_levels())
  for (rwkv::DType dtype :
       {rwkv::DType::F32, rwkv::DType::F16, rwkv::DType::BF16, rwkv::DType::Q8_0, rwkv::DType::Q4_S}) {
    for (auto [rows, cols] : {std::pair{768u, 768u}, {1000u, 333u}, {64u, 768u}, {3072u, 64u}, {17u, 5000u}, {40u, 900u}}) {
      rwkv::ScopedKernels use(level);
      expect_same_products_for_any_pool(dtype, rows, cols);
    }
  }
}

nlohmann::json fixture_models() {
  std::ifstream in(rwkv_test::fixtures_dir() / "fixtures.json");
  return nlohmann::json::parse(in)["models"];
}

// Whole models, one of each version, in every weight type and at every instruction-set
// level: logits with 1 and 2 threads, decoding token by token and in sequence mode.
TEST(RowSplit, FixtureModelLogitsDoNotDependOnThreadCount) {
  rwkv_test::ScratchDir dir;
  // The fixtures are tiny: split every product, however small.
  const uint64_t saved_threshold = rwkv::min_weights_to_split();
  rwkv::set_min_weights_to_split(0);
  struct Restore {
    uint64_t value;
    ~Restore() { rwkv::set_min_weights_to_split(value); }
  } restore{saved_threshold};
  for (const rwkv::DType type :
       {rwkv::DType::F32, rwkv::DType::F16, rwkv::DType::BF16, rwkv::DType::Q8_0, rwkv::DType::Q4_S})
  for (const auto& f : fixture_models()) {
    const std::string path = (dir / (f["name"].get<std::string>() + ".rwkv")).string();
    rwkv::convert::ConvertOptions options;
    options.types = rwkv::convert::WeightTypes::for_type(type);
    rwkv::convert::convert_pth((rwkv_test::fixtures_dir() / f["file"].get<std::string>()).string(), path, options);
    // Loaded at each level: a level may pack the weights for its own kernels at load.
    std::shared_ptr<const rwkv::Model> model;
    const auto tokens = f["tokens"].get<std::vector<int32_t>>();
    auto all_logits = [&](unsigned threads) {
      rwkv::ThreadPool pool(threads);
      rwkv::KernelPoolOverride use(pool);
      rwkv::State state = model->new_state();
      std::vector<float> logits(model->info().n_vocab), out;
      for (int32_t token : tokens) {
        model->forward(token, state, logits);
        out.insert(out.end(), logits.begin(), logits.end());
      }
      // Sequence mode over the tokens twice: past 32 tokens a layer's products are packed
      // over the pool in one hand-off (matmat_grouped's deferred packing).
      std::vector<int32_t> twice = tokens;
      twice.insert(twice.end(), tokens.begin(), tokens.end());
      rwkv::State sequence_state = model->new_state();
      std::vector<float> sequence_logits(twice.size() * model->info().n_vocab);
      model->forward_sequence(twice, sequence_state, sequence_logits);
      out.insert(out.end(), sequence_logits.begin(), sequence_logits.end());
      return out;
    };
    for (rwkv::IsaLevel level : rwkv::supported_isa_levels()) {
    rwkv::ScopedKernels use(level);
    model = rwkv::Model::load(path);
    const std::vector<float> one = all_logits(1);
    // RWKV-7 with 3 threads too: its 2 and 4 heads then go in parts of their state rows.
    const std::vector<unsigned> more = f["arch_version"] == "7.0" ? std::vector{2u, 3u} : std::vector{2u};
    for (unsigned threads : more) {
      const std::vector<float> split = all_logits(threads);
      ASSERT_EQ(one.size(), split.size());
      const size_t serial_values = tokens.size() * model->info().n_vocab;
      for (size_t i = 0; i < one.size(); ++i) {
        const bool bit_identical = own_gemm() || i < serial_values;
        ASSERT_NEAR(one[i], split[i], bit_identical ? 0.0f : 1e-5f * std::max(1.0f, std::abs(one[i])))
            << f["name"].get<std::string>() << " " << rwkv::kernel_isa() << " " << rwkv::dtype_name(type) << " "
            << threads << " threads, logit " << i << (i < serial_values ? " (token by token)" : " (sequence mode)");
      }
    }
    }
  }
}

}  // namespace
