// Batched decoding (Model::forward_batch): several independent sequences advanced in one
// pass over the weights, against each sequence run alone, for every architecture version
// and weight type.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "convert/to_native.hpp"
#include "kernels/isa.hpp"
#include "kernels/matvec.hpp"
#include "kernels/thread_pool.hpp"
#include "rwkv/error.hpp"
#include "rwkv/model.hpp"
#include "rwkv/state_file.hpp"
#include "rwkv/threads.hpp"
#include "test_support.hpp"
#include "weights/panels.hpp"

namespace {

nlohmann::json fixture_models() {
  std::ifstream in(rwkv_test::fixtures_dir() / "fixtures.json");
  return nlohmann::json::parse(in)["models"];
}

std::shared_ptr<const rwkv::Model> load_fixture(const nlohmann::json& f, rwkv::DType type,
                                                const rwkv_test::ScratchDir& dir) {
  const std::string path = (dir / (f["name"].get<std::string>() + "." + rwkv::dtype_name(type) + ".rwkv")).string();
  rwkv::convert::ConvertOptions options;
  options.types = rwkv::convert::WeightTypes::for_type(type);
  rwkv::convert::convert_pth((rwkv_test::fixtures_dir() / f["file"].get<std::string>()).string(), path, options);
  return rwkv::Model::load(path);
}

// A deterministic token stream for sequence `seed`, spread over the vocabulary.
std::vector<int32_t> tokens_for(uint32_t seed, size_t count, uint32_t n_vocab) {
  std::vector<int32_t> out(count);
  uint64_t state = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (int32_t& t : out) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    t = static_cast<int32_t>((state >> 33) % n_vocab);
  }
  return out;
}

// One sequence of the schedule: it joins at step `join`, feeds its prompt in chunks of
// at most `chunk` tokens (one item per step), then one token per step, and leaves after
// `length` tokens.
struct Plan {
  uint32_t join = 0;
  size_t prompt = 0;
  size_t chunk = 0;
  size_t length = 0;
};

// The schedule of the tests: sequences of different lengths that join and leave mid-way,
// a prompt chunk beside decode tokens, and a prompt longer than one pass (128 rows).
const std::vector<Plan> kPlans = {
    {0, 1, 1, 12},     // decodes from the first step to the last
    {0, 5, 5, 6},      // a short prompt in one item, leaves early
    {2, 9, 4, 16},     // joins later, its prompt in chunks of 4 beside decode tokens
    {3, 150, 150, 153},  // a prompt longer than one pass, in one item
    {5, 1, 1, 3},      // joins and leaves in the middle
    {7, 20, 7, 24},
};

struct Outcome {
  std::vector<std::vector<float>> logits;  // per sequence: n_vocab per token it fed
  std::vector<rwkv::State> states;         // where each sequence ended
};

// Every sequence fed through forward_batch on the schedule, with every token's logits.
Outcome run_batched(const rwkv::Model& model, const std::vector<std::vector<int32_t>>& streams) {
  const size_t V = model.info().n_vocab;
  Outcome out;
  out.logits.resize(kPlans.size());
  for (size_t s = 0; s < kPlans.size(); ++s) {
    out.states.push_back(model.new_state());
    out.logits[s].resize(kPlans[s].length * V);
  }
  std::vector<size_t> fed(kPlans.size(), 0);
  for (uint32_t step = 0;; ++step) {
    std::vector<rwkv::BatchItem> items;
    for (size_t s = 0; s < kPlans.size(); ++s) {
      const Plan& p = kPlans[s];
      if (step < p.join || fed[s] == p.length) continue;
      const size_t n = fed[s] < p.prompt ? std::min(p.chunk, p.prompt - fed[s]) : 1;
      const std::span<const int32_t> tokens(streams[s].data() + fed[s], n);
      items.push_back({tokens, &out.states[s], std::span<float>(out.logits[s].data() + fed[s] * V, n * V)});
      fed[s] += n;
    }
    if (items.empty() && step > kPlans.back().join) break;
    // Items in a different order each step: the order must not matter.
    if (step % 2 == 1) std::reverse(items.begin(), items.end());
    model.forward_batch(items);
  }
  return out;
}

// Each sequence alone, fed as its plan feeds it (its prompt chunks in sequence mode,
// then a token at a time), as a program serving one user would.
Outcome run_alone(const rwkv::Model& model, const std::vector<std::vector<int32_t>>& streams) {
  const size_t V = model.info().n_vocab;
  Outcome out;
  for (size_t s = 0; s < kPlans.size(); ++s) {
    const Plan& p = kPlans[s];
    rwkv::State state = model.new_state();
    std::vector<float> logits(p.length * V);
    for (size_t fed = 0; fed < p.length;) {
      const size_t n = fed < p.prompt ? std::min(p.chunk, p.prompt - fed) : 1;
      const std::span<const int32_t> tokens(streams[s].data() + fed, n);
      model.forward_sequence(tokens, state, std::span<float>(logits.data() + fed * V, n * V));
      fed += n;
    }
    out.logits.push_back(std::move(logits));
    out.states.push_back(std::move(state));
  }
  return out;
}

std::vector<std::vector<int32_t>> streams_for(const rwkv::Model& model) {
  std::vector<std::vector<int32_t>> streams;
  for (size_t s = 0; s < kPlans.size(); ++s) {
    streams.push_back(tokens_for(static_cast<uint32_t>(s), kPlans[s].length + 8, model.info().n_vocab));
  }
  return streams;
}

struct Difference {
  double logits = 0;  // max |a − b|
  double state = 0;   // max |a − b| / max(1, |a|)
};

Difference max_difference(const Outcome& a, const Outcome& b) {
  Difference d;
  for (size_t s = 0; s < a.logits.size(); ++s) {
    for (size_t i = 0; i < a.logits[s].size(); ++i) {
      d.logits = std::max(d.logits, std::abs(double(a.logits[s][i]) - b.logits[s][i]));
    }
    for (size_t i = 0; i < a.states[s].data.size(); ++i) {
      const double scale = std::max(1.0, std::abs(double(a.states[s].data[i])));
      d.state = std::max(d.state, std::abs(double(a.states[s].data[i]) - b.states[s].data[i]) / scale);
    }
  }
  return d;
}

// Largest |batched − alone| (logits, and states relative to their size) allowed on this
// schedule, per weight type; float32's is the bound (logits measured up to 6.2e-6
// in an AVX-512 build, 6.6e-6 in an AVX2 one). f16 and bf16 differ only in summation
// order too (up to 9.6e-6). For q8_0 and q4_s a chunk that alone takes the exact int8
// path (up to 4 or 8 rows, activations rounded to int8 as in decoding) meets, in a larger
// pass, float32 activations with the widened weights: measured 0.08-0.37 (q8_0) and
// 0.09-0.36 (q4_s) on the tiny fixtures. Where the kernels use bf16 dot products (AMD with AVX512_BF16), bf16
// weights in a pass of more than 2 rows meet activations rounded to bf16
// (kernels/matmat_bf16.hpp), which a chunk of 2 rows alone does not: measured 0.023-0.095
// (logits) and up to 0.032 (states) on the fixtures (AMD Zen 5).
const std::map<rwkv::DType, double> kBound = {{rwkv::DType::F32, 1e-5},
                                              {rwkv::DType::F16, 3e-5},
                                              {rwkv::DType::BF16, 3e-5},
                                              {rwkv::DType::Q8_0, 0.75},
                                              {rwkv::DType::Q4_S, 0.75}};
constexpr double kBf16RoundedActivationsBound = 0.2;

double batch_bound(rwkv::DType type) {
  if (type == rwkv::DType::BF16 && rwkv::kernels().matmat_rows_bf16 != nullptr) return kBf16RoundedActivationsBound;
  // Weights packed as panels at load (q8_0 and q4_s at the VNNI level, f16 at the AVX-512
  // ones): every token gets its one-token product's bits in any batch, so only float32's
  // summation orders remain (measured 0 to 2.9e-6 on AMD Zen 5).
  if (type != rwkv::DType::F32 && rwkv::packing_for_kernels(type)) {
    return kBound.at(rwkv::DType::F32);
  }
  return kBound.at(type);
}

TEST(Batch, EveryVersionAndTypeMatchesEachSequenceAlone) {
  rwkv_test::ScratchDir dir;
  for (const auto& [type, unused] : kBound) {
    const double bound = batch_bound(type);
    for (const auto& f : fixture_models()) {
      auto model = load_fixture(f, type, dir);
      const auto streams = streams_for(*model);
      const Difference d = max_difference(run_batched(*model, streams), run_alone(*model, streams));
      std::printf("[ measured ] %s %s batched vs alone: max |logit difference| %.3g, state (relative) %.3g\n",
                  f["name"].get<std::string>().c_str(), rwkv::dtype_name(type), d.logits, d.state);
      EXPECT_LE(d.logits, bound) << f["name"] << " " << rwkv::dtype_name(type);
      EXPECT_LE(d.state, bound) << f["name"] << " " << rwkv::dtype_name(type);
    }
  }
}

// Each sequence alone, one token at a time (Model::forward).
Outcome run_token_by_token(const rwkv::Model& model, const std::vector<std::vector<int32_t>>& streams) {
  const size_t V = model.info().n_vocab;
  Outcome out;
  for (size_t s = 0; s < kPlans.size(); ++s) {
    rwkv::State state = model.new_state();
    std::vector<float> logits(kPlans[s].length * V);
    for (size_t i = 0; i < kPlans[s].length; ++i) {
      model.forward(streams[s][i], state, std::span<float>(logits.data() + i * V, V));
    }
    out.logits.push_back(std::move(logits));
    out.states.push_back(std::move(state));
  }
  return out;
}

// Batch invariance on: what shares a batch, and how a prompt is cut into chunks, change
// no bit of a sequence's logits or state, for every version and weight type.
TEST(Batch, BatchInvarianceGivesEachSequenceExactlyItsAloneBits) {
  struct Restore {
    ~Restore() { rwkv::set_batch_invariant(false); }
  } restore;
  rwkv_test::ScratchDir dir;
  for (const auto& [type, bound] : kBound) {
    for (const auto& f : fixture_models()) {
      auto model = load_fixture(f, type, dir);
      const auto streams = streams_for(*model);
      rwkv::set_batch_invariant(true);
      const Outcome batched = run_batched(*model, streams);
      const Outcome alone = run_alone(*model, streams);
      const Outcome single = run_token_by_token(*model, streams);
      rwkv::set_batch_invariant(false);
      for (size_t s = 0; s < kPlans.size(); ++s) {
        const std::string what = f["name"].get<std::string>() + " " + rwkv::dtype_name(type) + " sequence " +
                                 std::to_string(s);
        EXPECT_TRUE(batched.logits[s] == alone.logits[s]) << what << ": batched vs alone in chunks";
        EXPECT_TRUE(batched.states[s] == alone.states[s]) << what << ": batched vs alone in chunks";
        EXPECT_TRUE(batched.logits[s] == single.logits[s]) << what << ": batched vs token by token";
        EXPECT_TRUE(batched.states[s] == single.states[s]) << what << ": batched vs token by token";
      }
      // Off, the large pass does round differently (else this test would prove nothing).
      if (type == rwkv::DType::F32) {
        EXPECT_GT(max_difference(run_batched(*model, streams), alone).logits, 0) << f["name"];
      }
    }
  }
}

// A sequence's state saved from the middle of a batch and continued alone gives what the
// sequence alone gives.
TEST(Batch, StateSavedFromABatchContinuesAlone) {
  rwkv_test::ScratchDir dir;
  for (const auto& f : fixture_models()) {
    auto model = load_fixture(f, rwkv::DType::F32, dir);
    const size_t V = model->info().n_vocab;
    const auto streams = streams_for(*model);
    const Outcome batched = run_batched(*model, streams);
    const std::string path = (dir / "saved.state").string();
    // Sequence 3 (its long prompt and three decode tokens), continued by 8 more tokens.
    rwkv::save_state(path, *model, batched.states[3]);
    rwkv::State resumed = rwkv::load_state(path, *model);
    rwkv::State alone = model->new_state();
    std::vector<float> expected(V), got(V);
    for (size_t i = 0; i < kPlans[3].length; ++i) model->forward(streams[3][i], alone, expected);
    double worst = 0;
    for (size_t i = kPlans[3].length; i < streams[3].size(); ++i) {
      model->forward(streams[3][i], alone, expected);
      model->forward(streams[3][i], resumed, got);
      for (size_t v = 0; v < V; ++v) worst = std::max(worst, std::abs(double(expected[v]) - got[v]));
    }
    EXPECT_LE(worst, 1e-5) << f["name"];
  }
}

// Batched results do not depend on the thread count, bit for bit.
TEST(Batch, SameBitsForOneAndTwoThreads) {
  rwkv_test::ScratchDir dir;
  const uint64_t saved_threshold = rwkv::min_weights_to_split();
  rwkv::set_min_weights_to_split(0);  // the fixtures are tiny: split every product
  struct Restore {
    uint64_t value;
    ~Restore() { rwkv::set_min_weights_to_split(value); }
  } restore{saved_threshold};
  for (const rwkv::DType type : {rwkv::DType::F32, rwkv::DType::F16, rwkv::DType::Q8_0}) {
    for (const auto& f : fixture_models()) {
      auto model = load_fixture(f, type, dir);
      const auto streams = streams_for(*model);
      auto with_threads = [&](unsigned threads) {
        rwkv::ThreadPool pool(threads);
        rwkv::KernelPoolOverride use(pool);
        return run_batched(*model, streams);
      };
      const Outcome one = with_threads(1), two = with_threads(2);
      for (size_t s = 0; s < kPlans.size(); ++s) {
        EXPECT_EQ(one.logits[s], two.logits[s]) << f["name"] << " " << rwkv::dtype_name(type) << " sequence " << s;
        EXPECT_EQ(one.states[s], two.states[s]) << f["name"] << " " << rwkv::dtype_name(type) << " sequence " << s;
      }
    }
  }
}

// Decoding in small batches (up to exact_batch_limit sequences) gives each sequence the
// logits and state it gets alone, bit for bit, in every weight type: what a server needs
// so that a greedy request's reply does not depend on who else is being served.
TEST(Batch, SmallDecodeBatchesGiveEachSequenceItsOwnBits) {
  rwkv_test::ScratchDir dir;
  for (const rwkv::DType type :
       {rwkv::DType::F32, rwkv::DType::F16, rwkv::DType::BF16, rwkv::DType::Q8_0, rwkv::DType::Q4_S}) {
    for (const auto& f : fixture_models()) {
      auto model = load_fixture(f, type, dir);
      // The smallest limit of the model's matrices (a q4_s model keeps a q8_0 head, v7
      // its small LoRA matrices in f32).
      uint32_t B = rwkv::exact_batch_limit(type);
      for (const rwkv::TensorInfo& t : model->tensors()) {
        if (t.shape.size() == 2) B = std::min(B, rwkv::exact_batch_limit(rwkv::parse_dtype(t.dtype)));
      }
      ASSERT_GE(B, 2u);
      const size_t V = model->info().n_vocab;
      constexpr size_t kSteps = 6;
      std::vector<std::vector<int32_t>> streams;
      for (uint32_t s = 0; s < B; ++s) streams.push_back(tokens_for(100 + s, kSteps, model->info().n_vocab));
      std::vector<rwkv::State> batched(B, model->new_state()), alone(B, model->new_state());
      std::vector<float> batched_logits(B * V), alone_logits(V);
      for (size_t step = 0; step < kSteps; ++step) {
        std::vector<rwkv::BatchItem> items;
        for (uint32_t s = 0; s < B; ++s) {
          items.push_back({std::span<const int32_t>(&streams[s][step], 1), &batched[s],
                           std::span<float>(batched_logits.data() + s * V, V)});
        }
        model->forward_batch(items);
        for (uint32_t s = 0; s < B; ++s) {
          model->forward(streams[s][step], alone[s], alone_logits);
          ASSERT_TRUE(std::equal(alone_logits.begin(), alone_logits.end(), batched_logits.begin() + s * V))
              << f["name"] << " " << rwkv::dtype_name(type) << " sequence " << s << " step " << step;
        }
      }
      for (uint32_t s = 0; s < B; ++s) EXPECT_EQ(batched[s], alone[s]) << f["name"] << " " << rwkv::dtype_name(type);
    }
  }
}

TEST(Batch, BadItemsChangeNoState) {
  rwkv_test::ScratchDir dir;
  auto model = load_fixture(fixture_models()[0], rwkv::DType::F32, dir);
  const size_t V = model->info().n_vocab;
  rwkv::State a = model->new_state(), b = model->new_state();
  const std::vector<int32_t> warm = {1, 2, 3};
  model->forward_sequence(warm, a, {});
  const rwkv::State a_before = a, b_before = b;
  const std::vector<int32_t> one = {4}, bad = {static_cast<int32_t>(V)};
  std::vector<float> logits(V), odd(V + 1);
  auto expect_error = [&](std::vector<rwkv::BatchItem> items, const char* what) {
    try {
      model->forward_batch(items);
      ADD_FAILURE() << "no error for " << what;
    } catch (const rwkv::Error& e) {
      EXPECT_NE(std::string(e.what()), "") << what;
    }
    EXPECT_EQ(a, a_before) << what;
    EXPECT_EQ(b, b_before) << what;
  };
  expect_error({{one, &a, logits}, {one, &a, {}}}, "two items with one state");
  expect_error({{one, &a, logits}, {bad, &b, {}}}, "a token out of range");
  expect_error({{one, &a, logits}, {one, &b, odd}}, "a logits buffer of the wrong size");
  expect_error({{one, &a, logits}, {one, nullptr, {}}}, "no state");
  rwkv::State foreign;
  foreign.n_layer = 1;
  foreign.floats_per_layer = 3;
  foreign.data.assign(3, 0.0f);
  expect_error({{one, &a, logits}, {one, &foreign, {}}}, "a state of another shape");
  // An empty batch, and an item with no tokens, do nothing.
  EXPECT_NO_THROW(model->forward_batch({}));
  const std::vector<rwkv::BatchItem> idle = {{{}, &a, {}}};
  EXPECT_NO_THROW(model->forward_batch(idle));
  EXPECT_EQ(a, a_before);
}

// Weights packed as panels at load (q8_0 and q4_s as int8 panels at the VNNI level, f16
// as f16 panels at the AVX-512 levels), against the same file with RWKV_REPACK=0 (the
// file's rows, the row kernels), token by token: each product differs only in the order
// of its float additions (KernelInt8Panels and KernelF16Panels have the products bit for
// bit). For the block types, where that moves an activation across an int8 rounding
// boundary the next layer's product moves by a quantization step, which the tiny random
// fixtures amplify (measured 1.9e-6 to 0.16, AMD Zen 5): held to the bound that
// block-type batches have for the same reason; f16 to its batch bound. A model packed for
// one level refuses, naming the level, kernels that cannot read it.
TEST(Batch, TypesPackedAtLoadGiveWhatTheRowsGive) {
  rwkv_test::ScratchDir dir;
  bool any = false;
  for (const rwkv::DType type : {rwkv::DType::Q8_0, rwkv::DType::Q4_S, rwkv::DType::F16})
  for (const auto& f : fixture_models()) {
    if (!rwkv::packing_for_kernels(type)) continue;
    any = true;
    auto packed = load_fixture(f, type, dir);
    ::setenv("RWKV_REPACK", "0", 1);
    auto rows = load_fixture(f, type, dir);
    ::unsetenv("RWKV_REPACK");
    const auto streams = streams_for(*packed);
    const Difference d = max_difference(run_token_by_token(*packed, streams), run_token_by_token(*rows, streams));
    std::printf("[ measured ] %s %s packed vs rows: max |logit difference| %.3g\n",
                f["name"].get<std::string>().c_str(), rwkv::dtype_name(type), d.logits);
    EXPECT_LE(d.logits, kBound.at(type)) << f["name"] << " " << rwkv::dtype_name(type);
    EXPECT_GT(d.logits, 0.0) << f["name"] << " " << rwkv::dtype_name(type) << ": the rows' kernels did not run";
  }
  if (!any) GTEST_SKIP() << "the kernels in use keep every type in rows";
  for (const rwkv::DType type : {rwkv::DType::Q8_0, rwkv::DType::F16}) {
    if (!rwkv::packing_for_kernels(type)) continue;
    auto model = load_fixture(fixture_models()[0], type, dir);
    rwkv::ScopedKernels scalar(rwkv::IsaLevel::Scalar);
    rwkv::State state = model->new_state();
    std::vector<float> logits(model->info().n_vocab);
    try {
      model->forward(1, state, logits);
      ADD_FAILURE() << "no error for " << rwkv::dtype_name(type) << " panels read by the scalar kernels";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("scalar"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
