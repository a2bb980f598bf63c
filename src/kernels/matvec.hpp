// Matrix-vector products over stored weights, and the small vector ops of a block.
// Nothing here knows a tensor name or a model version.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "kernels/dtype.hpp"

namespace rwkv {

// How a matrix's bytes are arranged.
enum class WeightLayout : uint8_t {
  Rows,        // row after row, as the file stores them
  Int8Panels,  // q8_0 and q4_s: panels of 32 rows for the int8 dot-product kernels (quant_blocks.hpp)
  F16Panels,   // f16: panels of 32 rows, column after column, for the AVX-512 FMA (quant_blocks.hpp)
};

// A [rows, cols] matrix, used as y = W x (cols inputs, rows outputs); row-major unless
// `layout` says otherwise.
struct MatrixRef {
  DType dtype = DType::F32;
  uint32_t rows = 0;
  uint32_t cols = 0;
  const void* data = nullptr;
  // Products keep their float32 activations (no bf16 rounding of the tokens): set for the
  // small, sensitive low-rank matrices that a checkpoint's bf16 values are stored as.
  bool float_activations = false;
  WeightLayout layout = WeightLayout::Rows;
};

// y[r] = sum_c W[r, c] * x[c], for r in [0, rows). Rows are split over kernel_pool().
void matvec(const MatrixRef& w, const float* x, float* y);

// One product of a batch: y = W x (or, for several tokens, Y = X Wᵀ as in matmat).
struct Product {
  MatrixRef w;
  const float* x = nullptr;
  float* y = nullptr;
};

// Independent products (none reads another's output) in one hand-off to the pool when
// n_tokens is 1: decoding runs a dozen small products per layer, and each hand-off costs
// about as much as reading 20 KiB of weights. For more tokens, matmat for each.
void matmat_each(std::initializer_list<Product> products, uint32_t n_tokens);

// Y[t, :] = W X[t, :] for n_tokens tokens at once (sequence mode): X is [n_tokens, cols],
// Y [n_tokens, rows], both row-major. Reads W once for all tokens.
void matmat(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens);
// The same followed by Y ← max(Y, 0)², the channel mix's activation, applied while each
// part of Y is still in cache.
void matmat_squared_relu(const MatrixRef& w, const float* X, float* Y, uint32_t n_tokens);

// Up to this many tokens (2 for the float types, 4 for q8_0, 8 for q4_s), matmat gives each token the one-token product
// (matvec) for it, bit for bit: each row is read once and dotted with every token in
// turn (block types with each token's activation rounded to int8, as matvec does). So a
// sequence decoded in a small batch gets exactly the logits it gets alone. More tokens
// multiply widened float32 weights (faster there; equal within float32 rounding).
// Weights stored as panels (WeightLayout::Int8Panels, F16Panels) give every token its
// one-token bits at any number of tokens.
uint32_t exact_batch_limit(DType type);

// Products with fewer weights (rows × cols × tokens) run on the calling thread, where
// handing them to the pool would cost more than it saves. Tests lower it so that even
// tiny fixture models exercise the split.
uint64_t min_weights_to_split();
void set_min_weights_to_split(uint64_t n_weights);

// Converts rows [row_begin, row_end) of W to float32, row-major, into out (cols values
// per row: the padding of block types is dropped).
void dequantize_rows(const MatrixRef& w, uint32_t row_begin, uint32_t row_end, float* out);

// out = row `index` of W as float32 (for embeddings).
void copy_row(const MatrixRef& w, uint32_t index, float* out);

// LayerNorm over n values (biased variance), eps inside the square root.
void layer_norm(const float* x, const float* weight, const float* bias, float* out, uint32_t n, float eps);

// GroupNorm over n_groups contiguous groups of `group_size`, in place, then the per-channel affine.
void group_norm(float* x, const float* weight, const float* bias, uint32_t n_groups, uint32_t group_size, float eps);

}  // namespace rwkv
