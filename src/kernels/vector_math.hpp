// Elementwise exp and sigmoid over arrays, vectorized: the per-channel activations
// of a block (decays, gates, learning rates) would otherwise be scalar libm calls.
#pragma once

#include <cstddef>
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
// The token shift's mix of each token's channels with the previous token's, for i < n:
// token_shift_mix: out[i] = cur[i] + (prev[i] − cur[i]) · mix[i] (RWKV-5.2 and later);
// token_shift_blend: out[i] = cur[i] · mix[i] + prev[i] · (1 − mix[i]) (RWKV-4, 5.0 and
// 5.1 write it so). Done per token and channel in sequence mode, where a scalar loop cost
// 5% of a 0.1B prefill.
void token_shift_mix(const float* cur, const float* prev, const float* mix, float* out, uint32_t n);
void token_shift_blend(const float* cur, const float* prev, const float* mix, float* out, uint32_t n);
// x[i] += y[i], and x[i] += a[i] · b[i], for i < n.
void add_inplace(float* x, const float* y, size_t n);
void add_product(float* x, const float* a, const float* b, size_t n);

}  // namespace rwkv
