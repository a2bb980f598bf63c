#include "weights/binder.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "io/printable.hpp"
#include "rwkv/error.hpp"

namespace rwkv {

const NativeTensor& WeightBinder::get(const std::string& name) const {
  const NativeTensor* t = file_.find(name);
  if (t == nullptr) {
    throw Error(fmt::format("{}: missing tensor '{}' required by architecture {}", file_.file.path(), name,
                            arch_name(file_.info.arch)));
  }
  used_[static_cast<size_t>(t - file_.tensors.data())] = true;
  return *t;
}

void WeightBinder::require_all_bound() const {
  for (size_t i = 0; i < used_.size(); ++i) {
    if (used_[i]) continue;
    const ModelInfo& info = file_.info;
    throw Error(fmt::format("{}: tensor '{}' is not part of an RWKV {} model with n_layer {} (the header and the "
                            "tensor table disagree)",
                            file_.file.path(), io::printable(file_.tensors[i].name), arch_name(info.arch),
                            info.n_layer));
  }
}

const float* WeightBinder::f32(const std::string& name, const std::vector<uint64_t>& shape) const {
  const NativeTensor& t = get(name);
  if (t.shape != shape) {
    throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected [{}]", file_.file.path(), name,
                            fmt::join(t.shape, ", "), fmt::join(shape, ", ")));
  }
  if (t.dtype != DType::F32) {
    throw Error(fmt::format("{}: tensor '{}' is {}, expected f32", file_.file.path(), name, dtype_name(t.dtype)));
  }
  return reinterpret_cast<const float*>(t.data);
}

MatrixRef WeightBinder::matrix(const std::string& name, uint32_t rows, uint32_t cols) const {
  const NativeTensor& t = get(name);
  if (t.shape.size() != 2 || (rows != 0 && t.shape[0] != rows) || t.shape[1] != cols) {
    throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected [{}, {}]", file_.file.path(), name,
                            fmt::join(t.shape, ", "), rows == 0 ? std::string("*") : std::to_string(rows), cols));
  }
  return MatrixRef{t.dtype, static_cast<uint32_t>(t.shape[0]), static_cast<uint32_t>(t.shape[1]), t.data, false,
                   t.layout};
}

WeightBinder::Typed WeightBinder::tensor(const std::string& name, const std::vector<uint64_t>& shape) const {
  const NativeTensor& t = get(name);
  if (t.shape != shape) {
    throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected [{}]", file_.file.path(), name,
                            fmt::join(t.shape, ", "), fmt::join(shape, ", ")));
  }
  return Typed{t.dtype, t.data};
}

void WeightBinder::fail(const std::string& message) const { throw Error(file_.file.path() + ": " + message); }

std::string layer_tensor(uint32_t layer, const char* suffix) { return fmt::format("blocks.{}.{}", layer, suffix); }

}  // namespace rwkv
