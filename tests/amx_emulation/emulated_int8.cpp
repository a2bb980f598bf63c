// The amx level's q8_0 GEMM on emulated tiles (tile_emulator.hpp), in the namespace
// RWKV_KERNEL_NS = isa_amx_emulated (tests/CMakeLists: the avx512_vnni flags).
#include "amx_emulation/tile_emulator.hpp"
#include "kernels/matmat_int8_amx.cpp"
