// Finding NaN and infinity in stored weights, so that a damaged or hand-made model file
// is refused at load instead of turning every logit into NaN.
#pragma once

#include <cstdint>

#include "kernels/dtype.hpp"

namespace rwkv {

inline constexpr uint64_t kAllFinite = UINT64_MAX;

// `bytes` bytes of stored values of type `t`. Returns kAllFinite, or the index of the
// first bad element (f32, f16, bf16) or block (q8_0: its scale; q4_s: a step whose
// largest value, 255 * 15 scale steps or 128 minimum steps, is not finite).
uint64_t find_non_finite(DType t, const void* data, uint64_t bytes);

}  // namespace rwkv
