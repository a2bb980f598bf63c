// A reader for the part of the zip format torch.save uses: one disk, stored
// (uncompressed) entries, Zip64 for large archives. Entry data is returned as
// spans into the caller's bytes (usually a mapped file), never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rwkv::convert {

struct ZipEntry {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;  // 0 = stored
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
};

class ZipReader {
 public:
  // Reads the central directory. `archive` must outlive the reader; `label`
  // (the file name) starts every error message.
  ZipReader(std::span<const std::byte> archive, std::string label);
  ZipReader(const ZipReader&) = delete;  // the name index points into entries_
  ZipReader& operator=(const ZipReader&) = delete;
  ZipReader(ZipReader&&) = default;
  ZipReader& operator=(ZipReader&&) = default;

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;
  // The entry's bytes, located through its local header. Throws rwkv::Error for
  // compressed or encrypted entries and for data that lies outside the archive.
  std::span<const std::byte> stored_data(const ZipEntry& entry) const;

 private:
  void read_central_directory();

  std::span<const std::byte> archive_;
  std::string label_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string_view, size_t> index_of_name_;  // views into entries_, which no longer changes
  uint64_t central_directory_offset_ = 0;  // entry data must end before it
};

}  // namespace rwkv::convert
