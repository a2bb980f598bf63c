#include "weights/panels.hpp"

#include <algorithm>
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
  return packing_for_kernels(t.dtype) && t.shape.size() == 2 && t.name != embedding &&
         t.layout == WeightLayout::Rows;
}

size_t packed_bytes(const NativeTensor& t) {
  const MatrixRef rows = rows_of(t);
  return t.dtype == DType::F16 ? f16_panels_bytes(rows.rows, rows.cols)
                               : int8_panels_bytes(t.dtype, rows.rows, rows.cols);
}

}  // namespace

bool packing_for_kernels(DType type) {
  const char* repack = std::getenv("RWKV_REPACK");
  if (repack != nullptr && std::strcmp(repack, "0") == 0) return false;
  const KernelSet& k = kernels();
  switch (type) {
    case DType::Q8_0:
    case DType::Q4_S: return k.pack_int8_panels != nullptr;
    case DType::F16: return k.pack_f16_panels != nullptr;
    default: return false;
  }
}

void pack_for_kernels(NativeFile& file, std::string_view embedding) {
  size_t total = 0;
  for (const NativeTensor& t : file.tensors) {
    if (packed_form(t, embedding)) total += packed_bytes(t);
  }
  if (total == 0) return;
  file.packed = AnonymousMemory(total, file.file.path() + "'s weights packed as panels");
  const KernelSet& k = kernels();
  size_t at = 0;
  for (NativeTensor& t : file.tensors) {
    if (!packed_form(t, embedding)) continue;
    const MatrixRef rows = rows_of(t);
    std::byte* out = file.packed.data() + at;
    const bool f16 = t.dtype == DType::F16;
    const uint32_t panel_rows = f16 ? kF16PanelRows : kInt8PanelRows;
    const uint32_t n_panels = (rows.rows + panel_rows - 1) / panel_rows;
    // About 32 MiB of the file's rows at a time, their pages dropped once packed: the
    // 1.5B shape's f16 head (256 MiB) packed whole raised the peak RSS by its size.
    const auto* source = static_cast<const std::byte*>(t.data);
    const size_t row_bytes = t.bytes / rows.rows;
    const uint32_t chunk = std::max<uint32_t>(1, uint32_t((size_t(32) << 20) / (row_bytes * panel_rows)));
    for (uint32_t first = 0; first < n_panels; first += chunk) {
      const uint32_t last = std::min(n_panels, first + chunk);
      parallel_for(last - first, 1, [&](uint32_t begin, uint32_t end) {
        (f16 ? k.pack_f16_panels : k.pack_int8_panels)(rows, first + begin, first + end, out);
      });
      const uint32_t row_end = std::min(rows.rows, last * panel_rows);
      file.file.drop_pages(source + size_t(first) * panel_rows * row_bytes,
                           size_t(row_end - first * panel_rows) * row_bytes);
    }
    file.file.drop_pages(source, t.bytes);
    t.data = out;
    t.layout = f16 ? WeightLayout::F16Panels : WeightLayout::Int8Panels;
    at += packed_bytes(t);
  }
}

}  // namespace rwkv
