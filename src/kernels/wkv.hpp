// The WKV recurrences of every RWKV version, one token at a time: the state update
// that makes each version an RNN. Each is tested against its definition in float64
// (tests/test_kernels.cpp); src/arch calls them and knows nothing of their loops.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rwkv {

// One token's RWKV-4 step over C channels (RWKV paper, eq. 14-16; ChatRWKV `att_one`).
// With u = bonus and w = log_decay (−exp(time_decay)), the exact recurrence is
//   wkv = (A + e^(u+k) v) / (B + e^(u+k)),   A ← e^w A + e^k v,   B ← e^w B + e^k,
// kept here as aa = A e^(−pp), bb = B e^(−pp) with pp the running maximum exponent, so
// that no exponential overflows. Writes wkv (before the receptance gate).
void wkv4_step(const float* k, const float* v, const float* log_decay, const float* bonus, float* aa, float* bb,
               float* pp, float* wkv, uint32_t C);

// One token's RWKV-5/6 step for one head of size N, with its state S [N(key), N(value)]
// (ChatRWKV `att_one_v5_1`, `att_one_v6_0`):
//   y_j = Σ_i r_i (u_i k_i v_j + S_ij),   S_ij ← k_i v_j + w_i S_ij.
// Every argument but S and y points at the head's N values.
void wkv5_head_step(const float* r, const float* k, const float* v, const float* w, const float* u, float* S,
                    float* y, uint32_t N);

// One token's RWKV-7 step for one head of size N, with its state S [N(value), N(key)]:
//   S ← S·diag(w) − (S kk)(kk ⊙ a)ᵀ + v kᵀ,   y = S r.
// Row i of S reads only itself and v_i, so a head can be stepped in parts (threads beyond
// the heads): S, v and y point at the first of `rows` rows (rows ≤ N, all of them for the
// whole head); every other argument at the head's N values. Parts give the whole's bits.
void wkv7_head_step(const float* r, const float* w, const float* k, const float* v, const float* kk,
                    const float* a, float* S, float* y, uint32_t N, uint32_t rows);

// n_tokens steps of wkv7_head_step in order, token t's r, w, k, v, kk, a and y at
// `t * stride` floats past the pointers given (a prompt's rows): the same results, with
// the inputs of the tokens ahead prefetched. Other threads wrote them just before (the
// per-token work is split by tokens, the recurrence by heads). 0.1B q8_0 prefill of 512
// tokens on 2 threads (AMD EPYC Zen 5): the recurrence's time 88-103 ms against 98-108.
void wkv7_head_steps(const float* r, const float* w, const float* k, const float* v, const float* kk,
                     const float* a, size_t stride, uint32_t n_tokens, float* S, float* y, uint32_t N, uint32_t rows);

}  // namespace rwkv
