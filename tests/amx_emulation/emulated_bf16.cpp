// The amx level's bf16 GEMM on emulated tiles (tile_emulator.hpp), in the namespace
// RWKV_KERNEL_NS = isa_amx_emulated (tests/CMakeLists: the avx512_vnni flags with
// AVX512_BF16).
#include "amx_emulation/tile_emulator.hpp"
#include "kernels/matmat_bf16_amx.cpp"
