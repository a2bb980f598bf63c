// Tells model file formats apart by their first bytes (or, for a directory, by its
// config.json), never by the file's name, and opens each as a SourceModel.
#include <fmt/format.h>

#include <array>
#include <cstring>
#include <filesystem>

#include <unistd.h>

#include "convert/gguf_import.hpp"
#include "convert/hf_import.hpp"
#include "convert/rwkvcpp_file.hpp"
#include "convert/source_model.hpp"
#include "io/files.hpp"
#include "rwkv/error.hpp"
#include "weights/format.hpp"

namespace rwkv::convert {

const char* source_format_name(SourceFormat format) {
  switch (format) {
    case SourceFormat::Native: return "native (rwkv-engine)";
    case SourceFormat::Pth: return "PyTorch checkpoint (.pth)";
    case SourceFormat::RwkvCpp: return "rwkv.cpp";
    case SourceFormat::Gguf: return "GGUF";
    case SourceFormat::Safetensors: return "safetensors";
    case SourceFormat::HuggingFaceDir: return "Hugging Face directory";
    case SourceFormat::Unknown: break;
  }
  return "unknown";
}

SourceFormat detect_source_format(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return std::filesystem::exists(std::filesystem::path(path) / "config.json", ec) ? SourceFormat::HuggingFaceDir
                                                                                    : SourceFormat::Unknown;
  }
  const io::RegularFile file(path, "the model file");
  std::array<std::byte, 16> head{};
  size_t got = 0;
  while (got < head.size()) {
    const ssize_t n = ::read(file.fd(), head.data() + got, head.size() - got);
    if (n <= 0) break;
    got += size_t(n);
  }
  auto starts_with = [&](const char* magic, size_t n) { return got >= n && std::memcmp(head.data(), magic, n) == 0; };
  if (starts_with(kNativeMagic, sizeof(kNativeMagic))) return SourceFormat::Native;
  if (starts_with("PK\x03\x04", 4)) return SourceFormat::Pth;
  if (starts_with("GGUF", 4)) return SourceFormat::Gguf;
  if (looks_like_rwkvcpp(head.data(), got)) return SourceFormat::RwkvCpp;
  // safetensors: a little-endian u64 header length, then the JSON header's '{'.
  if (got >= 9) {
    uint64_t header_length;
    std::memcpy(&header_length, head.data(), 8);
    if (header_length >= 2 && header_length < file.size() && head[8] == std::byte{'{'}) return SourceFormat::Safetensors;
  }
  return SourceFormat::Unknown;
}

SourceModel open_source(const std::string& path) {
  const SourceFormat format = detect_source_format(path);
  switch (format) {
    case SourceFormat::Pth: return open_pth_source(path);
    case SourceFormat::RwkvCpp: return open_rwkvcpp_source(path);
    case SourceFormat::Gguf: return open_gguf_source(path);
    case SourceFormat::HuggingFaceDir: return open_hf_source(path);
    case SourceFormat::Safetensors: return open_hf_source(path);  // a file of a repository: config.json beside it
    case SourceFormat::Native:
      throw Error(fmt::format("{}: already a native model file: nothing to convert", path));
    default: break;
  }
  throw Error(fmt::format("{}: not a model file this engine reads: expected a native model, an official .pth "
                          "checkpoint, an rwkv.cpp .bin, a GGUF file, a .safetensors file or a Hugging Face "
                          "directory with config.json (told apart by content, not by the file's name)",
                          path));
}

}  // namespace rwkv::convert
