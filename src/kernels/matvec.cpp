#include "kernels/matvec.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/isa.hpp"
#include "kernels/thread_pool.hpp"
#include "rwkv/threads.hpp"

namespace rwkv {

namespace {

// Below this many weights a product runs on the calling thread: handing it to the
// pool costs about a microsecond, as long as reading ~32 KiB of float16 weights.
constexpr uint64_t kDefaultMinWeightsToSplit = 16384;
std::atomic<uint64_t> g_min_weights_to_split{kDefaultMinWeightsToSplit};
// Rows per task are a multiple of this, so that no two threads write the same cache line of y.
constexpr uint32_t kRowGranule = 16;
// Tasks per thread when products are split: more than one lets a thread that finishes
// early (or is not preempted on a shared machine) take over the rest.
constexpr uint32_t kTasksPerThread = 4;
// About 256 KiB of float16 weights: a task of some tens of microseconds.
constexpr uint64_t kMaxPieceWeights = 128 * 1024;
// Splits [0, rows) into contiguous ranges of whole granules (kRowGranule unless the
// kernel wants another) and runs fn(begin, end) on each, over kernel_pool(). Each row is computed by exactly one task with the same
// code as without the split, so the result does not depend on the thread count.
template <typename Fn>
void split_rows(uint32_t rows, uint32_t cols, uint32_t n_tokens, Fn&& fn, uint32_t granule = kRowGranule) {
  if (uint64_t(rows) * cols * n_tokens < g_min_weights_to_split.load(std::memory_order_relaxed)) {
    fn(0u, rows);
    return;
  }
  parallel_for(rows, granule, fn);
}

}  // namespace

uint64_t min_weights_to_split() { return g_min_weights_to_split.load(); }
void set_min_weights_to_split(uint64_t n_weights) { g_min_weights_to_split = n_weights; }

namespace {
std::atomic<bool> g_batch_invariant{false};
}  // namespace

void set_batch_invariant(bool on) { g_batch_invariant.store(on, std::memory_order_relaxed); }
bool batch_invariant() { return g_batch_invariant.load(std::memory_order_relaxed); }

uint32_t exact_batch_limit(DType type) {
  // Where the one-token dot products for each token beat the widened float32 kernels,
  // measured on 2 threads (AMD EPYC Zen 5), ms a decode step, exact vs widened: 0.1B
  // shape f16 15.0 vs 19.9 at 2 tokens, 20.2 vs 22.3 at 4; 1.5B shape f16 177 vs 180 at 2,
  // 249 vs 213 at 4, 394 vs 294 at 8 (its float32 activations of 7168 values no longer
  // stay in cache beside the row); q8_0 0.1B 9.7 vs 14.1 at 2, 17.8 vs 19.8 at 4, 34.4
  // vs 28.6 at 8; 1.5B 90 vs 179 at 2, 163 vs 213 at 4; q4_s 0.1B 6.9 vs 13.4 at 2, 25.1
  // vs 27.0 at 8, 47.3 vs 43.8 at 16; 1.5B 56 vs 136 at 2, 174 vs 243 at 8.
  switch (type) {
    case DType::Q8_0: return 4;
    case DType::Q4_S: return 8;
    default: return 2;
  }
}

namespace {

constexpr size_t kMaxBatch = 8;

// Weights stored as panels were packed for the level whose kernels read them.
bool stored_as_panels(const KernelSet& k, const MatrixRef& w) {
  if (w.layout == WeightLayout::Rows) return false;
  const bool int8 = w.layout == WeightLayout::Int8Panels;
  if ((int8 ? k.matvec_rows_int8_panels == nullptr : k.matmat_rows_f16_panels == nullptr)) {
    throw std::logic_error(std::string("rwkv: weights packed as ") + (int8 ? "int8" : "f16") +
                           " panels at load, but the kernels are now " + isa_level_name(k.level) +
                           "'s; load the model after choosing the level");
  }
  return true;
}

static_assert(kInt8PanelRows == kF16PanelRows);

// Rows per piece of a split: whole panels for weights stored as panels.
uint32_t row_granule(const KernelSet& k, const MatrixRef& w, uint32_t granule) {
  return stored_as_panels(k, w) ? kInt8PanelRows : granule;
}

// Rows [begin, end) of one product; x_int8 is x rounded for the block types.
void product_rows(const KernelSet& k, const Product& p, const Int8Activation* x_int8, uint32_t begin, uint32_t end) {
  if (stored_as_panels(k, p.w) && p.w.layout == WeightLayout::F16Panels) {
    k.matmat_rows_f16_panels(p.w, p.x, 1, p.y, begin, end, false);
    return;
  }
  if (stored_as_panels(k, p.w)) {
    k.matvec_rows_int8_panels(p.w, *x_int8, p.y, begin, end);
    return;
  }
  switch (p.w.dtype) {
    case DType::F32: k.matvec_rows_f32(p.w, p.x, p.y, begin, end); return;
    case DType::F16: k.matvec_rows_f16(p.w, p.x, p.y, begin, end); return;
    case DType::BF16: k.matvec_rows_bf16(p.w, p.x, p.y, begin, end); return;
    case DType::Q8_0: k.matvec_rows_q8_0(p.w, *x_int8, p.y, begin, end); return;
    case DType::Q4_S: k.matvec_rows_q4_s(p.w, *x_int8, p.y, begin, end); return;
  }
}

// x[i] ← max(x[i], 0)² for i < n.
void square_relu(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] * x[i] : 0.0f;
}

struct Piece {
  uint32_t product;
  uint32_t begin;
  uint32_t end;
};

// Appends product `index`'s rows in pieces of whole granules, as many as its `weights`
// fill at weights_per_piece (at least one, at most one per granule); each row is in
// exactly one piece, computed with the same code whatever the split.
void add_pieces(uint32_t index, uint32_t rows, double weights, uint32_t granule, double weights_per_piece,
                std::vector<Piece>& pieces) {
  const uint32_t granules = (rows + granule - 1) / granule;
  const uint32_t wanted = uint32_t(weights / weights_per_piece + 0.5);
  const uint32_t count = std::clamp(wanted, 1u, std::max(granules, 1u));
  for (uint32_t c = 0; c < count; ++c) {
    const uint32_t begin = uint32_t(uint64_t(granules) * c / count) * granule;
    const uint32_t end = std::min(rows, uint32_t(uint64_t(granules) * (c + 1) / count) * granule);
    if (begin < end) pieces.push_back({index, begin, end});
  }
}

void matvec_batch(const Product* products, size_t n) {
  if (n > kMaxBatch) throw std::logic_error("rwkv: too many products in one batch");
  thread_local Int8Activation caller_activations[kMaxBatch];
  thread_local std::vector<Piece> caller_pieces;
  // Named pointers: inside the task lambda the thread_locals themselves would name the
  // worker thread's own (empty) instances instead of the caller's.
  Int8Activation* activations = caller_activations;
  std::vector<Piece>& pieces = caller_pieces;
  uint64_t total_weights = 0;
  for (size_t i = 0; i < n; ++i) {
    const DType type = products[i].w.dtype;
    if (dtype_is_blocked(type)) {
      quantize_activation(products[i].x, products[i].w.cols, activation_group_values(type), activations[i]);
    }
    total_weights += uint64_t(products[i].w.rows) * products[i].w.cols;
  }
  const KernelSet& k = kernels();
  ThreadPool& pool = kernel_pool();
  if (pool.size() <= 1 || total_weights < g_min_weights_to_split.load(std::memory_order_relaxed)) {
    for (size_t i = 0; i < n; ++i) product_rows(k, products[i], &activations[i], 0, products[i].w.rows);
    return;
  }
  // Each product in pieces of whole granules, about kTasksPerThread pieces per thread in
  // all, in proportion to its weights; each row is computed by exactly one piece, with
  // the same code whatever the split.
  // Large products are cut finer still (at most kMaxPieceWeights a piece): the last
  // piece still running while the other thread waits costs less.
  const double weights_per_piece =
      std::min(double(total_weights) / (pool.size() * kTasksPerThread), double(kMaxPieceWeights));
  pieces.clear();
  for (size_t i = 0; i < n; ++i) {
    const MatrixRef& w = products[i].w;
    add_pieces(uint32_t(i), w.rows, double(w.rows) * w.cols, row_granule(k, w, kRowGranule), weights_per_piece,
               pieces);
  }
  pool.run(unsigned(pieces.size()), [&](unsigned task) {
    const Piece& piece = pieces[task];
    product_rows(k, products[piece.product], &activations[piece.product], piece.begin, piece.end);
  });
}

}  // namespace

void matvec(const MatrixRef& w, const float* x, float* y) {
  const Product p{w, x, y};
  matvec_batch(&p, 1);
}

namespace {

// How a product of several tokens computes its rows, chosen by plan_product.
enum class RowKernel : uint8_t {
  Exact,     // each token's one-token dot products (a few tokens, or batch invariance)
  Int8Gemm,  // block types with int8 dot products (VNNI, or AMX tiles for q8_0)
  Bf16Dot,   // bfloat16 weights with bf16 dot products (AVX512_BF16)
  Eigen,     // the scalar level
  Narrow,    // one or two vectors of tokens on the FMA (batched decoding)
  Small,     // each row widened once and dotted with every token
  Gemm,      // the blocked FMA GEMM
  F16Panels,  // float16 weights stored as panels: any number of tokens, each with its one-token bits
};

// Up to this many tokens, products of weights stored as int8 panels run the one-token
// kernel for each token on each panel while it is in cache: the GEMM tile's forms for a
// few tokens wait on short chains of dependent multiply-adds, and for q4_s widen every
// panel's nibbles for them. The bits are the same either way. Measured on 2 threads (AMD
// EPYC Zen 5), ms a batch step, GEMM vs one-token kernel: 1.5B q4_s 46.8 vs 28.7 at 2
// tokens, 47.0 vs 41.7 at 4, 68.3 vs 56.5 at 8, 65.1 vs 75.4 at 12; 0.1B q4_s 4.30 vs
// 3.35 at 2, 7.58 vs 7.41 at 8, 8.89 vs 9.96 at 12; 1.5B q8_0 37.9 vs 36.8 at 2, 42.5 vs
// 43.9 at 3, 46.8 vs 49.8 at 4.
uint32_t panel_tokens_limit(DType type) { return type == DType::Q4_S ? 8 : 2; }

// A product whose tokens are packed: run_rows computes any range of its rows with the
// same code whatever the split, so results do not depend on the thread count.
struct PlannedProduct {
  MatrixRef w;
  const float* X = nullptr;
  float* Y = nullptr;
  uint32_t n_tokens = 0;
  bool squared_relu = false;
  RowKernel kernel = RowKernel::Exact;
  uint32_t granule = 0;                       // rows per piece are a multiple of this
  const Int8Activation* activations = nullptr;  // Exact, block types
  const float* const* token_rows = nullptr;     // Exact, float types
  const std::byte* int8_tokens = nullptr;       // Int8Gemm
  const uint16_t* bf16_tokens = nullptr;        // Bf16Dot
  const float* packed = nullptr;                // Narrow, Gemm
};

// The products of one matmat_each at most (a v7 layer's first stage has 7).
constexpr unsigned kMaxPlannedProducts = kMaxBatch;

// The calling thread's packing buffers, one set per product of a group; tasks on other
// threads reach them through the pointers in PlannedProduct.
struct PackingBuffers {
  std::vector<Int8Activation> activations;
  std::vector<const float*> token_rows;
  std::vector<std::byte> int8_tokens;
  std::vector<uint16_t> bf16_tokens;
  std::vector<float> floats;
};
thread_local PackingBuffers t_packing[kMaxPlannedProducts];

// Token vectors the narrow tile takes (beyond, the wide GEMM).
constexpr uint32_t kNarrowGroups = 2;

// Packs on the calling thread up to this many tokens; more are packed over the pool
// (a hand-off costs about as much as packing a few dozen tokens).
constexpr uint32_t kCallerPackedTokens = 32;

// Columns per piece of the float GEMM's token packing.
constexpr uint32_t kPackColumns = 256;
// The same for the bfloat16 tokens: a group of 16 shares each cache line.
constexpr uint32_t kBf16PackGrain = 16;

// Packing of a product's tokens left for later: pack(begin, end) for parts of [0, units)
// in whole grains, any split, in any order.
struct PackJob {
  uint32_t units = 0;
  uint32_t grain = 1;
  double cost = 0;  // in proportion to the values packed
  std::function<void(uint32_t begin, uint32_t end)> pack;
};

// Packs [0, n): over the pool if `parallel`, where `deferred` is null; else as a job
// added to `deferred` (fn must then own what it reads: it runs after plan_product returns).
template <typename Fn>
void pack_range(uint32_t n, bool parallel, uint32_t grain, double cost, std::vector<PackJob>* deferred, Fn&& fn) {
  if (parallel && deferred != nullptr) {
    deferred->push_back({n, grain, cost, std::forward<Fn>(fn)});
  } else if (parallel) {
    parallel_for(n, grain, fn);
  } else {
    fn(0u, n);
  }
}

// With `deferred`, the packing of many tokens is added to it instead of done (see
// matmat_grouped); the plan's packed tokens are ready only once it has run.
PlannedProduct plan_product(const KernelSet& k, const Product& product, uint32_t n_tokens, bool squared_relu,
                            unsigned slot, std::vector<PackJob>* deferred = nullptr) {
  PlannedProduct plan;
  plan.w = product.w;
  plan.X = product.x;
  plan.Y = product.y;
  plan.n_tokens = n_tokens;
  plan.squared_relu = squared_relu;
  plan.granule = kRowGranule;
  const MatrixRef& w = product.w;
  PackingBuffers& buffers = t_packing[slot];
  const bool parallel_packing = n_tokens > kCallerPackedTokens;
  const bool panels = stored_as_panels(k, w);
  if (panels) plan.granule = kInt8PanelRows;
  if (panels && w.layout == WeightLayout::F16Panels) {
    plan.kernel = RowKernel::F16Panels;
    return plan;
  }
  if (panels ? n_tokens <= panel_tokens_limit(w.dtype)
             : n_tokens <= exact_batch_limit(w.dtype) || batch_invariant()) {
    // A few tokens, or batch invariance asked for: each token gets its one-token
    // product's bits (see exact_batch_limit), each row read once for all of them.
    plan.kernel = RowKernel::Exact;
    if (dtype_is_blocked(w.dtype)) {
      if (buffers.activations.size() < n_tokens) buffers.activations.resize(n_tokens);
      const uint32_t group = activation_group_values(w.dtype);
      for (uint32_t t = 0; t < n_tokens; ++t) {
        quantize_activation(product.x + size_t(t) * w.cols, w.cols, group, buffers.activations[t]);
      }
      plan.activations = buffers.activations.data();
    } else {
      buffers.token_rows.resize(n_tokens);
      for (uint32_t t = 0; t < n_tokens; ++t) buffers.token_rows[t] = product.x + size_t(t) * w.cols;
      plan.token_rows = buffers.token_rows.data();
    }
    return plan;
  }
  if (dtype_is_blocked(w.dtype) && k.matmat_rows_int8 != nullptr) {
    // Block types with int8 dot products (VNNI): the tokens rounded to int8 as for one
    // token each, then an integer GEMM; several times the float32 GEMM's rate here. On
    // weights stored as panels it gives each token its one-token product's bits at any
    // number of tokens, so it serves a few tokens and batch invariance too.
    plan.kernel = RowKernel::Int8Gemm;
    plan.granule = k.int8_row_granule;
    buffers.int8_tokens.resize(k.int8_tokens_bytes(w.dtype, n_tokens, w.cols));
    std::byte* packed = buffers.int8_tokens.data();
    // Whole tiles per task: the packed tokens interleave a tile's tokens in each cache
    // line, so tasks that split a tile would write the same lines (with 16 threads a
    // 128-token chunk went out in 2-token tasks). Tasks of one tile each: at 48 tokens a
    // task, 16 threads packed a 128-token chunk on 3 of them (16% busy, 13% of the
    // prefill; RWKV_POOL_STATS on the device's Xeon, 0.1B q8_0).
    const double cost = double(n_tokens) * w.cols;
    pack_range(n_tokens, parallel_packing, k.int8_token_tile(w.dtype), cost, deferred,
               [&k, type = w.dtype, x = product.x, n_tokens, cols = w.cols, packed](uint32_t begin, uint32_t end) {
                 k.pack_int8_tokens(type, x, n_tokens, cols, begin, end, packed);
               });
    plan.int8_tokens = packed;
    return plan;
  }
  if (w.dtype == DType::BF16 && k.matmat_rows_bf16 != nullptr && !w.float_activations) {
    // bfloat16 weights on AVX512_BF16: the tokens rounded to bf16 once, the weights read
    // as stored, twice the FMA's multiply-adds per instruction and no widening.
    plan.kernel = RowKernel::Bf16Dot;
    plan.granule = k.bf16_row_granule;
    buffers.bf16_tokens.resize(k.bf16_tokens_values(n_tokens, w.cols));
    uint16_t* packed = buffers.bf16_tokens.data();
    const double cost = double(n_tokens) * w.cols;
    pack_range(n_tokens, parallel_packing, kBf16PackGrain, cost, deferred,
               [&k, x = product.x, n_tokens, cols = w.cols, packed](uint32_t begin, uint32_t end) {
                 k.pack_bf16_tokens(x, n_tokens, cols, begin, end, packed);
               });
    plan.bf16_tokens = packed;
    return plan;
  }
  if (k.matmat_rows == nullptr) {
    plan.kernel = RowKernel::Eigen;
    return plan;
  }
  if (2 * n_tokens >= k.narrow_tokens && n_tokens <= kNarrowGroups * k.narrow_tokens) {
    // Half a vector of tokens or more: the narrow GEMM tile, faster than the row-by-row
    // kernel below from there on (0.1B f16, 2 threads, ms a step: AVX-512 at 16 tokens
    // 24.6 against 35.0, at 8 23.4 against 24.2, at 6 23.6 against 22.0; AVX2 at 8 22.9
    // against 37.7, at 4 21.7 against 22.0), and than the wide GEMM up to two vectors.
    plan.kernel = RowKernel::Narrow;
    plan.granule = k.matmat_row_granule;
    buffers.floats.resize(size_t((n_tokens + k.narrow_tokens - 1) / k.narrow_tokens) * k.narrow_tokens * w.cols);
    k.pack_tokens_narrow(product.x, n_tokens, w.cols, buffers.floats.data());
    plan.packed = buffers.floats.data();
    return plan;
  }
  if (n_tokens <= k.max_small_batch) {
    plan.kernel = RowKernel::Small;
    return plan;
  }
  plan.kernel = RowKernel::Gemm;
  plan.granule = k.matmat_row_granule;
  buffers.floats.resize(k.packed_tokens_floats(n_tokens, w.cols));
  float* packed = buffers.floats.data();
  // In pieces of a token block × kPackColumns columns: a 128-token chunk is only 4 blocks,
  // and with 16 threads packing it block by block kept 4 of them busy (20% of the time
  // the pool spent there; RWKV_POOL_STATS on the device's Xeon, 0.1B q8_0 prefill).
  const uint32_t token_blocks = (n_tokens + k.token_block - 1) / k.token_block;
  const uint32_t column_parts = (w.cols + kPackColumns - 1) / kPackColumns;
  const double cost = double(n_tokens) * w.cols;
  pack_range(token_blocks * column_parts, parallel_packing, 1, cost, deferred,
             [&k, x = product.x, n_tokens, cols = w.cols, column_parts, packed](uint32_t begin, uint32_t end) {
               for (uint32_t piece = begin; piece < end; ++piece) {
                 const uint32_t first_column = piece % column_parts * kPackColumns;
                 k.pack_tokens(x, n_tokens, cols, piece / column_parts, first_column,
                               std::min(cols, first_column + kPackColumns), packed);
               }
             });
  plan.packed = packed;
  return plan;
}

// Rows [begin, end) of a planned product, for every token.
void run_rows(const KernelSet& k, const PlannedProduct& p, uint32_t begin, uint32_t end) {
  const MatrixRef& w = p.w;
  switch (p.kernel) {
    case RowKernel::Exact:
      if (w.layout == WeightLayout::Int8Panels) {
        // Panel by panel: each is read from memory once and stays in cache for the tokens.
        for (uint32_t first = begin; first < end; first += kInt8PanelRows) {
          const uint32_t last = std::min(end, first + kInt8PanelRows);
          for (uint32_t t = 0; t < p.n_tokens; ++t) {
            k.matvec_rows_int8_panels(w, p.activations[t], p.Y + size_t(t) * w.rows, first, last);
          }
        }
      } else if (w.dtype == DType::Q8_0) {
        k.matmat_rows_q8_0(w, p.activations, p.n_tokens, p.Y, begin, end);
      } else if (w.dtype == DType::Q4_S) {
        k.matmat_rows_q4_s(w, p.activations, p.n_tokens, p.Y, begin, end);
      } else if (w.dtype == DType::F32) {
        k.matmat_rows_f32_tokens(w, p.token_rows, p.n_tokens, p.Y, begin, end);
      } else if (w.dtype == DType::F16) {
        k.matmat_rows_f16_tokens(w, p.token_rows, p.n_tokens, p.Y, begin, end);
      } else {
        k.matmat_rows_bf16_tokens(w, p.token_rows, p.n_tokens, p.Y, begin, end);
      }
      break;
    case RowKernel::Int8Gemm:
      k.matmat_rows_int8(w, p.int8_tokens, p.n_tokens, p.Y, begin, end, p.squared_relu);
      return;
    case RowKernel::Bf16Dot:
      k.matmat_rows_bf16(w, p.bf16_tokens, p.n_tokens, p.Y, begin, end, p.squared_relu);
      return;
    case RowKernel::Eigen:
      if (w.dtype == DType::F32) {
        k.matmat_rows_eigen_f32(w, p.X, p.Y, p.n_tokens, begin, end);
      } else {
        k.matmat_rows_eigen_dequantized(w, p.X, p.Y, p.n_tokens, begin, end);
      }
      break;
    case RowKernel::Narrow:
      k.matmat_rows_narrow(w, p.packed, p.Y, p.n_tokens, begin, end, p.squared_relu);
      return;
    case RowKernel::Small:
      k.matmat_rows_small(w, p.X, p.Y, p.n_tokens, begin, end, p.squared_relu);
      return;
    case RowKernel::Gemm:
      k.matmat_rows(w, p.packed, p.Y, p.n_tokens, begin, end, p.squared_relu);
      return;
    case RowKernel::F16Panels:
      k.matmat_rows_f16_panels(w, p.X, p.n_tokens, p.Y, begin, end, p.squared_relu);
      return;
  }
  if (p.squared_relu) {
    for (uint32_t t = 0; t < p.n_tokens; ++t) square_relu(p.Y + size_t(t) * w.rows + begin, end - begin);
  }
}

void matmat_with(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens, bool squared_relu) {
  if (n_tokens == 1) {
    matvec(w, X, Y);  // one token: the bandwidth-bound kernel, not a GEMM
    if (squared_relu) square_relu(Y, w.rows);
    return;
  }
  const KernelSet& k = kernels();
  const PlannedProduct plan = plan_product(k, Product{w, X, Y}, n_tokens, squared_relu, 0);
  ThreadPool& pool = kernel_pool();
  const bool gemm = plan.kernel == RowKernel::Gemm;  // token_block and the granule are 0 below AVX2
  const uint32_t token_blocks = gemm ? (n_tokens + k.token_block - 1) / k.token_block : 1;
  const uint32_t row_parts = gemm ? (w.rows + k.matmat_row_granule - 1) / k.matmat_row_granule : 1;
  if (!gemm || row_parts >= pool.size() || token_blocks < 2 ||
      uint64_t(w.rows) * w.cols * n_tokens < g_min_weights_to_split.load(std::memory_order_relaxed)) {
    split_rows(
        w.rows, w.cols, n_tokens, [&](uint32_t begin, uint32_t end) { run_rows(k, plan, begin, end); },
        plan.granule);
    return;
  }
  // Too few rows to keep every thread busy (the LoRA matrices of v6/v7 have 32 to 160
  // rows: one or two tasks, while the other threads wait): the tokens are split too.
  // Each output is still computed by one task with the same code, whatever the split.
  const uint32_t wanted_tasks = pool.size() * kTasksPerThread;
  const uint32_t token_parts = std::min(token_blocks, (wanted_tasks + row_parts - 1) / row_parts);
  pool.run(row_parts * token_parts, [&](unsigned task) {
    const uint32_t part = task % row_parts, token_part = task / row_parts;
    const uint32_t row_begin = part * k.matmat_row_granule;
    const uint32_t row_end = std::min(w.rows, row_begin + k.matmat_row_granule);
    const uint32_t block_begin = uint32_t(uint64_t(token_blocks) * token_part / token_parts);
    const uint32_t block_end = uint32_t(uint64_t(token_blocks) * (token_part + 1) / token_parts);
    const uint32_t first_token = block_begin * k.token_block;
    const uint32_t tokens = std::min(n_tokens, block_end * k.token_block) - first_token;
    k.matmat_rows(w, plan.packed + size_t(first_token) * w.cols, Y + size_t(first_token) * w.rows, tokens, row_begin,
                  row_end, squared_relu);
  });
}

// Several independent products of the same tokens in one hand-off to the pool: each
// planned (a few tokens packed on the calling thread, a prompt's in one hand-off for all
// of them), then pieces of all of them, in proportion to their weights, as matvec_batch
// splits one-token products. A v7 layer runs a dozen products, several with only 32 to
// 160 rows that alone would leave most threads waiting. Against a hand-off per product
// and per packing, 2 threads (AMD EPYC Zen 5), 0.1B prefill of 512 tokens, tokens/s in
// four alternating rounds, with wkv7_head_steps' prefetch (about 2% of it): q8_0
// 2,753-3,451 against 2,450-2,508, f16 1,325-1,431 against 1,302-1,401.
void matmat_grouped(std::initializer_list<Product> products, uint32_t n_tokens) {
  thread_local std::vector<PlannedProduct> caller_plans;
  thread_local std::vector<Piece> caller_pieces;
  thread_local std::vector<PackJob> caller_jobs;
  std::vector<PlannedProduct>& plans = caller_plans;
  std::vector<Piece>& pieces = caller_pieces;
  std::vector<PackJob>& jobs = caller_jobs;
  const KernelSet& k = kernels();
  ThreadPool& pool = kernel_pool();
  plans.clear();
  jobs.clear();
  uint64_t total_weights = 0;
  for (const Product& p : products) {
    plans.push_back(plan_product(k, p, n_tokens, false, unsigned(plans.size()), &jobs));
    total_weights += uint64_t(p.w.rows) * p.w.cols * n_tokens;
  }
  if (!jobs.empty()) {
    // Many tokens (a prompt): every product's tokens packed in one hand-off, in pieces of
    // whole grains in proportion to their values, instead of one hand-off each.
    double total_cost = 0;
    for (const PackJob& job : jobs) total_cost += job.cost;
    const double cost_per_piece = total_cost / (pool.size() * kTasksPerThread);
    pieces.clear();
    for (uint32_t j = 0; j < jobs.size(); ++j) {
      add_pieces(j, jobs[j].units, jobs[j].cost, jobs[j].grain, cost_per_piece, pieces);
    }
    pool.run(unsigned(pieces.size()), [&](unsigned task) {
      const Piece& piece = pieces[task];
      jobs[piece.product].pack(piece.begin, piece.end);
    });
  }
  if (pool.size() <= 1 || total_weights < g_min_weights_to_split.load(std::memory_order_relaxed)) {
    for (const PlannedProduct& plan : plans) run_rows(k, plan, 0, plan.w.rows);
    return;
  }
  const double weights_per_piece = double(total_weights) / (pool.size() * kTasksPerThread);
  pieces.clear();
  for (uint32_t i = 0; i < plans.size(); ++i) {
    const MatrixRef& w = plans[i].w;
    add_pieces(i, w.rows, double(w.rows) * w.cols * n_tokens, plans[i].granule, weights_per_piece, pieces);
  }
  pool.run(unsigned(pieces.size()), [&](unsigned task) {
    const Piece& piece = pieces[task];
    run_rows(k, plans[piece.product], piece.begin, piece.end);
  });
}

}  // namespace

void matmat_each(std::initializer_list<Product> products, uint32_t n_tokens) {
  if (n_tokens == 1) {
    matvec_batch(products.begin(), products.size());
  } else if (products.size() <= kMaxPlannedProducts) {
    matmat_grouped(products, n_tokens);
  } else {
    for (const Product& p : products) matmat(p.w, p.x, p.y, n_tokens);
  }
}

void matmat(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens) { matmat_with(w, X, Y, n_tokens, false); }

void matmat_squared_relu(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens) {
  matmat_with(w, X, Y, n_tokens, true);
}

void copy_row(const MatrixRef& w, uint32_t index, float* out) { dequantize_rows(w, index, index + 1, out); }

void layer_norm(const float* x, const float* weight, const float* bias, float* out, uint32_t n, float eps) {
  kernels().normalize(x, weight, bias, out, n, eps);
}

void group_norm(float* x, const float* weight, const float* bias, uint32_t n_groups, uint32_t group_size, float eps) {
  for (uint32_t g = 0; g < n_groups; ++g) {
    const size_t at = size_t(g) * group_size;
    kernels().normalize(x + at, weight + at, bias + at, x + at, group_size, eps);
  }
}

}  // namespace rwkv
