// libFuzzer target: the rwkv.cpp .bin reader as an import source.
#include "convert/rwkvcpp_file.hpp"
#include "import_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return rwkv_fuzz::check_import(data, size,
                                 [](const std::string& path) { return rwkv::convert::open_rwkvcpp_source(path); });
}
