// Elementwise exp and sigmoid over arrays, vectorized: the per-channel activations
// of a block (decays, gates, learning rates) would otherwise be scalar libm calls.
#pragma once

#include <cstdint>

namespace rwkv {

// x[i] = exp(x[i]) for i < n; relative error within a few float ulps (inputs below
// about -87 give about 1e-38 rather than a subnormal or zero).
void exp_inplace(float* x, uint32_t n);
// x[i] = 1 / (1 + exp(-x[i])) for i < n.
void sigmoid_inplace(float* x, uint32_t n);
// x[i] = tanh(x[i]) for i < n.
void tanh_inplace(float* x, uint32_t n);
// The sum of a[i] * b[i], and of a[i] * b[i] * c[i], for i < n, summed in vector-wide
// partial sums.
float dot(const float* a, const float* b, uint32_t n);
float dot3(const float* a, const float* b, const float* c, uint32_t n);

}  // namespace rwkv
