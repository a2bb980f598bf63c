#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/gcc12_avx512_warnings.hpp"
#include "kernels/matvec_rows.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

[[maybe_unused]] constexpr uint32_t kRowsAtOnce = 4;  // unused where the scalar path alone is built
// The widest head the vector path keeps kk ⊙ a on the stack for (released models: 64).
[[maybe_unused]] constexpr uint32_t kMaxVectorHead = 256;

}  // namespace

void wkv4_step(const float* k, const float* v, const float* log_decay, const float* bonus, float* aa, float* bb,
               float* pp, float* wkv, uint32_t C) {
  for (uint32_t c = 0; c < C; ++c) {
    float ww = bonus[c] + k[c];
    float q = std::max(pp[c], ww);
    float e1 = std::exp(pp[c] - q);
    float e2 = std::exp(ww - q);
    wkv[c] = (e1 * aa[c] + e2 * v[c]) / (e1 * bb[c] + e2);
    ww = log_decay[c] + pp[c];
    q = std::max(ww, k[c]);
    e1 = std::exp(ww - q);
    e2 = std::exp(k[c] - q);
    aa[c] = e1 * aa[c] + e2 * v[c];
    bb[c] = e1 * bb[c] + e2;
    pp[c] = q;
  }
}

#ifdef RWKV_HAVE_AVX2
namespace {

// wkv5_head_step for the released models' head size: y stays in registers, in two sets
// of partial sums (even and odd rows), so that each row's adds wait on the row before
// last rather than on a store and reload of y.
void wkv5_head_step_64(const float* r, const float* k, const float* v, const float* w, const float* u, float* S,
                       float* y) {
  using V = FloatVec;
  constexpr uint32_t N = 64, kVectors = N / V::kWidth;
  V::T values[kVectors], even[kVectors], odd[kVectors];
  for (uint32_t c = 0; c < kVectors; ++c) {
    values[c] = V::load(v + c * V::kWidth);
    even[c] = V::zero();
    odd[c] = V::zero();
  }
  const auto row_step = [&](uint32_t i, V::T (&sums)[kVectors]) {
    const V::T ki = V::broadcast(k[i]), ri = V::broadcast(r[i]), ui = V::broadcast(u[i]), wi = V::broadcast(w[i]);
    float* row = S + size_t(i) * N;
    for (uint32_t c = 0; c < kVectors; ++c) {
      const V::T old = V::load(row + c * V::kWidth);
      const V::T kv = V::mul(ki, values[c]);
      sums[c] = V::fma(ri, V::fma(ui, kv, old), sums[c]);
      V::store(row + c * V::kWidth, V::fma(wi, old, kv));
    }
  };
  for (uint32_t i = 0; i < N; i += 2) {
    row_step(i, even);
    row_step(i + 1, odd);
  }
  for (uint32_t c = 0; c < kVectors; ++c) V::store(y + c * V::kWidth, V::add(even[c], odd[c]));
}

}  // namespace
#endif

void wkv5_head_step(const float* r, const float* k, const float* v, const float* w, const float* u, float* S,
                    float* y, uint32_t N) {
#ifdef RWKV_HAVE_AVX2
  if (N == 64) {
    wkv5_head_step_64(r, k, v, w, u, S, y);
    return;
  }
#endif
  std::fill(y, y + N, 0.0f);
  for (uint32_t i = 0; i < N; ++i) {
    const float ki = k[i];
    const float ri = r[i];
    const float ui = u[i];
    const float wi = w[i];
    float* row = S + size_t(i) * N;
    for (uint32_t j = 0; j < N; ++j) {
      const float a = ki * v[j];
      y[j] += ri * (ui * a + row[j]);
      row[j] = a + wi * row[j];
    }
  }
}

#ifdef RWKV_HAVE_AVX2
namespace {

static_assert(kRowsAtOnce == 4);
// The lane sums of four rows' vectors at once (a horizontal sum per vector costs as many
// shuffles again): sums_of_four gives a vector holding them, store_sums stores the four
// into y[0..3].
#ifdef RWKV_HAVE_AVX512
__m512 sums_of_four(__m512 v0, __m512 v1, __m512 v2, __m512 v3) {
  // Halves added: two rows a vector; then quarter q = row q's 4 partial sums; then lane 0 of
  // each quarter its whole sum.
  const __m512 a = _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x44), _mm512_shuffle_f32x4(v0, v1, 0xEE));
  const __m512 b = _mm512_add_ps(_mm512_shuffle_f32x4(v2, v3, 0x44), _mm512_shuffle_f32x4(v2, v3, 0xEE));
  const __m512 c = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
  const __m512 d = _mm512_add_ps(c, _mm512_permute_ps(c, 0xB1));
  return _mm512_add_ps(d, _mm512_permute_ps(d, 0x4E));
}
void store_sums(float* y, __m512 sums) {
  const __m512i quarters_first_lanes = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  _mm_storeu_ps(y, _mm512_castps512_ps128(_mm512_permutexvar_ps(quarters_first_lanes, sums)));
}
#else
__m256 sums_of_four(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
  return _mm256_add_ps(h, _mm256_permute2f128_ps(h, h, 0x01));  // lanes q and q + 4: row q's sum
}
void store_sums(float* y, __m256 sums) { _mm_storeu_ps(y, _mm256_castps256_ps128(sums)); }
#endif

// The vector path, for a head size known at compile time (kHead, the loops then unrolled
// whole) or, with kHead = 0, any multiple of the vector width up to kMaxVectorHead.
template <uint32_t kHead>
void wkv7_head_step_vector(const float* r, const float* w, const float* k, const float* v, const float* kk,
                           const float* a, float* S, float* y, uint32_t head_size, uint32_t rows) {
  using V = FloatVec;
  const uint32_t N = kHead != 0 ? kHead : head_size;
  // kk ⊙ a once for all rows; then every row's removal sum, then every row's update, four
  // rows at a time: the rows are independent, and two separate passes keep the sums of
  // one group of rows from waiting on the update of the one before.
  alignas(64) float kka_row[kMaxVectorHead];
  alignas(64) float removal[kMaxVectorHead];
  for (uint32_t j = 0; j < N; j += V::kWidth) V::store(kka_row + j, V::mul(V::load(kk + j), V::load(a + j)));
  for (uint32_t i = 0; i < rows; i += kRowsAtOnce) {
    const float* row = S + size_t(i) * N;
    V::T sums[kRowsAtOnce];
    for (uint32_t q = 0; q < kRowsAtOnce; ++q) sums[q] = V::zero();
    for (uint32_t j = 0; j < N; j += V::kWidth) {
      const V::T kkj = V::load(kk + j);
      for (uint32_t q = 0; q < kRowsAtOnce; ++q) sums[q] = V::fma(V::load(row + q * N + j), kkj, sums[q]);
    }
    store_sums(removal + i, sums_of_four(sums[0], sums[1], sums[2], sums[3]));
  }
  for (uint32_t i = 0; i < rows; i += kRowsAtOnce) {
    float* row = S + size_t(i) * N;
    V::T sa_row[kRowsAtOnce], v_row[kRowsAtOnce], out[kRowsAtOnce];
    for (uint32_t q = 0; q < kRowsAtOnce; ++q) {
      sa_row[q] = V::broadcast(removal[i + q]);
      v_row[q] = V::broadcast(v[i + q]);
      out[q] = V::zero();
    }
    for (uint32_t j = 0; j < N; j += V::kWidth) {
      const V::T kka = V::load(kka_row + j);
      const V::T kj = V::load(k + j);
      const V::T wj = V::load(w + j);
      const V::T rj = V::load(r + j);
      for (uint32_t q = 0; q < kRowsAtOnce; ++q) {
        // row ← row·w − sa·(kk⊙a) + v_i·k
        const V::T added = V::fms(v_row[q], kj, V::mul(sa_row[q], kka));
        const V::T s = V::fma(V::load(row + q * N + j), wj, added);
        V::store(row + q * N + j, s);
        out[q] = V::fma(s, rj, out[q]);
      }
    }
    store_sums(y + i, sums_of_four(out[0], out[1], out[2], out[3]));
  }
}

}  // namespace
#endif

void wkv7_head_step(const float* r, const float* w, const float* k, const float* v, const float* kk,
                    const float* a, float* S, float* y, uint32_t N, uint32_t rows) {
#ifdef RWKV_HAVE_AVX2
  if (rows % kRowsAtOnce == 0) {
    if (N == 64) {  // the released models' head size
      wkv7_head_step_vector<64>(r, w, k, v, kk, a, S, y, N, rows);
      return;
    }
    if (N % FloatVec::kWidth == 0 && N <= kMaxVectorHead) {
      wkv7_head_step_vector<0>(r, w, k, v, kk, a, S, y, N, rows);
      return;
    }
  }
#endif
  for (uint32_t i = 0; i < rows; ++i) {
    float* row = S + size_t(i) * N;
    float sa = 0.0f;
    for (uint32_t j = 0; j < N; ++j) sa -= row[j] * kk[j];
    float yi = 0.0f;
    const float vi = v[i];
    for (uint32_t j = 0; j < N; ++j) {
      row[j] = row[j] * w[j] + sa * kk[j] * a[j] + vi * k[j];
      yi += row[j] * r[j];
    }
    y[i] = yi;
  }
}

namespace {

// Tokens ahead whose inputs are prefetched: a step of a head's part takes a fraction of a
// microsecond, about as long as lines take to come from another core.
constexpr uint32_t kStepsAhead = 2;

// The lines of n floats from p, for reading (kWrite 0) or writing (1).
template <int kWrite>
void prefetch_floats(const float* p, uint32_t n) {
  const char* first = reinterpret_cast<const char*>(p);
  const char* last = reinterpret_cast<const char*>(p + n) - 1;
  for (const char* c = first; c <= last; c += 64) __builtin_prefetch(c, kWrite);
  __builtin_prefetch(last, kWrite);  // the last value's line, where p is not line-aligned
}

}  // namespace

void wkv7_head_steps(const float* r, const float* w, const float* k, const float* v, const float* kk,
                     const float* a, size_t stride, uint32_t n_tokens, float* S, float* y, uint32_t N, uint32_t rows) {
  for (uint32_t t = 0; t < n_tokens; ++t) {
    if (t + kStepsAhead < n_tokens) {
      const size_t ahead = size_t(t + kStepsAhead) * stride;
      prefetch_floats<0>(r + ahead, N);
      prefetch_floats<0>(w + ahead, N);
      prefetch_floats<0>(k + ahead, N);
      prefetch_floats<0>(kk + ahead, N);
      prefetch_floats<0>(a + ahead, N);
      prefetch_floats<0>(v + ahead, rows);
      prefetch_floats<1>(y + ahead, rows);
    }
    const size_t at = size_t(t) * stride;
    wkv7_head_step(r + at, w + at, k + at, v + at, kk + at, a + at, S, y + at, N, rows);
  }
}

}  // namespace rwkv::RWKV_KERNEL_NS
