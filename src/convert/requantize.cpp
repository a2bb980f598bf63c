#include "convert/requantize.hpp"

#include <fmt/format.h>

#include "kernels/matvec.hpp"
#include "kernels/quant_blocks.hpp"
#include "rwkv/error.hpp"
#include "weights/format.hpp"

namespace rwkv::convert {

RequantizeResult requantize_native(const std::string& input, const std::string& output,
                                   const RequantizeOptions& options) {
  const NativeFile file = read_native_file(input);
  RequantizeResult result;
  result.info = file.info;
  std::vector<TensorPlan> plan;
  for (const NativeTensor& t : file.tensors) {
    // Low-rank matrices stored as their checkpoint's own half-precision values stay so.
    const DType planned = stored_type(t.name, t.shape.size(), options.types);
    const bool half = t.dtype == DType::F16 || t.dtype == DType::BF16;
    const DType target = planned == DType::F32 && t.shape.size() >= 2 && half ? t.dtype : planned;
    // Widening to f32 is exact; only a second rounding compounds errors.
    const bool second_rounding = target != t.dtype && t.dtype != DType::F32 && target != DType::F32;
    if (second_rounding && !options.allow_requantize) {
      throw Error(fmt::format("{}: tensor '{}' is stored as {}, a lossy type; converting it to {} would round "
                              "already rounded values again and add both errors. Convert from the original "
                              "checkpoint instead, or pass --allow-requantize",
                              input, t.name, dtype_name(t.dtype), dtype_name(target)));
    }
    if (target != t.dtype) ++result.converted_tensors;
    plan.push_back({t.name, target, t.shape});
  }
  const size_t total = plan.size();
  write_native_file(output, file.info, plan, [&](size_t i) {
    const NativeTensor& source = file.tensors[i];
    std::vector<std::byte> bytes;
    if (plan[i].dtype == source.dtype) {
      bytes.assign(source.data, source.data + source.bytes);
    } else {
      const uint64_t cols = source.shape.back();
      const uint64_t rows = source.numel() / cols;
      const MatrixRef m{source.dtype, static_cast<uint32_t>(rows), static_cast<uint32_t>(cols), source.data};
      std::vector<float> values(rows * cols);
      dequantize_rows(m, 0, m.rows, values.data());
      bytes = quantize_rows(values.data(), rows, cols, plan[i].dtype);
    }
    if (options.progress) options.progress(i + 1, total);
    return bytes;
  });
  return result;
}

}  // namespace rwkv::convert
