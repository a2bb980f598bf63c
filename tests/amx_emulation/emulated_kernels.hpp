// The amx level's GEMMs compiled on emulated tiles (emulated_bf16.cpp, emulated_int8.cpp;
// namespace isa_amx_emulated), and the AVX-512 VNNI level's bf16 token packer they read
// from. Declared by hand: the kernel headers declare them in their own level's namespace.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/matvec.hpp"

namespace rwkv::isa_amx_emulated {
void matmat_rows_bf16_amx(const MatrixRef& w, const uint16_t* packed, uint32_t n_tokens, float* Y,
                          uint32_t row_begin, uint32_t row_end, bool squared_relu);
size_t amx_q8_0_tokens_bytes(uint32_t n_tokens, uint32_t cols);
void pack_amx_q8_0_tokens(const float* X, uint32_t n_tokens, uint32_t cols, uint32_t token_begin, uint32_t token_end,
                          std::byte* packed);
void matmat_rows_amx_q8_0(const MatrixRef& w, const std::byte* packed, uint32_t n_tokens, float* Y,
                          uint32_t row_begin, uint32_t row_end, bool squared_relu);
}  // namespace rwkv::isa_amx_emulated

namespace rwkv::isa_avx512_vnni {
size_t bf16_tokens_values(uint32_t n_tokens, uint32_t cols);
void pack_bf16_tokens(const float* X, uint32_t n_tokens, uint32_t cols, uint32_t token_begin, uint32_t token_end,
                      uint16_t* packed);
}  // namespace rwkv::isa_avx512_vnni
