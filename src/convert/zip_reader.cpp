#include "convert/zip_reader.hpp"

#include <optional>
#include <utility>

#include <fmt/format.h>

#include "convert/byte_reader.hpp"
#include "io/printable.hpp"
#include "rwkv/error.hpp"

namespace rwkv::convert {

namespace {

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndOfCentralDirectorySignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEndOfCentralDirectorySize = 22;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kZip64EndSize = 56;
constexpr uint64_t kMaxCommentLength = 0xffff;
constexpr uint16_t kEncryptedFlag = 0x0001;

struct CentralDirectoryLocation {
  uint64_t entry_count = 0;
  uint64_t size = 0;
  uint64_t offset = 0;
};

// The EOCD is the last record, followed only by its comment; scanning back
// handles the comment, and requiring the comment to end exactly at the end of
// the file rejects signature bytes that happen to sit inside a comment.
std::optional<uint64_t> find_end_of_central_directory(std::span<const std::byte> archive) {
  if (archive.size() < kEndOfCentralDirectorySize) return std::nullopt;
  const uint64_t last = archive.size() - kEndOfCentralDirectorySize;
  const uint64_t first = last > kMaxCommentLength ? last - kMaxCommentLength : 0;
  for (uint64_t pos = last + 1; pos-- > first;) {
    if (load_le<uint32_t>(archive, pos) != kEndOfCentralDirectorySignature) continue;
    const uint64_t comment_length = load_le<uint16_t>(archive, pos + 20);
    if (pos + kEndOfCentralDirectorySize + comment_length == archive.size()) return pos;
  }
  return std::nullopt;
}

}  // namespace

ZipReader::ZipReader(std::span<const std::byte> archive, std::string label)
    : archive_(archive), label_(std::move(label)) {
  read_central_directory();
}

void ZipReader::read_central_directory() {
  const auto eocd = find_end_of_central_directory(archive_);
  if (!eocd) {
    throw Error(fmt::format("{}: truncated or damaged zip archive: no end of central directory record", label_));
  }
  const uint64_t eocd_pos = *eocd;
  if (load_le<uint16_t>(archive_, eocd_pos + 4) != 0 || load_le<uint16_t>(archive_, eocd_pos + 6) != 0) {
    throw Error(fmt::format("{}: multi-disk zip archives are not supported", label_));
  }
  CentralDirectoryLocation directory{
      load_le<uint16_t>(archive_, eocd_pos + 10),
      load_le<uint32_t>(archive_, eocd_pos + 12),
      load_le<uint32_t>(archive_, eocd_pos + 16),
  };

  // A Zip64 locator right before the EOCD means the real counts and offsets live
  // in the Zip64 record (the EOCD then holds 0xffff... placeholders).
  if (eocd_pos >= kZip64LocatorSize &&
      load_le<uint32_t>(archive_, eocd_pos - kZip64LocatorSize) == kZip64LocatorSignature) {
    const uint64_t locator = eocd_pos - kZip64LocatorSize;
    const uint64_t record = load_le<uint64_t>(archive_, locator + 8);
    if (!fits(archive_, record, kZip64EndSize) || record > locator) {
      throw Error(fmt::format("{}: truncated zip archive: Zip64 end of central directory record at {} lies outside the file",
                              label_, record));
    }
    if (load_le<uint32_t>(archive_, record) != kZip64EndSignature) {
      throw Error(fmt::format("{}: damaged zip archive: bad Zip64 end of central directory signature at {}", label_, record));
    }
    directory = {load_le<uint64_t>(archive_, record + 32), load_le<uint64_t>(archive_, record + 40),
                 load_le<uint64_t>(archive_, record + 48)};
  }

  if (!fits(archive_, directory.offset, directory.size)) {
    throw Error(fmt::format("{}: truncated zip archive: central directory ({} bytes at {}) runs past the end of the {}-byte file",
                            label_, directory.size, directory.offset, archive_.size()));
  }
  // Each central header takes at least 46 bytes, which bounds the reservation.
  if (directory.entry_count > directory.size / kCentralHeaderSize) {
    throw Error(fmt::format("{}: damaged zip archive: {} entries cannot fit in a {}-byte central directory", label_,
                            directory.entry_count, directory.size));
  }
  central_directory_offset_ = directory.offset;
  const auto headers = archive_.subspan(directory.offset, directory.size);
  entries_.reserve(directory.entry_count);
  uint64_t pos = 0;
  for (uint64_t index = 0; index < directory.entry_count; ++index) {
    if (!fits(headers, pos, kCentralHeaderSize) || load_le<uint32_t>(headers, pos) != kCentralHeaderSignature) {
      throw Error(fmt::format("{}: damaged zip archive: central directory entry {} at offset {} is missing or cut short",
                              label_, index, directory.offset + pos));
    }
    ZipEntry entry;
    entry.flags = load_le<uint16_t>(headers, pos + 8);
    entry.method = load_le<uint16_t>(headers, pos + 10);
    entry.compressed_size = load_le<uint32_t>(headers, pos + 20);
    entry.uncompressed_size = load_le<uint32_t>(headers, pos + 24);
    const uint64_t name_length = load_le<uint16_t>(headers, pos + 28);
    const uint64_t extra_length = load_le<uint16_t>(headers, pos + 30);
    const uint64_t comment_length = load_le<uint16_t>(headers, pos + 32);
    const uint16_t start_disk = load_le<uint16_t>(headers, pos + 34);
    entry.local_header_offset = load_le<uint32_t>(headers, pos + 42);
    const uint64_t variable_length = name_length + extra_length + comment_length;
    if (!fits(headers, pos + kCentralHeaderSize, variable_length)) {
      throw Error(fmt::format("{}: damaged zip archive: central directory entry {} runs past the directory's end", label_, index));
    }
    entry.name = std::string(as_chars(headers.subspan(pos + kCentralHeaderSize, name_length)));

    // The Zip64 extra field holds, in this order, exactly those values whose
    // 32-bit (or 16-bit) header slot is saturated.
    auto extra = headers.subspan(pos + kCentralHeaderSize + name_length, extra_length);
    for (uint64_t field = 0; field + 4 <= extra.size();) {
      const uint16_t id = load_le<uint16_t>(extra, field);
      const uint64_t length = load_le<uint16_t>(extra, field + 2);
      if (!fits(extra, field + 4, length)) {
        throw Error(fmt::format("{}: damaged zip archive: extra field of entry '{}' runs past its end", label_, io::printable(entry.name)));
      }
      if (id == kZip64ExtraId) {
        auto values = extra.subspan(field + 4, length);
        uint64_t at = 0;
        auto take = [&](uint64_t& slot) {
          if (!fits(values, at, 8)) {
            throw Error(fmt::format("{}: damaged zip archive: Zip64 extra field of entry '{}' is too short", label_, io::printable(entry.name)));
          }
          slot = load_le<uint64_t>(values, at);
          at += 8;
        };
        if (entry.uncompressed_size == 0xffffffffu) take(entry.uncompressed_size);
        if (entry.compressed_size == 0xffffffffu) take(entry.compressed_size);
        if (entry.local_header_offset == 0xffffffffu) take(entry.local_header_offset);
      }
      field += 4 + length;
    }
    if (start_disk != 0 && start_disk != 0xffff) {
      throw Error(fmt::format("{}: entry '{}' lives on disk {}: multi-disk zip archives are not supported", label_,
                              io::printable(entry.name), start_disk));
    }
    entries_.push_back(std::move(entry));
    pos += kCentralHeaderSize + variable_length;
  }
  // Like zip tools, the first of several same-named entries is the one found.
  for (size_t i = 0; i < entries_.size(); ++i) index_of_name_.try_emplace(entries_[i].name, i);
}

const ZipEntry* ZipReader::find(std::string_view name) const {
  const auto it = index_of_name_.find(name);
  return it == index_of_name_.end() ? nullptr : &entries_[it->second];
}

std::span<const std::byte> ZipReader::stored_data(const ZipEntry& entry) const {
  if ((entry.flags & kEncryptedFlag) != 0) {
    throw Error(fmt::format("{}: entry '{}' is encrypted", label_, io::printable(entry.name)));
  }
  if (entry.method != 0) {
    throw Error(fmt::format("{}: entry '{}' is compressed (zip method {}); only stored entries are supported, as "
                            "torch.save writes them: re-save the checkpoint with torch.save",
                            label_, io::printable(entry.name), entry.method));
  }
  if (entry.compressed_size != entry.uncompressed_size) {
    throw Error(fmt::format("{}: damaged zip archive: stored entry '{}' has compressed size {} but size {}", label_,
                            io::printable(entry.name), entry.compressed_size, entry.uncompressed_size));
  }
  const uint64_t header = entry.local_header_offset;
  if (!fits(archive_, header, kLocalHeaderSize)) {
    throw Error(fmt::format("{}: truncated zip archive: local header of '{}' at {} lies past the end of the {}-byte file",
                            label_, io::printable(entry.name), header, archive_.size()));
  }
  if (load_le<uint32_t>(archive_, header) != kLocalHeaderSignature) {
    throw Error(fmt::format("{}: damaged zip archive: no local header for '{}' at offset {}", label_, io::printable(entry.name), header));
  }
  // The local extra field differs from the central one (torch pads it to align
  // storages), so only the local lengths say where the data starts.
  const uint64_t name_length = load_le<uint16_t>(archive_, header + 26);
  const uint64_t extra_length = load_le<uint16_t>(archive_, header + 28);
  if (!fits(archive_, header + kLocalHeaderSize, name_length + extra_length)) {
    throw Error(fmt::format("{}: truncated zip archive: local header of '{}' is cut short", label_, io::printable(entry.name)));
  }
  if (as_chars(archive_.subspan(header + kLocalHeaderSize, name_length)) != entry.name) {
    throw Error(fmt::format("{}: damaged zip archive: local header at {} does not name '{}'", label_, header, io::printable(entry.name)));
  }
  const uint64_t data_start = header + kLocalHeaderSize + name_length + extra_length;
  // Data running into the central directory means the archive lost bytes in the middle.
  if (!fits(archive_.first(central_directory_offset_), data_start, entry.uncompressed_size)) {
    throw Error(fmt::format("{}: truncated zip archive: entry '{}' ({} bytes at {}) runs past the end of the data, "
                            "which ends at the central directory ({} bytes into the file)",
                            label_, io::printable(entry.name), entry.uncompressed_size, data_start, central_directory_offset_));
  }
  return archive_.subspan(data_start, entry.uncompressed_size);
}

}  // namespace rwkv::convert
