// Shared by the fuzz targets of the model importers: a source that opens must hand over
// every tensor's values (dequantized, transformed) with as many values as its shape
// says, and detect as a model or be refused with rwkv::Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "convert/source_model.hpp"
#include "convert/to_native.hpp"
#include "fuzz_support.hpp"
#include "rwkv/error.hpp"

namespace rwkv_fuzz {

template <typename Open>
int check_import(const uint8_t* data, size_t size, Open&& open) {
  const MemFile file(data, size);
  rwkv::convert::SourceModel source;
  try {
    source = open(file.path());
  } catch (const rwkv::Error&) {
    return 0;
  }
  for (const rwkv::convert::SourceTensor& t : source.tensors) {
    try {
      if (t.values().size() != static_cast<size_t>(t.numel())) property_failed("values() disagrees with the shape");
    } catch (const rwkv::Error&) {
      // A tensor of a non-floating type, refused when read.
    }
  }
  try {
    (void)rwkv::convert::detect_model(source, std::nullopt);
  } catch (const rwkv::Error&) {
  }
  return 0;
}

}  // namespace rwkv_fuzz
