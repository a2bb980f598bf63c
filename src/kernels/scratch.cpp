#include "kernels/scratch.hpp"

#include <algorithm>
#include <cstdlib>
#include <new>

namespace rwkv {

namespace {

constexpr size_t kAlignment = 64;

struct Buffer {
  void* data = nullptr;
  size_t bytes = 0;
  ~Buffer() { std::free(data); }
};

thread_local Buffer g_buffers[static_cast<unsigned>(ScratchSlot::Count)];

}  // namespace

void* thread_scratch(ScratchSlot slot, size_t bytes) {
  Buffer& b = g_buffers[static_cast<unsigned>(slot)];
  if (bytes > b.bytes || b.data == nullptr) {
    // Grow by half again so that slowly rising sizes do not reallocate every call.
    const size_t wanted = std::max(bytes, b.bytes + b.bytes / 2);
    const size_t rounded = (std::max<size_t>(wanted, 1) + kAlignment - 1) / kAlignment * kAlignment;
    void* fresh = std::aligned_alloc(kAlignment, rounded);
    if (fresh == nullptr) throw std::bad_alloc();
    std::free(b.data);
    b.data = fresh;
    b.bytes = rounded;
  }
  return b.data;
}

}  // namespace rwkv
