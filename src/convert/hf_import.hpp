// Hugging Face repositories (a directory with config.json, or a file inside one) as
// import sources: RWKV-4/5/6 in transformers' layout, RWKV-7 in fla-hub's.
#pragma once

#include <string>

#include "convert/source_model.hpp"

namespace rwkv::convert {

// Throws rwkv::Error naming the file and the key or tensor at fault.
SourceModel open_hf_source(const std::string& path);

}  // namespace rwkv::convert
