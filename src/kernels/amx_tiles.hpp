// The AMX tile configuration (ldtilecfg, palette 1) and helpers shared by the amx
// level's kernels and its peak probes (compiled only where the compiler targets AMX).
#pragma once

#if defined(__AMX_TILE__)

#include <immintrin.h>

#include <cstdint>

namespace rwkv::RWKV_KERNEL_NS {

struct alignas(64) AmxTileConfig {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t bytes_per_row[16];
  uint8_t rows[16];
};
static_assert(sizeof(AmxTileConfig) == 64);

// Every tile 16 rows × 64 bytes. Configurations live in read-only memory: the
// intrinsic's asm names only the first 8 bytes of its operand, so one built on the stack
// could be incomplete when ldtilecfg reads it.
constexpr AmxTileConfig kAmxTiles16x64 = {1, 0, {}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

// For a peak loop: the 16 × 64 configuration, tmm4-7 loaded from one 1 KiB operand and
// tmm0-3 zeroed. The tile loads' asm names no memory operand: the operand is forced to
// memory first.
[[gnu::always_inline]] inline void start_peak_tiles(const void* operand) {
  __asm__ volatile("" ::: "memory");
  _tile_loadconfig(&kAmxTiles16x64);
  _tile_loadd(4, operand, 64);
  _tile_loadd(5, operand, 64);
  _tile_loadd(6, operand, 64);
  _tile_loadd(7, operand, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
}

}  // namespace rwkv::RWKV_KERNEL_NS

#endif
