// The per-head state updates of the RWKV recurrences, vectorized. What they compute
// is defined with each version in src/arch; these only make one head's step fast.
#pragma once

#include <cstdint>

namespace rwkv {

// One token's RWKV-7 step for one head of size N, with its state S [N(value), N(key)]:
//   S ← S·diag(w) − (S kk)(kk ⊙ a)ᵀ + v kᵀ,   y = S r.
// Every argument but S and y points at the head's N values.
void wkv7_head_step(const float* r, const float* w, const float* k, const float* v, const float* kk,
                    const float* a, float* S, float* y, uint32_t N);

}  // namespace rwkv
