// The AMX tile instructions that the amx level's kernels use, emulated in plain code, so
// that a machine without AMX (this project's AMD machines, most CI runners) tests those
// kernels' layouts, edges and arithmetic too. Included by emulated_*.cpp after
// <immintrin.h> and before a kernel source: the intrinsic names are redirected here and
// __AMX_TILE__ and friends defined, so the kernel compiles as at the amx level.
//
// Semantics, as Intel's architecture manual gives them: ldtilecfg sets each tile's rows
// and bytes per row and zeroes every tile; tileloadd / tilestored move `rows` rows of
// `colsb` bytes with the given stride; tdpbssd adds to each int32 of C the four products
// of signed bytes of A's row and B's column; tdpbf16ps adds the two products of bf16
// pairs to each float of C (here in float32, in pair order).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

struct EmulatedTile {
  uint8_t bytes[16][64];
  int rows;
  int colsb;
};

thread_local EmulatedTile g_tiles[8];
thread_local bool g_tiles_configured = false;

void emulated_loadconfig(const void* config) {
  const auto* c = static_cast<const uint8_t*>(config);
  for (int i = 0; i < 8; ++i) {
    uint16_t colsb;
    std::memcpy(&colsb, c + 16 + 2 * i, sizeof(colsb));
    g_tiles[i].colsb = colsb;
    g_tiles[i].rows = c[48 + i];
    std::memset(g_tiles[i].bytes, 0, sizeof(g_tiles[i].bytes));
  }
  g_tiles_configured = true;
}

void emulated_release() { g_tiles_configured = false; }

EmulatedTile& configured_tile(int t) {
  if (!g_tiles_configured) std::abort();  // as the processor faults on a tile op without a configuration
  return g_tiles[t];
}

void emulated_loadd(int t, const void* base, long stride) {
  EmulatedTile& tile = configured_tile(t);
  for (int r = 0; r < tile.rows; ++r) {
    std::memcpy(tile.bytes[r], static_cast<const uint8_t*>(base) + r * stride, tile.colsb);
  }
}

void emulated_stored(int t, void* base, long stride) {
  const EmulatedTile& tile = configured_tile(t);
  for (int r = 0; r < tile.rows; ++r) std::memcpy(static_cast<uint8_t*>(base) + r * stride, tile.bytes[r], tile.colsb);
}

void emulated_zero(int t) { std::memset(configured_tile(t).bytes, 0, sizeof(g_tiles[t].bytes)); }

template <typename T>
T lane(const EmulatedTile& tile, int row, int byte) {
  T v;
  std::memcpy(&v, &tile.bytes[row][byte], sizeof(T));
  return v;
}

float bf16_value(uint16_t bits) {
  const uint32_t widened = uint32_t(bits) << 16;
  float f;
  std::memcpy(&f, &widened, sizeof(f));
  return f;
}

[[maybe_unused]] void emulated_dpbssd(int c, int a, int b) {
  EmulatedTile& C = configured_tile(c);
  const EmulatedTile& A = configured_tile(a);
  const EmulatedTile& B = configured_tile(b);
  for (int m = 0; m < C.rows; ++m) {
    for (int n = 0; n < C.colsb / 4; ++n) {
      int32_t sum = lane<int32_t>(C, m, 4 * n);
      for (int k = 0; k < A.colsb / 4; ++k) {
        for (int i = 0; i < 4; ++i) sum += int32_t(lane<int8_t>(A, m, 4 * k + i)) * lane<int8_t>(B, k, 4 * n + i);
      }
      std::memcpy(&C.bytes[m][4 * n], &sum, sizeof(sum));
    }
  }
}

[[maybe_unused]] void emulated_dpbf16ps(int c, int a, int b) {
  EmulatedTile& C = configured_tile(c);
  const EmulatedTile& A = configured_tile(a);
  const EmulatedTile& B = configured_tile(b);
  for (int m = 0; m < C.rows; ++m) {
    for (int n = 0; n < C.colsb / 4; ++n) {
      float sum = lane<float>(C, m, 4 * n);
      for (int k = 0; k < A.colsb / 4; ++k) {
        for (int i = 0; i < 2; ++i) {
          sum += bf16_value(lane<uint16_t>(A, m, 4 * k + 2 * i)) * bf16_value(lane<uint16_t>(B, k, 4 * n + 2 * i));
        }
      }
      std::memcpy(&C.bytes[m][4 * n], &sum, sizeof(sum));
    }
  }
}

}  // namespace

#undef _tile_loadd
#undef _tile_stored
#undef _tile_zero
#undef _tile_dpbssd
#undef _tile_dpbf16ps
#define _tile_loadconfig(config) emulated_loadconfig(config)
#define _tile_release() emulated_release()
#define _tile_loadd(t, base, stride) emulated_loadd(t, base, stride)
#define _tile_stored(t, base, stride) emulated_stored(t, base, stride)
#define _tile_zero(t) emulated_zero(t)
#define _tile_dpbssd(c, a, b) emulated_dpbssd(c, a, b)
#define _tile_dpbf16ps(c, a, b) emulated_dpbf16ps(c, a, b)
#define __AMX_TILE__ 1
#define __AMX_INT8__ 1
#define __AMX_BF16__ 1
