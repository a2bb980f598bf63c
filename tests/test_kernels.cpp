// Every weight type's kernels against plain scalar code over the dequantized weights,
// at sizes that are not multiples of the SIMD width or the block size, and the
// quantization error of each type on random data.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/matvec.hpp"
#include "kernels/isa.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/thread_pool.hpp"
#include "kernels/vector_math.hpp"
#include "kernels/wkv.hpp"
#include "rwkv/error.hpp"
#ifdef RWKV_TEST_AMX_EMULATION
#include "amx_emulation/emulated_kernels.hpp"
#endif

namespace {

using rwkv::DType;

constexpr DType kAllTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_S};

std::vector<float> random_normal(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Runs body() once at every instruction-set level of the kernels (src/kernels/isa.hpp)
// that this processor runs, each named in failures: every kernel path the machine can
// run is held to the same scalar definitions.
template <typename Body>
void at_every_level(Body body) {
  for (rwkv::IsaLevel level : rwkv::supported_isa_levels()) {
    rwkv::ScopedKernels use(level);
    SCOPED_TRACE(std::string("kernels: ") + rwkv::isa_level_name(level));
    body();
  }
}

// The most that rounding x to int8 (groups of `group` values, scale max|x| / 127) moves
// sum_c w[c] x[c]: half a step per element.
double int8_rounding_bound(const float* w, const float* x, uint32_t cols, uint32_t group) {
  double bound = 0;
  for (uint32_t begin = 0; begin < cols; begin += group) {
    const uint32_t end = std::min(cols, begin + group);
    float amax = 0;
    for (uint32_t i = begin; i < end; ++i) amax = std::max(amax, std::abs(x[i]));
    for (uint32_t i = begin; i < end; ++i) bound += std::abs(double(w[i])) * amax / 127.0 / 2.0;
  }
  return bound;
}

// x rounded to bfloat16, nearest even (vcvtne2ps2bf16's rounding of finite values).
float round_to_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  bits = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
  float rounded;
  std::memcpy(&rounded, &bits, sizeof(rounded));
  return rounded;
}

// How far rounding x to bfloat16 moves sum_c w[c] x[c], at most.
double bf16_rounding_bound(const float* w, const float* x, uint32_t cols) {
  double bound = 0;
  for (uint32_t c = 0; c < cols; ++c) bound += std::abs(double(w[c]) * (double(x[c]) - round_to_bf16(x[c])));
  return bound;
}

// A matrix stored in `type`, and its values as the kernels see them.
struct StoredMatrix {
  std::vector<std::byte> bytes;
  std::vector<float> dequantized;
  rwkv::MatrixRef ref;
};

StoredMatrix store(const std::vector<float>& values, uint32_t rows, uint32_t cols, DType type) {
  StoredMatrix m;
  m.bytes = rwkv::quantize_rows(values.data(), rows, cols, type);
  m.ref = rwkv::MatrixRef{type, rows, cols, m.bytes.data()};
  m.dequantized.resize(size_t(rows) * cols);
  rwkv::dequantize_rows(m.ref, 0, rows, m.dequantized.data());
  return m;
}

std::string type_and_size_name(DType type, uint32_t rows, uint32_t cols) {
  return std::string(rwkv::dtype_name(type)) + "_" + std::to_string(rows) + "x" + std::to_string(cols);
}

struct MatvecCase {
  DType type;
  uint32_t rows;
  uint32_t cols;
};

std::vector<MatvecCase> matvec_cases() {
  std::vector<MatvecCase> out;
  for (DType type : kAllTypes) {
    // 90 = 2 * 32 + 16 + 10 float16 values and 3 blocks, 600 = 19 blocks (two groups of
    // 8, a pair and one more): every step of the 512-bit loops. For q4_s, 257 and 600
    // end in a padded super-block after one and two whole ones, 1024 is four whole ones.
    for (uint32_t cols : {1u, 7u, 33u, 90u, 100u, 257u, 600u, 1024u}) {
      for (uint32_t rows : {1u, 13u, 130u}) out.push_back({type, rows, cols});
    }
  }
  return out;
}

class KernelMatvec : public ::testing::TestWithParam<MatvecCase> {};

// Error allowed per output: float32 summation in another order (1e-5 of sum |w x|),
// plus, for the block types, the rounding of x to int8, at most half a step
// (max |x| in the activation's group / 127 / 2) per element.
TEST_P(KernelMatvec, MatchesScalarReferenceOverDequantizedWeights) {
  at_every_level([&] {
    const auto [type, rows, cols] = GetParam();
    const StoredMatrix w = store(random_normal(size_t(rows) * cols, rows * 1000 + cols), rows, cols, type);
    const std::vector<float> x = random_normal(cols, 7 + cols);
    std::vector<float> y(rows);
    rwkv::matvec(w.ref, x.data(), y.data());
    for (uint32_t r = 0; r < rows; ++r) {
      double expected = 0, magnitude = 0;
      for (uint32_t c = 0; c < cols; ++c) {
        const double wv = w.dequantized[size_t(r) * cols + c];
        expected += wv * x[c];
        magnitude += std::abs(wv * x[c]);
      }
      const double x_rounding =
          rwkv::dtype_is_blocked(type)
              ? int8_rounding_bound(&w.dequantized[size_t(r) * cols], x.data(), cols, rwkv::activation_group_values(type))
              : 0.0;
      EXPECT_NEAR(y[r], expected, 1e-5 * magnitude + 1.001 * x_rounding + 1e-6) << "row " << r;
    }
  });
}

INSTANTIATE_TEST_SUITE_P(AllTypes, KernelMatvec, ::testing::ValuesIn(matvec_cases()), [](const auto& info) {
  return type_and_size_name(info.param.type, info.param.rows, info.param.cols);
});

// The largest sums the q4_s kernel's integer lanes can meet: every level 15, every
// sub-block scale 255, every activation quant ±127 (the int16 pair sums and the int32
// lanes must not overflow). Each sub-block holds one 0 and 31 ones, so its levels are
// 0 and 15 and its scale is the super-block's largest.
TEST(KernelMatvec, Q4SLargestIntegerSumsDoNotOverflow) {
  at_every_level([&] {
    constexpr uint32_t kCols = 1024;
    std::vector<float> row(kCols, 1.0f);
    for (uint32_t c = 0; c < kCols; c += 32) row[c] = 0.0f;
    const StoredMatrix w = store(row, 1, kCols, DType::Q4_S);
    rwkv::BlockQ4_S first;
    std::memcpy(&first, w.bytes.data(), sizeof(first));
    for (uint32_t j = 0; j < rwkv::kSubBlocks; ++j) ASSERT_EQ(first.scales[j], 255) << j;
    for (float sign : {1.0f, -1.0f}) {
      const std::vector<float> x(kCols, sign);
      float y = 0;
      rwkv::matvec(w.ref, x.data(), &y);
      double expected = 0;
      for (float v : w.dequantized) expected += double(v) * sign;
      EXPECT_NEAR(y, expected, 1e-5 * std::abs(expected)) << "sign " << sign;
    }
  });
}

// Y (n_tokens × rows, as the GEMMs write it) against sum_c w[r, c] × x(t, c) in double,
// x(t, c) being token t's value as the kernel rounds it: only the order of the float
// additions may differ (1e-5 of sum |w x|, matvec's allowance for it); with squared_relu
// that bound carried through max(y, 0)². Reports the first output outside it.
template <typename RoundedActivation>
::testing::AssertionResult gemm_outputs_match(const std::vector<float>& Y, const StoredMatrix& w, uint32_t n_tokens,
                                              bool squared_relu, RoundedActivation x) {
  const uint32_t rows = w.ref.rows, cols = w.ref.cols;
  for (uint32_t t = 0; t < n_tokens; ++t) {
    for (uint32_t r = 0; r < rows; ++r) {
      double expected = 0, magnitude = 0;
      for (uint32_t c = 0; c < cols; ++c) {
        const double p = double(w.dequantized[size_t(r) * cols + c]) * x(t, c);
        expected += p;
        magnitude += std::abs(p);
      }
      double bound = 1e-5 * magnitude + 1e-6;
      if (squared_relu) {
        bound *= 2 * std::abs(expected) + bound;
        expected = expected > 0 ? expected * expected : 0.0;
      }
      const double y = Y[size_t(t) * rows + r];
      if (!(std::abs(y - expected) <= bound)) {
        return ::testing::AssertionFailure() << rows << "x" << cols << ", " << n_tokens << " tokens"
                                             << (squared_relu ? " (squared relu)" : "") << ": token " << t << " row "
                                             << r << " is " << y << ", expected " << expected << " ± " << bound;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

class KernelMatmat : public ::testing::TestWithParam<MatvecCase> {};

// Up to exact_batch_limit tokens, each token gets matvec's bits; beyond, sequence mode
// multiplies the dequantized weights in float32: only summation order differs.
// Token counts cover the exact path (up to 2, 4 or 8 tokens by type), the few-token kernel's tiles
// of 3 (AVX2) and 4 (AVX-512) with every remainder, the narrow tile of one token vector
// (4 to 8 tokens in AVX2, 8 to 16 in AVX-512, padded), and the GEMM's 16- or 32-token
// blocks beyond it; 257 columns
// cross the GEMM's 256-column passes and leave a tail past the last whole vector.
TEST_P(KernelMatmat, MatchesScalarReferenceOverDequantizedWeights) {
  at_every_level([&] {
    const auto [type, rows, cols] = GetParam();
    const StoredMatrix w = store(random_normal(size_t(rows) * cols, rows * 31 + cols), rows, cols, type);
    for (uint32_t n_tokens : {2u, 3u, 4u, 5u, 7u, 9u, 10u, 11u, 13u, 16u, 17u, 40u}) {
      const std::vector<float> X = random_normal(size_t(n_tokens) * cols, 99 + cols + n_tokens);
      std::vector<float> Y(size_t(n_tokens) * rows);
      rwkv::matmat(w.ref, X.data(), Y.data(), n_tokens);
      // The channel mix's fused activation: every path squares the same sums.
      std::vector<float> squared(Y.size());
      rwkv::matmat_squared_relu(w.ref, X.data(), squared.data(), n_tokens);
      for (size_t i = 0; i < Y.size(); ++i) {
        ASSERT_EQ(squared[i], Y[i] > 0.0f ? Y[i] * Y[i] : 0.0f) << n_tokens << " tokens: output " << i;
      }
      if (n_tokens <= rwkv::exact_batch_limit(type)) {
        // A few tokens: each token's outputs are its one-token product's, bit for bit.
        std::vector<float> alone(rows);
        for (uint32_t t = 0; t < n_tokens; ++t) {
          rwkv::matvec(w.ref, X.data() + size_t(t) * cols, alone.data());
          for (uint32_t r = 0; r < rows; ++r) {
            ASSERT_EQ(Y[size_t(t) * rows + r], alone[r]) << n_tokens << " tokens: token " << t << " row " << r;
          }
        }
        continue;
      }
      // With int8 dot products (the block types at the VNNI level) each token is rounded
      // to int8 as for one token: the same allowance as matvec's. With bf16 dot products
      // (bf16 weights on AVX512_BF16) each token is rounded to bfloat16.
      const bool int8_activations = rwkv::dtype_is_blocked(type) && rwkv::kernels().matmat_rows_int8 != nullptr;
      const bool bf16_activations = type == DType::BF16 && rwkv::kernels().matmat_rows_bf16 != nullptr;
      for (uint32_t t = 0; t < n_tokens; ++t) {
        const float* x = X.data() + size_t(t) * cols;
        for (uint32_t r = 0; r < rows; ++r) {
          double expected = 0, magnitude = 0;
          for (uint32_t c = 0; c < cols; ++c) {
            const double p = double(w.dequantized[size_t(r) * cols + c]) * x[c];
            expected += p;
            magnitude += std::abs(p);
          }
          const float* w_row = &w.dequantized[size_t(r) * cols];
          const double x_rounding =
              int8_activations   ? int8_rounding_bound(w_row, x, cols, rwkv::activation_group_values(type))
              : bf16_activations ? bf16_rounding_bound(w_row, x, cols)
                                 : 0.0;
          ASSERT_NEAR(Y[size_t(t) * rows + r], expected, 1e-5 * magnitude + 1.001 * x_rounding + 1e-6)
              << n_tokens << " tokens: token " << t << " row " << r;
        }
      }
    }
  });
}

// matmat_each runs independent products of a few tokens in one hand-off to the pool,
// in pieces of all of them: each output must be the product's own matmat, bit for bit,
// for every kernel a token count picks (the exact path, the narrow and few-token tiles,
// the int8 and float GEMMs), with products of other types and sizes beside it, and on
// one thread or three.
TEST(KernelMatmatEach, GroupedProductsEqualEachProductAlone) {
  struct Shape {
    DType type;
    uint32_t rows, cols;
  };
  const Shape shapes[] = {{DType::F16, 200, 96}, {DType::F32, 40, 96},  {DType::Q8_0, 130, 64},
                          {DType::Q4_S, 33, 256}, {DType::BF16, 17, 96}, {DType::F32, 300, 33}};
  std::vector<StoredMatrix> matrices;
  for (size_t i = 0; i < std::size(shapes); ++i) {
    const Shape& s = shapes[i];
    matrices.push_back(store(random_normal(size_t(s.rows) * s.cols, 7 + uint32_t(i)), s.rows, s.cols, s.type));
  }
  const uint64_t saved_min = rwkv::min_weights_to_split();
  rwkv::set_min_weights_to_split(1);
  for (unsigned threads : {1u, 3u}) {
    rwkv::ThreadPool pool(threads);
    rwkv::KernelPoolOverride use(pool);
    at_every_level([&] {
      for (uint32_t n_tokens : {2u, 3u, 5u, 8u, 9u, 16u, 17u, 32u}) {
        std::vector<std::vector<float>> X, grouped, alone;
        for (size_t i = 0; i < matrices.size(); ++i) {
          X.push_back(random_normal(size_t(n_tokens) * shapes[i].cols, 50 + n_tokens + uint32_t(i)));
          grouped.emplace_back(size_t(n_tokens) * shapes[i].rows, -1.0f);
          alone.emplace_back(size_t(n_tokens) * shapes[i].rows, -2.0f);
          rwkv::matmat(matrices[i].ref, X[i].data(), alone[i].data(), n_tokens);
        }
        rwkv::matmat_each({{matrices[0].ref, X[0].data(), grouped[0].data()},
                           {matrices[1].ref, X[1].data(), grouped[1].data()},
                           {matrices[2].ref, X[2].data(), grouped[2].data()},
                           {matrices[3].ref, X[3].data(), grouped[3].data()},
                           {matrices[4].ref, X[4].data(), grouped[4].data()},
                           {matrices[5].ref, X[5].data(), grouped[5].data()}},
                          n_tokens);
        // Below AVX2 Eigen's GEMM blocks its sums by the rows it is given, so there the
        // split may change the last bits (as in RowSplit), except on the exact path.
        const bool eigen = rwkv::kernels().matmat_rows == nullptr;
        for (size_t i = 0; i < matrices.size(); ++i) {
          const bool exact = !eigen || n_tokens <= rwkv::exact_batch_limit(shapes[i].type);
          for (size_t j = 0; j < grouped[i].size(); ++j) {
            const float tolerance = exact ? 0.0f : 1e-5f * std::max(1.0f, std::abs(alone[i][j])) * shapes[i].cols;
            ASSERT_NEAR(grouped[i][j], alone[i][j], tolerance) << rwkv::isa_level_name(rwkv::kernels().level) << ", " << threads << " threads, "
                                                               << n_tokens << " tokens, product " << i << ", output " << j;
          }
        }
      }
    });
  }
  rwkv::set_min_weights_to_split(saved_min);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, KernelMatmat, ::testing::ValuesIn(matvec_cases()), [](const auto& info) {
  return type_and_size_name(info.param.type, info.param.rows, info.param.cols);
});

// The int8 GEMM of the block types (KernelSet::matmat_rows_int8: VNNI, and AMX tiles for
// q8_0 at the amx level) called directly, at every level that has it, against its
// definition: each token rounded to int8 as quantize_activation rounds it, times the
// stored weights, in double. Only the order of the float additions may differ (1e-5 of
// sum |w x|, matvec's allowance for it); with squared_relu that bound carried through
// max(y, 0)². Tokens are packed in two ranges and rows multiplied in two ranges, the
// second starting off the granule, as threads would split them; 1 to 40 tokens cross the
// 6-token (VNNI) and 16-token (AMX) tiles, 15, 17, 33 and 100 rows end in part-filled
// tiles, columns 32 to 3072 go from one block to a 3072-wide matrix, 100 ends in a
// partial block.
TEST(KernelInt8Gemm, MatchesRoundedTokensTimesStoredWeights) {
  bool any_level = false;
  at_every_level([&] {
    const rwkv::KernelSet& k = rwkv::kernels();
    if (k.matmat_rows_int8 == nullptr) return;
    any_level = true;
    for (DType type : {DType::Q8_0, DType::Q4_S}) {
      const uint32_t group = rwkv::activation_group_values(type);
      for (uint32_t cols : {32u, 100u, 768u, 3072u}) {
        for (uint32_t rows : {1u, 15u, 17u, 33u, 100u}) {
          const StoredMatrix w = store(random_normal(size_t(rows) * cols, rows * 7 + cols), rows, cols, type);
          for (uint32_t n_tokens : {1u, 2u, 5u, 6u, 7u, 15u, 16u, 17u, 31u, 33u, 40u}) {
            const bool squared_relu = (n_tokens + rows) % 2 == 1;
            const std::vector<float> X = random_normal(size_t(n_tokens) * cols, 5 + cols + n_tokens);
            std::vector<std::byte> packed(k.int8_tokens_bytes(type, n_tokens, cols));
            const uint32_t token_split = n_tokens / 3;
            k.pack_int8_tokens(type, X.data(), n_tokens, cols, 0, token_split, packed.data());
            k.pack_int8_tokens(type, X.data(), n_tokens, cols, token_split, n_tokens, packed.data());
            std::vector<float> Y(size_t(n_tokens) * rows, std::numeric_limits<float>::quiet_NaN());
            const uint32_t row_split = std::min(rows, k.int8_row_granule / 2 + 3);
            k.matmat_rows_int8(w.ref, packed.data(), n_tokens, Y.data(), 0, row_split, squared_relu);
            k.matmat_rows_int8(w.ref, packed.data(), n_tokens, Y.data(), row_split, rows, squared_relu);
            std::vector<rwkv::Int8Activation> x(n_tokens);
            for (uint32_t t = 0; t < n_tokens; ++t) {
              rwkv::quantize_activation(X.data() + size_t(t) * cols, cols, group, x[t]);
            }
            ASSERT_TRUE(gemm_outputs_match(Y, w, n_tokens, squared_relu, [&](uint32_t t, uint32_t c) {
              return double(x[t].scales[c / group]) * x[t].quants[c];
            })) << rwkv::dtype_name(type);
          }
        }
      }
    }
  });
  if (!any_level) GTEST_SKIP() << "no kernel level with an int8 GEMM on this processor";
}

// w packed by `pack` (a KernelSet's packing at load) into `storage` in two ranges of its
// n_panels panels, as threads split it; the matrix that reads them as `layout`.
rwkv::MatrixRef packed_in_two_ranges(const StoredMatrix& w, uint32_t n_panels, rwkv::WeightLayout layout,
                                     void (*pack)(const rwkv::MatrixRef&, uint32_t, uint32_t, std::byte*),
                                     std::vector<std::byte>& storage) {
  pack(w.ref, 0, n_panels / 2, storage.data());
  pack(w.ref, n_panels / 2, n_panels, storage.data());
  rwkv::MatrixRef panels = w.ref;
  panels.data = storage.data();
  panels.layout = layout;
  return panels;
}

// Whether `panels` dequantizes bit for bit to w's values (padding rows and columns dropped).
bool holds_the_rows(const rwkv::MatrixRef& panels, const StoredMatrix& w) {
  std::vector<float> values(size_t(panels.rows) * panels.cols);
  rwkv::dequantize_rows(panels, 0, panels.rows, values.data());
  return std::memcmp(values.data(), w.dequantized.data(), values.size() * sizeof(float)) == 0;
}

// q8_0 and q4_s stored as int8 panels (KernelSet::pack_int8_panels: what a model does at
// load at the VNNI level), at every level that has them: the panels hold the rows' values
// (dequantized bit for bit, padding rows and columns dropped); the GEMM multiplies them
// in place with the bits it gives the rows (which it packs into the same panels itself);
// and the one-token kernel gives each token the bits the GEMM gives it in any batch. The
// matrix is packed and multiplied in two row ranges from a panel boundary, as threads
// split it; 1, 33 and 100 rows end in part-filled panels, 100 and 300 columns in a padded
// block or super-block.
TEST(KernelInt8Panels, HoldTheRowsAndGiveEachTokenItsOneTokenBits) {
  bool any_level = false;
  at_every_level([&] {
    const rwkv::KernelSet& k = rwkv::kernels();
    if (k.pack_int8_panels == nullptr) return;
    any_level = true;
    for (DType type : {DType::Q8_0, DType::Q4_S}) {
    for (uint32_t cols : {32u, 100u, 300u, 768u}) {
      for (uint32_t rows : {1u, 33u, 100u}) {
        const StoredMatrix w = store(random_normal(size_t(rows) * cols, rows * 5 + cols), rows, cols, type);
        const std::string what = std::string(rwkv::dtype_name(type)) + " " + std::to_string(rows) + "x" +
                                 std::to_string(cols);
        std::vector<std::byte> storage(rwkv::int8_panels_bytes(type, rows, cols));
        const uint32_t n_panels = (rows + rwkv::kInt8PanelRows - 1) / rwkv::kInt8PanelRows;
        const rwkv::MatrixRef panels =
            packed_in_two_ranges(w, n_panels, rwkv::WeightLayout::Int8Panels, k.pack_int8_panels, storage);
        ASSERT_TRUE(holds_the_rows(panels, w)) << what;
        const uint32_t row_split = std::min(rows, (n_panels / 2) * rwkv::kInt8PanelRows);
        for (uint32_t n_tokens : {1u, 2u, 5u, 16u, 17u}) {
          const std::vector<float> X = random_normal(size_t(n_tokens) * cols, 11 * cols + n_tokens);
          std::vector<std::byte> packed(k.int8_tokens_bytes(type, n_tokens, cols));
          k.pack_int8_tokens(type, X.data(), n_tokens, cols, 0, n_tokens, packed.data());
          std::vector<float> from_rows(size_t(n_tokens) * rows), from_panels(size_t(n_tokens) * rows);
          k.matmat_rows_int8(w.ref, packed.data(), n_tokens, from_rows.data(), 0, rows, false);
          k.matmat_rows_int8(panels, packed.data(), n_tokens, from_panels.data(), 0, row_split, false);
          k.matmat_rows_int8(panels, packed.data(), n_tokens, from_panels.data(), row_split, rows, false);
          ASSERT_EQ(std::memcmp(from_rows.data(), from_panels.data(), from_rows.size() * sizeof(float)), 0)
              << what << ", " << n_tokens << " tokens";
          for (uint32_t t = 0; t < n_tokens; ++t) {
            rwkv::Int8Activation x;
            rwkv::quantize_activation(X.data() + size_t(t) * cols, cols, rwkv::activation_group_values(type), x);
            std::vector<float> y(rows);
            k.matvec_rows_int8_panels(panels, x, y.data(), 0, row_split);
            k.matvec_rows_int8_panels(panels, x, y.data(), row_split, rows);
            ASSERT_EQ(std::memcmp(y.data(), from_panels.data() + size_t(t) * rows, rows * sizeof(float)), 0)
                << what << ", token " << t << " of " << n_tokens;
          }
        }
      }
    }
    }
  });
  if (!any_level) GTEST_SKIP() << "no kernel level with int8 panels on this processor";
}

// f16 stored as panels (KernelSet::pack_f16_panels: what a model does at load at the
// AVX-512 levels), at every level that has them: the panels hold the rows' values
// (dequantized bit for bit); the product for any number of tokens is within float32
// summation of the definition (double, 1e-5 of sum |w x|) and gives each token the bits
// that token gets alone; a row range writes only its rows. 1, 33, 100 and 130 rows end in
// part-filled panels (130: four whole panels side by side, then one); 4100 and 8200
// columns take two and three passes of the tile's 4096; 1 to 25 tokens cover the
// side-by-side kernels (up to 6) and the tiles (one group up to 12, then groups of
// about equal size).
TEST(KernelF16Panels, HoldTheRowsAndGiveEachTokenItsOneTokenBits) {
  bool any_level = false;
  at_every_level([&] {
    const rwkv::KernelSet& k = rwkv::kernels();
    if (k.pack_f16_panels == nullptr) return;
    any_level = true;
    for (uint32_t cols : {1u, 33u, 4100u, 8200u}) {
      for (uint32_t rows : {1u, 33u, 100u, 130u}) {
        const StoredMatrix w = store(random_normal(size_t(rows) * cols, rows * 7 + cols), rows, cols, DType::F16);
        const std::string what = std::to_string(rows) + "x" + std::to_string(cols);
        std::vector<std::byte> storage(rwkv::f16_panels_bytes(rows, cols));
        const uint32_t n_panels = (rows + rwkv::kF16PanelRows - 1) / rwkv::kF16PanelRows;
        const rwkv::MatrixRef panels =
            packed_in_two_ranges(w, n_panels, rwkv::WeightLayout::F16Panels, k.pack_f16_panels, storage);
        ASSERT_TRUE(holds_the_rows(panels, w)) << what;
        const uint32_t row_split = std::min(rows, (n_panels / 2) * rwkv::kF16PanelRows);
        for (uint32_t n_tokens : {1u, 2u, 3u, 4u, 6u, 7u, 12u, 13u, 25u}) {
          const std::vector<float> X = random_normal(size_t(n_tokens) * cols, 13 * cols + n_tokens);
          std::vector<float> Y(size_t(n_tokens) * rows, std::nanf(""));
          k.matmat_rows_f16_panels(panels, X.data(), n_tokens, Y.data(), 0, row_split, false);
          for (uint32_t t = 0; t < n_tokens; ++t) {
            for (uint32_t r = row_split; r < rows; ++r) {
              ASSERT_TRUE(std::isnan(Y[size_t(t) * rows + r])) << what << ": row " << r << " written by rows [0, "
                                                                << row_split << ")";
            }
          }
          k.matmat_rows_f16_panels(panels, X.data(), n_tokens, Y.data(), row_split, rows, false);
          for (uint32_t t = 0; t < n_tokens; ++t) {
            const float* x = X.data() + size_t(t) * cols;
            for (uint32_t r = 0; r < rows; ++r) {
              double exact = 0, magnitude = 0;
              for (uint32_t c = 0; c < cols; ++c) {
                exact += double(w.dequantized[size_t(r) * cols + c]) * x[c];
                magnitude += std::abs(double(w.dequantized[size_t(r) * cols + c]) * x[c]);
              }
              ASSERT_NEAR(Y[size_t(t) * rows + r], exact, 1e-5 * magnitude + 1e-30)
                  << what << ", token " << t << " of " << n_tokens << ", row " << r;
            }
            std::vector<float> alone(rows);
            k.matmat_rows_f16_panels(panels, x, 1, alone.data(), 0, rows, false);
            ASSERT_EQ(std::memcmp(alone.data(), Y.data() + size_t(t) * rows, rows * sizeof(float)), 0)
                << what << ", token " << t << " of " << n_tokens;
          }
          std::vector<float> squared(Y.size());
          k.matmat_rows_f16_panels(panels, X.data(), n_tokens, squared.data(), 0, rows, true);
          for (size_t i = 0; i < Y.size(); ++i) {
            const float expected = Y[i] > 0.0f ? Y[i] * Y[i] : 0.0f;
            ASSERT_EQ(squared[i], expected) << what << ", " << n_tokens << " tokens, squared ReLU, value " << i;
          }
        }
      }
    }
  });
  if (!any_level) GTEST_SKIP() << "no kernel level with f16 panels on this processor";
}

// The bfloat16 products (KernelSet::matmat_rows_bf16: bf16 weights on AVX512_BF16) called
// directly, at every level that has them on this processor, against their definition:
// each token rounded to bfloat16 (nearest even) times the stored weights, in double;
// the products are exact, so only the order of the float additions may differ (1e-5 of
// sum |w x|). Tokens are packed in two ranges and rows multiplied in two ranges, the
// second off the tile (12 rows on vdpbf16ps, 16 on AMX), as threads split them; 1 to 40
// tokens cross the 16-token groups, 1 to 100 rows end in part-filled tiles, odd columns
// (1, 31, 33, 257) leave a column without its pair and 31/33 end off AMX's 32-column step,
// 768 and 3072 are the model widths.
// One bf16 GEMM (packer, product, its row granule) against the rounded-token definition.
struct Bf16Gemm {
  size_t (*tokens_values)(uint32_t n_tokens, uint32_t cols);
  void (*pack)(const float* X, uint32_t n_tokens, uint32_t cols, uint32_t token_begin, uint32_t token_end,
               uint16_t* packed);
  void (*multiply)(const rwkv::MatrixRef& w, const uint16_t* packed, uint32_t n_tokens, float* Y, uint32_t row_begin,
                   uint32_t row_end, bool squared_relu);
  uint32_t row_granule;
};

void expect_bf16_gemm_matches_definition(const Bf16Gemm& gemm) {
  for (uint32_t cols : {1u, 2u, 31u, 33u, 257u, 768u, 3072u}) {
    for (uint32_t rows : {1u, 11u, 12u, 13u, 17u, 30u, 100u}) {
      const StoredMatrix w = store(random_normal(size_t(rows) * cols, rows * 5 + cols), rows, cols, DType::BF16);
      for (uint32_t n_tokens : {1u, 3u, 15u, 16u, 17u, 33u, 40u}) {
        const bool squared_relu = (n_tokens + rows) % 2 == 1;
        const std::vector<float> X = random_normal(size_t(n_tokens) * cols, 7 + cols + n_tokens);
        std::vector<uint16_t> packed(gemm.tokens_values(n_tokens, cols), 0xffff);
        const uint32_t token_split = n_tokens / 3;
        gemm.pack(X.data(), n_tokens, cols, 0, token_split, packed.data());
        gemm.pack(X.data(), n_tokens, cols, token_split, n_tokens, packed.data());
        std::vector<float> Y(size_t(n_tokens) * rows, std::numeric_limits<float>::quiet_NaN());
        const uint32_t row_split = std::min(rows, gemm.row_granule / 2 + 1);
        gemm.multiply(w.ref, packed.data(), n_tokens, Y.data(), 0, row_split, squared_relu);
        gemm.multiply(w.ref, packed.data(), n_tokens, Y.data(), row_split, rows, squared_relu);
        ASSERT_TRUE(gemm_outputs_match(Y, w, n_tokens, squared_relu, [&](uint32_t t, uint32_t c) {
          return double(round_to_bf16(X[size_t(t) * cols + c]));
        })) << rows << "x" << cols << ", " << n_tokens << " tokens";
      }
    }
  }
}

TEST(KernelBf16Dot, MatchesRoundedTokensTimesStoredWeights) {
  bool any_level = false;
  at_every_level([&] {
    const rwkv::KernelSet& k = rwkv::kernels();
    if (k.matmat_rows_bf16 == nullptr) return;
    any_level = true;
    expect_bf16_gemm_matches_definition(
        {k.bf16_tokens_values, k.pack_bf16_tokens, k.matmat_rows_bf16, k.bf16_row_granule});
  });
  if (!any_level) GTEST_SKIP() << "no kernel level with bf16 dot products on this processor (AVX512_BF16)";
}

// A bf16 matrix marked float_activations (the low-rank ones) multiplies the tokens as they
// are, at every level and token count, bf16 dot products or not.
TEST(KernelBf16Dot, FloatActivationsKeepFloat32Tokens) {
  at_every_level([&] {
    for (uint32_t n_tokens : {1u, 3u, 16u, 40u}) {
      const uint32_t rows = 96, cols = 768;
      StoredMatrix w = store(random_normal(size_t(rows) * cols, 41), rows, cols, DType::BF16);
      w.ref.float_activations = true;
      const std::vector<float> X = random_normal(size_t(n_tokens) * cols, 43 + n_tokens);
      std::vector<float> Y(size_t(n_tokens) * rows);
      rwkv::matmat(w.ref, X.data(), Y.data(), n_tokens);
      ASSERT_TRUE(gemm_outputs_match(Y, w, n_tokens, false, [&](uint32_t t, uint32_t c) {
        return double(X[size_t(t) * cols + c]);
      }));
    }
  });
}

// The amx level's q8_0 GEMM (AMX tiles) gives the VNNI kernel's results bit for bit: the
// same rounded tokens, the same integer dot per block and the same float operations in
// the same order.
TEST(KernelInt8Gemm, AmxEqualsVnniBitForBitForQ8_0) {
  const auto levels = rwkv::supported_isa_levels();
  if (std::find(levels.begin(), levels.end(), rwkv::IsaLevel::Amx) == levels.end()) {
    GTEST_SKIP() << "this processor (or its operating system) does not run the amx level";
  }
  for (uint32_t cols : {32u, 100u, 768u, 3072u}) {
    for (uint32_t rows : {15u, 33u, 100u}) {
      const StoredMatrix w = store(random_normal(size_t(rows) * cols, rows + cols), rows, cols, DType::Q8_0);
      for (uint32_t n_tokens : {1u, 5u, 16u, 17u, 40u}) {
        const std::vector<float> X = random_normal(size_t(n_tokens) * cols, 3 * cols + n_tokens);
        std::vector<float> results[2];
        for (rwkv::IsaLevel level : {rwkv::IsaLevel::Avx512Vnni, rwkv::IsaLevel::Amx}) {
          rwkv::ScopedKernels use(level);
          const rwkv::KernelSet& k = rwkv::kernels();
          std::vector<std::byte> packed(k.int8_tokens_bytes(DType::Q8_0, n_tokens, cols));
          k.pack_int8_tokens(DType::Q8_0, X.data(), n_tokens, cols, 0, n_tokens, packed.data());
          std::vector<float>& Y = results[level == rwkv::IsaLevel::Amx];
          Y.assign(size_t(n_tokens) * rows, 0.0f);
          k.matmat_rows_int8(w.ref, packed.data(), n_tokens, Y.data(), 0, rows, n_tokens % 2 == 0);
        }
        for (size_t i = 0; i < results[0].size(); ++i) {
          ASSERT_EQ(std::memcmp(&results[0][i], &results[1][i], sizeof(float)), 0)
              << rows << "x" << cols << ", " << n_tokens << " tokens: token " << i / rows << " row " << i % rows
              << ": vnni " << results[0][i] << ", amx " << results[1][i];
        }
      }
    }
  }
}

#ifdef RWKV_TEST_AMX_EMULATION
// The amx level's GEMMs with the tile instructions emulated (tests/amx_emulation), on any
// processor with the AVX-512 levels they are otherwise compiled for: the bf16 tiles
// against the rounded-token definition, the q8_0 tiles against the VNNI kernel bit for bit
// (the same shapes as the tests above that run them on AMX hardware).
TEST(KernelAmxEmulated, Bf16TilesMatchRoundedTokensTimesStoredWeights) {
  const rwkv::CpuFeatures cpu = rwkv::detect_cpu_features();
  if (!cpu.avx512_vnni || !cpu.avx512_bf16) GTEST_SKIP() << "the emulated kernels are compiled for AVX-512 BF16";
  expect_bf16_gemm_matches_definition({rwkv::isa_avx512_vnni::bf16_tokens_values,
                                       rwkv::isa_avx512_vnni::pack_bf16_tokens,
                                       rwkv::isa_amx_emulated::matmat_rows_bf16_amx, 16});
}

TEST(KernelAmxEmulated, Q8_0TilesEqualVnniBitForBit) {
  if (!rwkv::detect_cpu_features().avx512_vnni) GTEST_SKIP() << "the emulated kernels are compiled for AVX-512 VNNI";
  rwkv::ScopedKernels use(rwkv::IsaLevel::Avx512Vnni);
  const rwkv::KernelSet& k = rwkv::kernels();
  for (uint32_t cols : {32u, 100u, 768u}) {
    for (uint32_t rows : {15u, 33u, 100u}) {
      const StoredMatrix w = store(random_normal(size_t(rows) * cols, rows + cols), rows, cols, DType::Q8_0);
      for (uint32_t n_tokens : {1u, 5u, 16u, 17u, 40u}) {
        const std::vector<float> X = random_normal(size_t(n_tokens) * cols, 3 * cols + n_tokens);
        const bool squared_relu = n_tokens % 2 == 0;
        std::vector<std::byte> vnni_tokens(k.int8_tokens_bytes(DType::Q8_0, n_tokens, cols));
        k.pack_int8_tokens(DType::Q8_0, X.data(), n_tokens, cols, 0, n_tokens, vnni_tokens.data());
        std::vector<float> vnni(size_t(n_tokens) * rows), tiles(size_t(n_tokens) * rows);
        k.matmat_rows_int8(w.ref, vnni_tokens.data(), n_tokens, vnni.data(), 0, rows, squared_relu);
        std::vector<std::byte> tile_tokens(rwkv::isa_amx_emulated::amx_q8_0_tokens_bytes(n_tokens, cols));
        rwkv::isa_amx_emulated::pack_amx_q8_0_tokens(X.data(), n_tokens, cols, 0, n_tokens, tile_tokens.data());
        rwkv::isa_amx_emulated::matmat_rows_amx_q8_0(w.ref, tile_tokens.data(), n_tokens, tiles.data(), 0, rows,
                                                     squared_relu);
        for (size_t i = 0; i < vnni.size(); ++i) {
          ASSERT_EQ(std::bit_cast<uint32_t>(vnni[i]), std::bit_cast<uint32_t>(tiles[i]))
              << rows << "x" << cols << ", " << n_tokens << " tokens: token " << i / rows << " row " << i % rows
              << ": vnni " << vnni[i] << ", emulated tiles " << tiles[i];
        }
      }
    }
  }
}
#endif

TEST(KernelDType, CodesNamesAndRowSizes) {
  // Codes are stored in files: these must never change.
  EXPECT_EQ(static_cast<int>(DType::F32), 0);
  EXPECT_EQ(static_cast<int>(DType::F16), 1);
  EXPECT_EQ(static_cast<int>(DType::BF16), 2);
  EXPECT_EQ(static_cast<int>(DType::Q8_0), 3);
  EXPECT_EQ(static_cast<int>(DType::Q4_S), 5);
  for (DType t : kAllTypes) EXPECT_EQ(rwkv::dtype_from_code(static_cast<uint8_t>(t), "tensor"), t);
  // Code 4 was q4_1m, replaced by q4_s: a file holding it is refused with a clear message.
  try {
    rwkv::dtype_from_code(4, "model.rwkv: tensor 'x'");
    ADD_FAILURE() << "code 4 was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("model.rwkv: tensor 'x' has weight type 4 (q4_1m)"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(rwkv::dtype_from_code(6, "tensor"), std::exception);
  for (DType t : kAllTypes) EXPECT_EQ(rwkv::parse_dtype(rwkv::dtype_name(t)), t);
  EXPECT_THROW(rwkv::parse_dtype("q4_0"), std::exception);
  EXPECT_EQ(rwkv::dtype_row_bytes(DType::F32, 33), 132u);
  EXPECT_EQ(rwkv::dtype_row_bytes(DType::BF16, 33), 66u);
  EXPECT_EQ(rwkv::dtype_row_bytes(DType::Q8_0, 33), 68u);   // two blocks, the second holding one value
  EXPECT_EQ(rwkv::dtype_row_bytes(DType::Q4_S, 64), 152u);  // one super-block, mostly padding
  EXPECT_EQ(rwkv::dtype_row_bytes(DType::Q4_S, 768), 3 * 152u);
  EXPECT_EQ(rwkv::dtype_tensor_bytes(DType::Q4_S, {3, 300}), 3 * 2 * 152u);
}

double relative_rms_error(const std::vector<float>& values, uint32_t rows, uint32_t cols, DType type,
                          rwkv::QuantRounding rounding = rwkv::QuantRounding::MinimizeError) {
  const auto bytes = rwkv::quantize_rows(values.data(), rows, cols, type, rounding);
  std::vector<float> back(values.size());
  rwkv::dequantize_rows(rwkv::MatrixRef{type, rows, cols, bytes.data()}, 0, rows, back.data());
  double err = 0, norm = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    err += (double(back[i]) - values[i]) * (double(back[i]) - values[i]);
    norm += double(values[i]) * values[i];
  }
  return std::sqrt(err / norm);
}

// Relative RMS error of quantize → dequantize on Gaussian data (257 columns, so every
// row ends in a padded block), with the bound per type.
TEST(KernelQuantError, RoundTripErrorPerTypeOnGaussianData) {
  constexpr uint32_t kRows = 200, kCols = 257;
  const auto values = random_normal(size_t(kRows) * kCols, 42, 0.02f);
  const std::pair<DType, double> bounds[] = {
      {DType::F32, 0.0}, {DType::F16, 3e-4}, {DType::BF16, 2.5e-3}, {DType::Q8_0, 6e-3}, {DType::Q4_S, 0.085}};
  for (auto [type, bound] : bounds) {
    const double err = relative_rms_error(values, kRows, kCols, type);
    std::printf("[ measured ] %s relative RMS round-trip error %.4f%%\n", rwkv::dtype_name(type), 100 * err);
    EXPECT_LE(err, bound) << rwkv::dtype_name(type);
  }
}

// The scale/minimum search must pay: lower error than round-to-nearest in the same
// layout on the same data, on Gaussian data and on heavy-tailed data with outliers.
TEST(KernelQuantError, Q4SearchBeatsRoundToNearest) {
  constexpr uint32_t kRows = 128, kCols = 256;
  std::vector<float> gaussian = random_normal(size_t(kRows) * kCols, 5);
  std::vector<float> heavy = random_normal(size_t(kRows) * kCols, 6);
  std::mt19937 rng(7);
  std::student_t_distribution<float> t(3.0f);
  for (float& v : heavy) v = t(rng);
  for (const auto& [name, values] : {std::pair{"gaussian", &gaussian}, std::pair{"student-t(3)", &heavy}}) {
    const double searched = relative_rms_error(*values, kRows, kCols, DType::Q4_S);
    const double nearest = relative_rms_error(*values, kRows, kCols, DType::Q4_S, rwkv::QuantRounding::Nearest);
    std::printf("[ measured ] q4_s on %s: search %.4f%%, round to nearest %.4f%%\n", name, 100 * searched,
                100 * nearest);
    EXPECT_LT(searched, 0.93 * nearest) << name;
  }
}

TEST(KernelQuantError, PaddingIsZeroAndDroppedOnDequantize) {
  const std::vector<float> row = {1.0f, -2.0f, 0.5f};
  const auto bytes = rwkv::quantize_rows(row.data(), 1, 3, DType::Q8_0);
  ASSERT_EQ(bytes.size(), sizeof(rwkv::BlockQ8_0));
  rwkv::BlockQ8_0 block;
  std::memcpy(&block, bytes.data(), sizeof(block));
  for (uint32_t i = 3; i < 32; ++i) EXPECT_EQ(block.quants[i], 0) << i;
  EXPECT_EQ(block.quants[1], -127);
  std::vector<float> back(3);
  rwkv::dequantize_rows(rwkv::MatrixRef{DType::Q8_0, 1, 3, bytes.data()}, 0, 1, back.data());
  EXPECT_NEAR(back[1], -2.0f, 1e-3);
  // Values q4_s cannot store are refused, not rounded to garbage.
  for (float bad : {std::nanf(""), INFINITY}) {
    std::vector<float> with_bad(40, 0.5f);
    with_bad[37] = bad;
    EXPECT_THROW(rwkv::quantize_rows(with_bad.data(), 1, 40, DType::Q4_S), rwkv::Error) << bad;
  }
  const std::vector<float> huge = {-3e38f, 3e38f};
  EXPECT_THROW(rwkv::quantize_rows(huge.data(), 1, 2, DType::Q4_S), rwkv::Error);
  // A constant row is exact in q4_s up to float32 rounding (scale 0, minimum 127 steps
  // of value / 127).
  const std::vector<float> constant(40, 0.75f);
  const auto q4 = rwkv::quantize_rows(constant.data(), 1, 40, DType::Q4_S);
  ASSERT_EQ(q4.size(), sizeof(rwkv::BlockQ4_S));
  std::vector<float> q4_back(40);
  rwkv::dequantize_rows(rwkv::MatrixRef{DType::Q4_S, 1, 40, q4.data()}, 0, 1, q4_back.data());
  for (float v : q4_back) EXPECT_NEAR(v, 0.75f, 1e-7f);
  // The padding of a 40-value row: sub-block 1 past its 8 values, sub-blocks 2 to 7 whole.
  const std::vector<float> varied = random_normal(40, 9);
  const auto q4_varied = rwkv::quantize_rows(varied.data(), 1, 40, DType::Q4_S);
  rwkv::BlockQ4_S block4;
  std::memcpy(&block4, q4_varied.data(), sizeof(block4));
  EXPECT_NE(block4.scales[1], 0);
  for (uint32_t j = 2; j < rwkv::kSubBlocks; ++j) EXPECT_EQ(block4.scales[j] | block4.mins[j], 0) << j;
  for (uint32_t i = 0; i < sizeof(block4.nibbles); ++i) {
    const bool holds_values = i < 32 || (i >= 32 && i < 40);  // sub-block 0, then sub-block 1's 8 values
    if (!holds_values) {
      EXPECT_EQ(block4.nibbles[i], 0) << "byte " << i;
    }
    if (holds_values) {
      EXPECT_EQ(block4.nibbles[i] >> 4, 0) << "byte " << i;  // sub-blocks 2 and 3 are padding
    }
  }
}

// Seconds per call of `call`, called again and again for `budget`.
template <typename Call>
double seconds_per_call(Call call, std::chrono::milliseconds budget) {
  const auto start = std::chrono::steady_clock::now();
  int iterations = 0;
  while (std::chrono::steady_clock::now() - start < budget) {
    call();
    ++iterations;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iterations;
}

// Single-threaded matvec throughput in GB/s of weight bytes read (the x quantization of
// the block types included). Run with --gtest_also_run_disabled_tests on a Release build.
TEST(KernelBench, DISABLED_MatvecThroughput) {
  // The last size fits in L2 cache: it measures the arithmetic rather than memory.
  for (auto [rows, cols] :
       {std::pair{2048u, 2048u}, std::pair{768u, 3072u}, std::pair{4096u, 4096u}, std::pair{256u, 1024u}}) {
    for (DType type : kAllTypes) {
      const auto values = random_normal(size_t(rows) * cols, 1, 0.02f);
      const auto bytes = rwkv::quantize_rows(values.data(), rows, cols, type);
      const rwkv::MatrixRef w{type, rows, cols, bytes.data()};
      const auto x = random_normal(cols, 2);
      std::vector<float> y(rows);
      rwkv::Int8Activation x_int8;
      const rwkv::KernelSet& k = rwkv::kernels();
      auto once = [&] {
        switch (type) {
          case DType::F32: k.matvec_rows_f32(w, x.data(), y.data(), 0, rows); break;
          case DType::F16: k.matvec_rows_f16(w, x.data(), y.data(), 0, rows); break;
          case DType::BF16: k.matvec_rows_bf16(w, x.data(), y.data(), 0, rows); break;
          case DType::Q8_0:
            rwkv::quantize_activation(x.data(), cols, rwkv::activation_group_values(type), x_int8);
            k.matvec_rows_q8_0(w, x_int8, y.data(), 0, rows);
            break;
          case DType::Q4_S:
            rwkv::quantize_activation(x.data(), cols, rwkv::activation_group_values(type), x_int8);
            k.matvec_rows_q4_s(w, x_int8, y.data(), 0, rows);
            break;
        }
      };
      for (int i = 0; i < 5; ++i) once();
      const double seconds = seconds_per_call(once, std::chrono::milliseconds(400));
      std::printf("[ measured ] matvec %s %ux%u: %.1f us, %.2f GB/s of weights\n", rwkv::dtype_name(type), rows, cols,
                  1e6 * seconds, double(bytes.size()) / seconds / 1e9);
    }
  }
}

// Single-threaded int8 GEMM (KernelSet::matmat_rows_int8, tokens packed beforehand) at
// each level that has one, in int8 GOP/s (2 per multiply-add) and as a fraction of that
// level's int8 peak on one thread (int8_peak_loop): VNNI against AMX tiles for q8_0.
// Shapes of the 0.1B and 1.5B models' matrices, 128 tokens. Run with
// --gtest_also_run_disabled_tests on a Release build.
TEST(KernelBench, DISABLED_Int8GemmThroughput) {
  constexpr uint32_t kTokens = 128;
  struct Case {
    DType type;
    uint32_t rows, cols;
    std::vector<std::byte> bytes;
    std::vector<float> X;
  };
  std::vector<Case> cases;
  for (DType type : {DType::Q8_0, DType::Q4_S}) {
    for (auto [rows, cols] : {std::pair{768u, 768u}, std::pair{3072u, 768u}, std::pair{768u, 3072u},
                              std::pair{2048u, 2048u}, std::pair{8192u, 2048u}}) {
      const auto values = random_normal(size_t(rows) * cols, 1, 0.02f);
      cases.push_back({type, rows, cols, rwkv::quantize_rows(values.data(), rows, cols, type),
                       random_normal(size_t(kTokens) * cols, 2)});
    }
  }
  at_every_level([&] {
    const rwkv::KernelSet& k = rwkv::kernels();
    if (k.matmat_rows_int8 == nullptr) return;
    // The best of 5 passes: the first ones meet the clock's ramp.
    double peak = 0;
    for (int pass = 0; pass < 5; ++pass) {
      int32_t sink = 0;
      const auto peak_start = std::chrono::steady_clock::now();
      const double ops = k.int8_peak_loop(4'000'000, &sink);
      peak = std::max(peak, ops / std::chrono::duration<double>(std::chrono::steady_clock::now() - peak_start).count());
    }
    for (const Case& c : cases) {
      const rwkv::MatrixRef w{c.type, c.rows, c.cols, c.bytes.data()};
      std::vector<std::byte> packed(k.int8_tokens_bytes(c.type, kTokens, c.cols));
      k.pack_int8_tokens(c.type, c.X.data(), kTokens, c.cols, 0, kTokens, packed.data());
      std::vector<float> Y(size_t(kTokens) * c.rows);
      const auto once = [&] { k.matmat_rows_int8(w, packed.data(), kTokens, Y.data(), 0, c.rows, false); };
      once();
      const double seconds = seconds_per_call(once, std::chrono::milliseconds(250));
      const double ops = 2.0 * c.rows * c.cols * kTokens / seconds;
      std::printf("[ measured ] int8 gemm %s %s %ux%u, %u tokens: %.1f us, %.0f GOP/s, %.2f of the %s peak (%.0f GOP/s)\n",
                  rwkv::isa_level_name(k.level), rwkv::dtype_name(c.type), c.rows, c.cols, kTokens,
                  1e6 * seconds, ops / 1e9, ops / peak, k.int8_unit, peak / 1e9);
    }
  });
}

}  // namespace

namespace {

// Odd length (vector body plus scalar tail), values across the range the blocks use.
std::vector<float> activation_inputs() {
  std::vector<float> x = random_normal(1003, 5, 8.0f);
  x.insert(x.end(), {-100.0f, -87.0f, -20.0f, -1e-3f, 0.0f, 1e-3f, 20.0f, 88.0f, 100.0f});
  return x;
}

}  // namespace

TEST(KernelVectorMath, ExpMatchesLibm) {
  at_every_level([&] {
    std::vector<float> x = activation_inputs();
    const std::vector<float> in = x;
    rwkv::exp_inplace(x.data(), uint32_t(x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      const double expected = std::exp(double(in[i]));
      if (in[i] < -87.0f) {
        EXPECT_LT(x[i], 1e-37) << "exp(" << in[i] << ")";
      } else if (in[i] > 88.0f) {
        EXPECT_GT(x[i], 1e38) << "exp(" << in[i] << ")";
      } else {
        EXPECT_NEAR(x[i], expected, 4e-7 * expected) << "exp(" << in[i] << ")";
      }
    }
  });
}

TEST(KernelVectorMath, SigmoidAndTanhMatchLibm) {
  at_every_level([&] {
    std::vector<float> s = activation_inputs();
    std::vector<float> t = s;
    const std::vector<float> in = s;
    rwkv::sigmoid_inplace(s.data(), uint32_t(s.size()));
    rwkv::tanh_inplace(t.data(), uint32_t(t.size()));
    for (size_t i = 0; i < in.size(); ++i) {
      const double sig = 1.0 / (1.0 + std::exp(-double(in[i])));
      EXPECT_NEAR(s[i], sig, 3e-7 * sig + 1e-38) << "sigmoid(" << in[i] << ")";
      EXPECT_NEAR(t[i], std::tanh(double(in[i])), 3e-7) << "tanh(" << in[i] << ")";
    }
  });
}

// Sums and norms against float64, for lengths with no vector, one, two, many and a tail,
// with a large common offset in the norm's input (its variance is taken around the mean).
TEST(KernelVectorMath, DotsAndNormMatchDefinition) {
  at_every_level([&] {
    for (uint32_t n : {3u, 16u, 40u, 64u, 768u, 1003u}) {
      const std::vector<float> a = random_normal(n, 11 + n), b = random_normal(n, 12 + n), c = random_normal(n, 13 + n);
      double ab = 0, abc = 0, magnitude_ab = 0, magnitude_abc = 0;
      for (uint32_t i = 0; i < n; ++i) {
        ab += double(a[i]) * b[i];
        abc += double(a[i]) * b[i] * c[i];
        magnitude_ab += std::abs(double(a[i]) * b[i]);
        magnitude_abc += std::abs(double(a[i]) * b[i] * c[i]);
      }
      EXPECT_NEAR(rwkv::dot(a.data(), b.data(), n), ab, 1e-6 * magnitude_ab) << "n " << n;
      EXPECT_NEAR(rwkv::dot3(a.data(), b.data(), c.data(), n), abc, 1e-6 * magnitude_abc) << "n " << n;

      std::vector<float> x = random_normal(n, 14 + n, 3.0f);
      for (float& v : x) v += 50.0f;
      const std::vector<float> weight = random_normal(n, 15 + n), bias = random_normal(n, 16 + n);
      double mean = 0, var = 0;
      for (float v : x) mean += v;
      mean /= n;
      for (float v : x) var += (v - mean) * (v - mean);
      var /= n;
      const float eps = 1e-5f;
      std::vector<float> out(n);
      rwkv::layer_norm(x.data(), weight.data(), bias.data(), out.data(), n, eps);
      for (uint32_t i = 0; i < n; ++i) {
        const double expected = (x[i] - mean) / std::sqrt(var + eps) * weight[i] + bias[i];
        EXPECT_NEAR(out[i], expected, 2e-5 * (1 + std::abs(weight[i]))) << "n " << n << " value " << i;
      }
    }
  });
}

// The bandwidth probe's read (KernelSet::stream_read) reads every word once, at every
// level: its result is the XOR of the words, for lengths with no whole step, one, an odd
// number of them and a tail.
TEST(KernelMachineProbes, StreamReadReadsEveryWordOnce) {
  at_every_level([&] {
    for (size_t n : {0u, 1u, 5u, 31u, 32u, 33u, 100u, 1000u, 4099u}) {
      std::vector<uint64_t> words(n);
      uint64_t expected = 0;
      for (size_t i = 0; i < n; ++i) {
        words[i] = (uint64_t(i) * 0x9E3779B97F4A7C15ull) ^ (uint64_t(1) << (i % 64));
        expected ^= words[i];
      }
      EXPECT_EQ(rwkv::kernels().stream_read(words.data(), n), expected) << n << " words";
    }
  });
}

// The token shift's two mixes and the elementwise sums against float64, with lengths
// that have no vector, one, many and a tail; every element is written (no stale output).
TEST(KernelVectorMath, TokenShiftMixesAndSumsMatchDefinition) {
  at_every_level([&] {
    for (uint32_t n : {3u, 16u, 40u, 768u, 1003u}) {
      const std::vector<float> cur = random_normal(n, 21 + n), prev = random_normal(n, 22 + n);
      const std::vector<float> mix = random_normal(n, 23 + n, 0.5f), y = random_normal(n, 24 + n);
      std::vector<float> mixed(n, std::nanf("")), blended(n, std::nanf(""));
      rwkv::token_shift_mix(cur.data(), prev.data(), mix.data(), mixed.data(), n);
      rwkv::token_shift_blend(cur.data(), prev.data(), mix.data(), blended.data(), n);
      std::vector<float> summed = cur, multiplied = cur;
      rwkv::add_inplace(summed.data(), y.data(), n);
      rwkv::add_product(multiplied.data(), prev.data(), y.data(), n);
      for (uint32_t i = 0; i < n; ++i) {
        const double c = cur[i], p = prev[i], m = mix[i];
        const double scale = std::abs(c) + std::abs(p) + 1;
        EXPECT_NEAR(mixed[i], c + (p - c) * m, 4e-7 * scale) << "n " << n << " value " << i;
        EXPECT_NEAR(blended[i], c * m + p * (1 - m), 4e-7 * scale) << "n " << n << " value " << i;
        EXPECT_NEAR(summed[i], c + y[i], 2e-7 * (std::abs(c) + std::abs(y[i]))) << "n " << n << " value " << i;
        EXPECT_NEAR(multiplied[i], c + p * y[i], 4e-7 * (std::abs(c) + std::abs(p * y[i]) + 1e-30))
            << "n " << n << " value " << i;
      }
    }
  });
}

// The int8 form of an activation: the vector path must give the scalar definition's
// scales, quants (round to nearest) and sums exactly, for q8_0's groups of 32 and q4_s's
// of 256; 101 and 600 values end in a partial group.
TEST(KernelQuantActivation, MatchesScalarDefinitionExactly) {
  at_every_level([&] {
    for (uint32_t group : {32u, 256u}) {
      for (uint32_t n : {101u, 600u}) {
        std::vector<float> x = random_normal(n, 3 + n, 2.0f);
        rwkv::Int8Activation a;
        rwkv::quantize_activation(x.data(), n, group, a);
        const uint32_t groups = (n + group - 1) / group;
        ASSERT_EQ(a.n_groups, groups);
        ASSERT_EQ(a.quants.size(), size_t(groups) * group);
        ASSERT_EQ(a.block_sums.size(), size_t(groups) * group / 32);
        for (uint32_t g = 0; g < groups; ++g) {
          const uint32_t begin = g * group, end = std::min(n, begin + group);
          float amax = 0;
          for (uint32_t i = begin; i < end; ++i) amax = std::max(amax, std::abs(x[i]));
          const float scale = amax / 127.0f;
          const float inverse = scale > 0 ? 1.0f / scale : 0.0f;
          EXPECT_EQ(a.scales[g], scale) << "group " << g;
          for (uint32_t c = begin; c < begin + group; c += 32) {
            int32_t sum = 0;
            for (uint32_t i = c; i < c + 32; ++i) {
              const int expected = i < end ? int(std::nearbyint(x[i] * inverse)) : 0;
              EXPECT_EQ(int(a.quants[i]), expected) << "group size " << group << ", value " << i;
              sum += expected;
            }
            EXPECT_EQ(a.block_sums[c / 32], sum) << "group size " << group << ", block " << c / 32;
          }
        }
      }
    }
  });
}

// A hostile model can drive activations to NaN or infinity: rounding them to int8 must
// not be undefined behaviour at any level (the sanitizer build checks), and a group
// without them keeps its exact quants.
TEST(KernelQuantActivation, NonFiniteValuesAreRoundedWithoutFault) {
  at_every_level([&] {
    std::vector<float> x = random_normal(96, 11, 2.0f);
    x[3] = std::numeric_limits<float>::quiet_NaN();
    x[40] = std::numeric_limits<float>::infinity();
    x[41] = -std::numeric_limits<float>::infinity();
    rwkv::Int8Activation a;
    rwkv::quantize_activation(x.data(), uint32_t(x.size()), 32, a);
    ASSERT_EQ(a.n_groups, 3u);
    float amax = 0;
    for (uint32_t i = 64; i < 96; ++i) amax = std::max(amax, std::abs(x[i]));
    const float inverse = 1.0f / (amax / 127.0f);
    for (uint32_t i = 64; i < 96; ++i) EXPECT_EQ(int(a.quants[i]), int(std::nearbyint(x[i] * inverse))) << i;
  });
}

// RWKV-4 steps against the plain recurrence in float64 (numerator A and denominator B
// without the running-maximum scaling), with exponents small enough not to overflow.
TEST(KernelWkv4, StepMatchesDefinition) {
  at_every_level([&] {
    const uint32_t C = 37;
    auto log_decay = random_normal(C, 7), bonus = random_normal(C, 8);
    for (float& w : log_decay) w = -std::exp(w);  // as the converter stores it
    std::vector<float> aa(C, 0.0f), bb(C, 0.0f), pp(C, -1e30f), wkv(C);
    std::vector<double> A(C, 0.0), B(C, 0.0);
    for (int step = 0; step < 6; ++step) {
      const auto k = random_normal(C, 20 + step), v = random_normal(C, 40 + step);
      rwkv::wkv4_step(k.data(), v.data(), log_decay.data(), bonus.data(), aa.data(), bb.data(), pp.data(), wkv.data(), C);
      for (uint32_t c = 0; c < C; ++c) {
        const double e_uk = std::exp(double(bonus[c]) + k[c]);
        const double expected = (A[c] + e_uk * v[c]) / (B[c] + e_uk);
        EXPECT_NEAR(wkv[c], expected, 1e-5 * (1 + std::abs(expected))) << "step " << step << " channel " << c;
        A[c] = std::exp(double(log_decay[c])) * A[c] + std::exp(double(k[c])) * v[c];
        B[c] = std::exp(double(log_decay[c])) * B[c] + std::exp(double(k[c]));
        const double scale = std::exp(double(pp[c]));
        EXPECT_NEAR(aa[c] * scale, A[c], 1e-5 * (std::abs(A[c]) + B[c])) << "step " << step << " channel " << c;
        EXPECT_NEAR(bb[c] * scale, B[c], 1e-5 * B[c]) << "step " << step << " channel " << c;
      }
    }
  });
}

// One RWKV-5/6 head step against its definition in float64, over a few steps.
TEST(KernelWkv5, HeadStepMatchesDefinition) {
  at_every_level([&] {
    for (uint32_t N : {64u, 12u}) {
      std::vector<float> S = random_normal(size_t(N) * N, 31 + N, 0.5f);
      std::vector<double> S_ref(S.begin(), S.end());
      const auto u = random_normal(N, 77);
      for (int step = 0; step < 3; ++step) {
        const auto r = random_normal(N, 110 + step), k = random_normal(N, 210 + step), v = random_normal(N, 310 + step);
        auto w = random_normal(N, 410 + step);
        for (float& x : w) x = 1.0f / (1.0f + std::exp(-x));  // decays in (0, 1)
        std::vector<float> y(N);
        rwkv::wkv5_head_step(r.data(), k.data(), v.data(), w.data(), u.data(), S.data(), y.data(), N);
        for (uint32_t j = 0; j < N; ++j) {
          double yj = 0, magnitude = 0;
          for (uint32_t i = 0; i < N; ++i) {
            const double term = double(r[i]) * (double(u[i]) * k[i] * v[j] + S_ref[size_t(i) * N + j]);
            yj += term;
            magnitude += std::abs(term);
          }
          EXPECT_NEAR(y[j], yj, 1e-5 * magnitude + 1e-6) << "N " << N << " step " << step << " value " << j;
        }
        for (uint32_t i = 0; i < N; ++i) {
          for (uint32_t j = 0; j < N; ++j) {
            double& s = S_ref[size_t(i) * N + j];
            s = double(k[i]) * v[j] + double(w[i]) * s;
            ASSERT_NEAR(S[size_t(i) * N + j], s, 1e-5 * (1 + std::abs(s))) << "N " << N << " state " << i << "," << j;
          }
        }
      }
    }
  });
}

// One RWKV-7 head step against the definition in float64, for the head size the vector
// path is compiled for (64), another it takes (128) and one it leaves to the scalar loop
// (12), over a few steps.
TEST(KernelWkv7, HeadStepMatchesDefinition) {
  at_every_level([&] {
    for (uint32_t N : {64u, 128u, 12u}) {
      std::vector<float> S = random_normal(size_t(N) * N, 11 + N, 0.5f);
      std::vector<double> S_ref(S.begin(), S.end());
      for (int step = 0; step < 3; ++step) {
        const auto r = random_normal(N, 100 + step), k = random_normal(N, 200 + step), v = random_normal(N, 300 + step);
        auto w = random_normal(N, 400 + step), a = random_normal(N, 500 + step), kk = random_normal(N, 600 + step);
        for (float& x : w) x = 1.0f / (1.0f + std::exp(-x));  // decays in (0, 1)
        for (float& x : a) x = 1.0f / (1.0f + std::exp(-x));
        std::vector<float> y(N);
        rwkv::wkv7_head_step(r.data(), w.data(), k.data(), v.data(), kk.data(), a.data(), S.data(), y.data(), N, N);
        // Error scale of each state row: its removal term sums N products.
        std::vector<double> row_scale(N);
        for (uint32_t i = 0; i < N; ++i) {
          double* row = S_ref.data() + size_t(i) * N;
          double sa = 0, sa_magnitude = 0;
          for (uint32_t j = 0; j < N; ++j) {
            sa += row[j] * kk[j];
            sa_magnitude += std::abs(row[j] * kk[j]);
          }
          row_scale[i] = 1 + sa_magnitude;
          double yi = 0, magnitude = 0;
          for (uint32_t j = 0; j < N; ++j) {
            row[j] = row[j] * w[j] - sa * kk[j] * a[j] + double(v[i]) * k[j];
            yi += row[j] * r[j];
            magnitude += std::abs(row[j] * r[j]);
          }
          EXPECT_NEAR(y[i], yi, 1e-5 * magnitude + 1e-6) << "N " << N << " step " << step << " row " << i;
        }
        for (size_t i = 0; i < S.size(); ++i) {
          ASSERT_NEAR(S[i], S_ref[i], 1e-5 * (row_scale[i / N] + std::abs(S_ref[i]))) << "N " << N << " state " << i;
        }
      }
    }
  });
}

// A prompt's steps of one head part in one call (the inputs of the tokens ahead
// prefetched) give the bits of the single steps in order: tokens a row of `stride`
// floats apart, the head and its part at offsets within the row, runs shorter and longer
// than the prefetch distance.
TEST(KernelWkv7, HeadStepsOverTokensGiveTheSingleStepsBits) {
  at_every_level([&] {
    for (const auto& [N, part, tokens] : std::vector<std::tuple<uint32_t, uint32_t, uint32_t>>{
             {64, 64, 1}, {64, 16, 2}, {64, 16, 3}, {64, 32, 9}, {128, 128, 5}, {12, 6, 4}}) {
      const uint32_t stride = 3 * N + 5, head = N + 3, first_row = N - part;
      std::vector<float> inputs[6];  // r, w, k, v, kk, a for every token
      for (uint32_t i = 0; i < 6; ++i) inputs[i] = random_normal(size_t(tokens) * stride, 700 + 10 * i + N, 1.0f);
      for (float& x : inputs[1]) x = 1.0f / (1.0f + std::exp(-x));
      for (float& x : inputs[5]) x = 1.0f / (1.0f + std::exp(-x));
      std::vector<float> S_one = random_normal(size_t(N) * N, 17 + N, 0.5f);
      std::vector<float> S_all = S_one;
      std::vector<float> y_one(size_t(tokens) * stride, 0.0f), y_all(y_one.size(), 0.0f);
      const auto at = [&](uint32_t input, uint32_t t) { return inputs[input].data() + size_t(t) * stride + head; };
      float* S_part_one = S_one.data() + size_t(first_row) * N;
      for (uint32_t t = 0; t < tokens; ++t) {
        rwkv::wkv7_head_step(at(0, t), at(1, t), at(2, t), at(3, t) + first_row, at(4, t), at(5, t), S_part_one,
                             y_one.data() + size_t(t) * stride + head + first_row, N, part);
      }
      rwkv::wkv7_head_steps(at(0, 0), at(1, 0), at(2, 0), at(3, 0) + first_row, at(4, 0), at(5, 0), stride, tokens,
                            S_all.data() + size_t(first_row) * N, y_all.data() + head + first_row, N, part);
      ASSERT_EQ(0, std::memcmp(y_all.data(), y_one.data(), y_one.size() * sizeof(float)))
          << "N " << N << " part " << part << " tokens " << tokens;
      ASSERT_EQ(0, std::memcmp(S_all.data(), S_one.data(), S_one.size() * sizeof(float)))
          << "N " << N << " part " << part << " tokens " << tokens;
    }
  });
}

// A head stepped in parts of its rows (threads beyond the heads) gives the whole head's
// bits, for parts of 4 rows and up, on the vector paths and the scalar loop (head size 12,
// parts of 6 rows).
TEST(KernelWkv7, HeadStepInPartsGivesTheWholeHeadsBits) {
  at_every_level([&] {
    for (const auto& [N, part] : std::vector<std::pair<uint32_t, uint32_t>>{
             {64, 4}, {64, 8}, {64, 32}, {128, 16}, {12, 4}, {12, 6}}) {
      std::vector<float> S_whole = random_normal(size_t(N) * N, 13 + N, 0.5f);
      std::vector<float> S_parts = S_whole;
      for (int step = 0; step < 3; ++step) {
        const auto r = random_normal(N, 110 + step), k = random_normal(N, 210 + step), v = random_normal(N, 310 + step);
        auto w = random_normal(N, 410 + step), a = random_normal(N, 510 + step), kk = random_normal(N, 610 + step);
        for (float& x : w) x = 1.0f / (1.0f + std::exp(-x));
        for (float& x : a) x = 1.0f / (1.0f + std::exp(-x));
        std::vector<float> y_whole(N), y_parts(N, std::nanf(""));
        rwkv::wkv7_head_step(r.data(), w.data(), k.data(), v.data(), kk.data(), a.data(), S_whole.data(),
                             y_whole.data(), N, N);
        for (uint32_t i = N; i >= part; i -= part) {  // the last part first: no part may lean on another
          const uint32_t first = i - part;
          rwkv::wkv7_head_step(r.data(), w.data(), k.data(), v.data() + first, kk.data(), a.data(),
                               S_parts.data() + size_t(first) * N, y_parts.data() + first, N, part);
        }
        for (uint32_t i = 0; i < N; ++i) {
          ASSERT_EQ(std::bit_cast<uint32_t>(y_parts[i]), std::bit_cast<uint32_t>(y_whole[i]))
              << "N " << N << " part " << part << " step " << step << " row " << i;
        }
        ASSERT_EQ(0, std::memcmp(S_parts.data(), S_whole.data(), S_whole.size() * sizeof(float)))
            << "N " << N << " part " << part << " step " << step;
      }
    }
  });
}
