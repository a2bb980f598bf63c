// libFuzzer target: the GGUF reader. A file that opens must keep its promises: every
// tensor's bytes inside the input and of its type's size, every typed getter either
// answering or refusing with rwkv::Error, and every tensor dequantizing to as many
// values as its dims say.
#include <cstddef>
#include <cstdint>
#include <string>

#include "convert/ggml_types.hpp"
#include "convert/gguf_file.hpp"
#include "fuzz_support.hpp"
#include "rwkv/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const rwkv_fuzz::MemFile file(data, size);
  try {
    const rwkv::convert::GgufFile gguf = rwkv::convert::GgufFile::open(file.path());
    // Every getter on every key: the right type answers, any other is refused.
    for (const rwkv::convert::GgufMetadata& entry : gguf.metadata()) {
      const auto attempt = [](auto&& get) {
        try {
          get();
        } catch (const rwkv::Error&) {
        }
      };
      attempt([&] { (void)gguf.get_string(entry.key); });
      attempt([&] { (void)gguf.get_uint(entry.key); });
      attempt([&] { (void)gguf.get_int(entry.key); });
      attempt([&] { (void)gguf.get_float(entry.key); });
      attempt([&] { (void)gguf.get_bool(entry.key); });
      attempt([&] { (void)gguf.get_string_array(entry.key); });
      attempt([&] { (void)gguf.get_int_array(entry.key); });
      attempt([&] { (void)gguf.get_float_array(entry.key); });
    }
    for (const rwkv::convert::GgufTensor& tensor : gguf.tensors()) {
      if (tensor.bytes != rwkv::convert::ggml_bytes(tensor.type, tensor.elements)) {
        rwkv_fuzz::property_failed("a tensor's byte count disagrees with its type and dims");
      }
      if (gguf.find(tensor.name) != &tensor) rwkv_fuzz::property_failed("find() missed a tensor");
      if (gguf.data_offset() > size || tensor.offset > size - gguf.data_offset() ||
          tensor.bytes > size - gguf.data_offset() - tensor.offset) {
        rwkv_fuzz::property_failed("a tensor's bytes lie outside the file");
      }
      if (gguf.to_float(tensor).size() != tensor.elements) {
        rwkv_fuzz::property_failed("to_float() returned another number of values than the dims hold");
      }
    }
  } catch (const rwkv::Error&) {
  }
  return 0;
}
