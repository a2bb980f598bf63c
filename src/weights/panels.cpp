#include "weights/panels.hpp"

#include <cstdlib>
#include <cstring>

#include "kernels/isa.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/thread_pool.hpp"

namespace rwkv {

namespace {

MatrixRef rows_of(const NativeTensor& t) {
  return MatrixRef{t.dtype, static_cast<uint32_t>(t.shape[0]), static_cast<uint32_t>(t.shape[1]), t.data};
}

bool packed_form(const NativeTensor& t, std::string_view embedding) {
  return (t.dtype == DType::Q8_0 || t.dtype == DType::Q4_S) && t.shape.size() == 2 && t.name != embedding &&
         t.layout == WeightLayout::Rows;
}

}  // namespace

bool packing_for_kernels() {
  const char* repack = std::getenv("RWKV_REPACK");
  return kernels().pack_int8_panels != nullptr && !(repack != nullptr && std::strcmp(repack, "0") == 0);
}

void pack_for_kernels(NativeFile& file, std::string_view embedding) {
  if (!packing_for_kernels()) return;
  size_t total = 0;
  for (const NativeTensor& t : file.tensors) {
    if (packed_form(t, embedding)) total += int8_panels_bytes(t.dtype, rows_of(t).rows, rows_of(t).cols);
  }
  if (total == 0) return;
  file.packed = AnonymousMemory(total, file.file.path() + "'s weights packed as int8 panels");
  const KernelSet& k = kernels();
  size_t at = 0;
  for (NativeTensor& t : file.tensors) {
    if (!packed_form(t, embedding)) continue;
    const MatrixRef rows = rows_of(t);
    std::byte* out = file.packed.data() + at;
    const uint32_t n_panels = (rows.rows + kInt8PanelRows - 1) / kInt8PanelRows;
    parallel_for(n_panels, 1, [&](uint32_t begin, uint32_t end) { k.pack_int8_panels(rows, begin, end, out); });
    file.file.drop_pages(t.data, t.bytes);
    t.data = out;
    t.layout = WeightLayout::Int8Panels;
    at += int8_panels_bytes(t.dtype, rows.rows, rows.cols);
  }
}

}  // namespace rwkv
