#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/matvec_rows.hpp"

namespace rwkv::RWKV_KERNEL_NS {

namespace {

constexpr uint32_t kRowsAtOnce = 4;
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
  using V = FloatVec;
  if (N % V::kWidth == 0 && N % kRowsAtOnce == 0 && N <= kMaxVectorHead) {
    // kk ⊙ a once for all rows, then four rows at a time.
    alignas(64) float kka_row[kMaxVectorHead];
    for (uint32_t j = 0; j < N; j += V::kWidth) V::store(kka_row + j, V::mul(V::load(kk + j), V::load(a + j)));
    for (uint32_t i = 0; i < N; i += kRowsAtOnce) {
      float* rows[kRowsAtOnce];
      V::T removed[kRowsAtOnce];
      for (uint32_t q = 0; q < kRowsAtOnce; ++q) {
        rows[q] = S + size_t(i + q) * N;
        removed[q] = V::zero();
      }
      for (uint32_t j = 0; j < N; j += V::kWidth) {
        const V::T kkj = V::load(kk + j);
        for (uint32_t q = 0; q < kRowsAtOnce; ++q) removed[q] = V::fma(V::load(rows[q] + j), kkj, removed[q]);
      }
      float sa[kRowsAtOnce];
      for (uint32_t q = 0; q < kRowsAtOnce; ++q) sa[q] = V::sum(removed[q]);
      V::T out[kRowsAtOnce];
      for (uint32_t q = 0; q < kRowsAtOnce; ++q) out[q] = V::zero();
      for (uint32_t j = 0; j < N; j += V::kWidth) {
        const V::T kka = V::load(kka_row + j);
        const V::T kj = V::load(k + j);
        const V::T wj = V::load(w + j);
        const V::T rj = V::load(r + j);
        for (uint32_t q = 0; q < kRowsAtOnce; ++q) {
          // row ← row·w − sa·(kk⊙a) + v_i·k
          const V::T added = V::fms(V::broadcast(v[i + q]), kj, V::mul(V::broadcast(sa[q]), kka));
          const V::T s = V::fma(V::load(rows[q] + j), wj, added);
          V::store(rows[q] + j, s);
          out[q] = V::fma(s, rj, out[q]);
        }
      }
      for (uint32_t q = 0; q < kRowsAtOnce; ++q) y[i + q] = V::sum(out[q]);
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
