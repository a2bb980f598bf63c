// libFuzzer target: the official .pth reader (zip, pickle, storages) as an import source.
#include "import_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return rwkv_fuzz::check_import(data, size, [](const std::string& path) { return rwkv::convert::open_pth_source(path); });
}
