// libFuzzer target: the safetensors reader. A file that opens must hold each tensor's
// bytes inside itself, of the size its shape and dtype call for, and every tensor must
// convert to as many floats as its shape holds or be refused with rwkv::Error.
#include <cstddef>
#include <cstdint>

#include "convert/safetensors_file.hpp"
#include "fuzz_support.hpp"
#include "rwkv/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const rwkv_fuzz::MemFile file(data, size);
  try {
    const rwkv::convert::SafetensorsModel model = rwkv::convert::SafetensorsModel::open(file.path());
    for (const rwkv::convert::SafetensorsTensor& tensor : model.tensors()) {
      if (model.find(tensor.name) != &tensor) rwkv_fuzz::property_failed("find() missed a tensor");
      if (tensor.bytes > size) rwkv_fuzz::property_failed("a tensor is larger than the file");
      try {
        if (tensor.to_float().size() != tensor.elements()) {
          rwkv_fuzz::property_failed("to_float() returned another number of values than the shape holds");
        }
      } catch (const rwkv::Error&) {
        // A dtype that is not read as floats (I64, U8, ...).
      }
    }
  } catch (const rwkv::Error&) {
  }
  return 0;
}
