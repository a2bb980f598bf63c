// rwkv.cpp's model files (.bin, magic "ggmf", file versions 100 and 101; see its
// docs/FILE_FORMAT.md), presented as the official checkpoint they were converted from:
// rwkv.cpp's reversed (ggml) shapes turned back, its load-time transforms kept where the
// version table takes them (v4's -exp(time_decay), v5's exp(-exp(time_decay))) and undone
// where it moved data (transposed LoRA matrices, v6's permuted time_maa_w2, v7's six
// token-shift mixes concatenated into x_rwkvag).
#pragma once

#include <cstddef>
#include <string>

#include "convert/source_model.hpp"

namespace rwkv::convert {

inline constexpr uint32_t kRwkvCppMagic = 0x67676d66;  // "fmgg" in file order: rwkv.cpp's "ggmf"

// Whether `head` (the file's first bytes) starts like an rwkv.cpp model file.
bool looks_like_rwkvcpp(const std::byte* head, size_t size);

// Throws rwkv::Error naming the file and the field or tensor at fault.
SourceModel open_rwkvcpp_source(const std::string& path);

}  // namespace rwkv::convert
