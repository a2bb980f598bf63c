// Opening and reading the files a user names. Every path that comes in from a flag or
// a config goes through here, so that a FIFO, a device or a directory is refused with
// a message instead of blocking, reading forever or failing deep inside a parser.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "rwkv/io.hpp"

namespace rwkv::io {

// Declared in rwkv/io.hpp, for the tools as well.
using rwkv::read_line;
using rwkv::read_regular_file;
using rwkv::read_stream;

// An open, read-only descriptor of a regular file, closed on destruction.
class RegularFile {
 public:
  // Opens without blocking (O_NONBLOCK, so that a FIFO cannot stall the open) and
  // checks with fstat that `path` is a regular file. Throws rwkv::Error naming the
  // path, `what` it was meant to be ("the state file", "World vocabulary", ...), and
  // the system's reason or what the path is instead ("a directory", "a FIFO", ...).
  RegularFile(const std::string& path, std::string_view what);
  ~RegularFile();
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }  // as fstat reported it at open

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Writes `bytes` to a temporary name beside `path` and renames it into place, so that a
// failed or interrupted write leaves whatever was at `path` untouched. Errors name the
// path, `what` it is and the system's reason (disk full, permission, ...).
void write_file_replacing(const std::string& path, std::string_view what, std::string_view bytes);

// "a directory", "a FIFO", "a character device", ... for an fstat mode.
const char* file_kind_name(unsigned mode);

}  // namespace rwkv::io
