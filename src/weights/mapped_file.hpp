// A read-only memory map of a whole file. Weights are used in place from it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace rwkv {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws rwkv::Error naming the path and `what` it was meant to be if it is not a
  // regular file or cannot be opened or mapped.
  explicit MappedFile(const std::string& path, std::string_view what = "the file");
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  // Lets the kernel drop the whole pages inside [p, p + n) from memory, for bytes that
  // are no longer read (weights used from a packed copy); read again, they come back
  // from the file.
  void drop_pages(const std::byte* p, size_t n) const;

 private:
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// Zeroed anonymous memory (in huge pages where the kernel has them: fewer TLB misses
// for weights streamed on every token), unmapped with the object.
class AnonymousMemory {
 public:
  AnonymousMemory() = default;
  // Throws rwkv::Error saying `what` it was for when the memory cannot be had.
  AnonymousMemory(size_t size, std::string_view what);
  ~AnonymousMemory();
  AnonymousMemory(AnonymousMemory&& other) noexcept;
  AnonymousMemory& operator=(AnonymousMemory&& other) noexcept;
  AnonymousMemory(const AnonymousMemory&) = delete;
  AnonymousMemory& operator=(const AnonymousMemory&) = delete;

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace rwkv
