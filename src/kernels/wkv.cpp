#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/matvec_rows.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

constexpr uint32_t kRowsAtOnce = 4;

#ifdef RWKV_HAVE_AVX2
// The sums of the eight lanes of a, b, c and d, in that order.
__m128 sum_lanes_of_four(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 ab = _mm256_hadd_ps(a, b);
  const __m256 cd = _mm256_hadd_ps(c, d);
  const __m256 abcd = _mm256_hadd_ps(ab, cd);
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}
#endif

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

void wkv5_head_step(const float* r, const float* k, const float* v, const float* w, const float* u, float* S,
                    float* y, uint32_t N) {
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

void wkv7_head_step(const float* r, const float* w, const float* k, const float* v, const float* kk,
                    const float* a, float* S, float* y, uint32_t N) {
#ifdef RWKV_HAVE_AVX2
  if (N % 8 == 0 && N % kRowsAtOnce == 0) {
    // Four rows at a time: their four horizontal sums share one reduction.
    for (uint32_t i = 0; i < N; i += kRowsAtOnce) {
      float* rows[kRowsAtOnce];
      __m256 removed[kRowsAtOnce];
      for (uint32_t q = 0; q < kRowsAtOnce; ++q) {
        rows[q] = S + size_t(i + q) * N;
        removed[q] = _mm256_setzero_ps();
      }
      for (uint32_t j = 0; j < N; j += 8) {
        const __m256 kkj = _mm256_loadu_ps(kk + j);
        for (uint32_t q = 0; q < kRowsAtOnce; ++q) removed[q] = _mm256_fmadd_ps(_mm256_loadu_ps(rows[q] + j), kkj, removed[q]);
      }
      alignas(16) float sa[kRowsAtOnce];
      _mm_store_ps(sa, sum_lanes_of_four(removed[0], removed[1], removed[2], removed[3]));
      __m256 out[kRowsAtOnce];
      for (uint32_t q = 0; q < kRowsAtOnce; ++q) out[q] = _mm256_setzero_ps();
      for (uint32_t j = 0; j < N; j += 8) {
        const __m256 kka = _mm256_mul_ps(_mm256_loadu_ps(kk + j), _mm256_loadu_ps(a + j));
        const __m256 kj = _mm256_loadu_ps(k + j);
        const __m256 wj = _mm256_loadu_ps(w + j);
        const __m256 rj = _mm256_loadu_ps(r + j);
        for (uint32_t q = 0; q < kRowsAtOnce; ++q) {
          // row ← row·w − sa·(kk⊙a) + v_i·k
          const __m256 added = _mm256_fmsub_ps(_mm256_set1_ps(v[i + q]), kj, _mm256_mul_ps(_mm256_set1_ps(sa[q]), kka));
          const __m256 s = _mm256_fmadd_ps(_mm256_loadu_ps(rows[q] + j), wj, added);
          _mm256_storeu_ps(rows[q] + j, s);
          out[q] = _mm256_fmadd_ps(s, rj, out[q]);
        }
      }
      _mm_storeu_ps(y + i, sum_lanes_of_four(out[0], out[1], out[2], out[3]));
    }
    return;
  }
#endif
  for (uint32_t i = 0; i < N; ++i) {
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

}  // namespace rwkv::RWKV_KERNEL_NS
