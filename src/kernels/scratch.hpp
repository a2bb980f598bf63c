// Per-thread scratch memory for the kernels. Kernel sources are compiled once per
// instruction-set level (kernels/isa.hpp) and must not instantiate std:: templates out
// of line: the linker keeps one copy of each such function for the whole program, and
// a copy compiled for AVX-512 would then run on machines without it. So the kernels
// take their buffers from here, compiled once for the baseline.
#pragma once

#include <cstddef>

namespace rwkv {

// Which buffer: a thread may hold each at once.
// PaddedRows: the last panel of a GEMM copied with its missing rows repeated.
enum class ScratchSlot : unsigned { Panel, Transposed, Tokens, Activations, PaddedRows, Count };

// At least `bytes` bytes, 64-byte aligned, owned by the calling thread; valid until the
// same thread asks for the same slot again (contents are not kept when it grows).
void* thread_scratch(ScratchSlot slot, size_t bytes);

}  // namespace rwkv
