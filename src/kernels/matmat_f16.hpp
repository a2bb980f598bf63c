// float16 weights stored as panels (WeightLayout::F16Panels, quant_blocks.hpp) on the
// AVX-512 FMA: the rearranging a model does once at load, and Y = X Wᵀ for any number of
// tokens, one token (decoding) included.
//
// Each output is one chain of multiply-adds in column order (fma(w, x, sum)), whatever
// the number of tokens or the split of rows, so a sequence gets the same bits alone, in
// a batch of any size and in a prompt chunk. The tile widens 16 weights with one
// vcvtph2ps for as many tokens as it multiplies, straight from the stored panel, reads
// the tokens where they are (no packing) and writes Y's rows in place (no transposes):
// the row-major GEMM widened every panel into a buffer and transposed tokens in and
// results out, about a fifth of a 0.1B f16 prompt chunk.
//
// Only the AVX-512 levels have these functions; elsewhere this header declares nothing
// and float16 weights keep their rows.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/matvec.hpp"
#include "kernels/simd.hpp"

#ifdef RWKV_HAVE_AVX512

namespace rwkv::RWKV_KERNEL_NS {

// Panels [panel_begin, panel_end) of w (float16 rows) into `out`, the start of the
// matrix's panels (f16_panels_bytes(w.rows, w.cols) bytes in all).
void pack_f16_panels(const MatrixRef& w, uint32_t panel_begin, uint32_t panel_end, std::byte* out);

// Y[t, r] = W[r, :] · X[t, :] for r in [begin, end) and t < n_tokens (X: n_tokens × cols,
// Y: n_tokens × rows, row-major), then max(Y, 0)² when squared_relu. begin is a multiple
// of kF16PanelRows; end is one too or w.rows.
void matmat_rows_f16_panels(const MatrixRef& w, const float* X, uint32_t n_tokens, float* Y, uint32_t begin,
                            uint32_t end, bool squared_relu);

}  // namespace rwkv::RWKV_KERNEL_NS

#endif
