// Product matrices rearranged once at load into the layout that the kernels in use
// multiply fastest (quant_blocks.hpp). Today: q8_0 and q4_s as int8 panels at the AVX-512
// VNNI level (a batch or a prompt chunk otherwise rearranges every matrix on every
// product, about a fifth of a batch-16 step of the 1.5B shape, and the one-token kernel
// on panels needs no horizontal sums); f16 as f16 panels at the AVX-512 levels (the FMA
// tile widens them in place, reads the tokens and writes the results where they are).
#pragma once

#include <string_view>

#include "weights/format.hpp"

namespace rwkv {

// Packs each matrix of `file` except `embedding` (read by rows, never multiplied) whose
// type the kernels in use have a packed form for and the environment variable RWKV_REPACK is
// not "0": the tensor's data then points into file.packed and its layout says how it is
// arranged, and the file's own pages of it are dropped from memory. Otherwise nothing
// changes. The packing is spread over kernel_pool().
void pack_for_kernels(NativeFile& file, std::string_view embedding);

// Whether pack_for_kernels packs matrices of `type` with the kernels in use and this environment.
bool packing_for_kernels(DType type);

}  // namespace rwkv
