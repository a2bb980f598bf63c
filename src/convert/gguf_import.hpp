// llama.cpp GGUF files (architectures rwkv6 and rwkv7) as import sources.
#pragma once

#include <string>

#include "convert/source_model.hpp"

namespace rwkv::convert {

// Throws rwkv::Error naming the file and the key or tensor at fault.
SourceModel open_gguf_source(const std::string& path);

}  // namespace rwkv::convert
