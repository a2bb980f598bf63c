// Product matrices rearranged once at load into the layout that the kernels in use
// multiply fastest. Today that is q8_0 and q4_s as int8 panels (quant_blocks.hpp) at the
// AVX-512 VNNI level: a batch or a prompt chunk otherwise rearranges every matrix on every
// product (about a fifth of a batch-16 step of the 1.5B shape), and the one-token
// kernel on panels needs no horizontal sums.
#pragma once

#include <string_view>

#include "weights/format.hpp"

namespace rwkv {

// Packs each q8_0 and q4_s matrix of `file` except `embedding` (read by rows, never multiplied)
// when the kernels in use have a packed form and the environment variable RWKV_REPACK is
// not "0": the tensor's data then points into file.packed and its layout says how it is
// arranged, and the file's own pages of it are dropped from memory. Otherwise nothing
// changes. The packing is spread over kernel_pool().
void pack_for_kernels(NativeFile& file, std::string_view embedding);

// Whether pack_for_kernels packs anything with the kernels in use and this environment.
bool packing_for_kernels();

}  // namespace rwkv
