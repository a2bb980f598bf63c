#include "io/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "rwkv/error.hpp"

namespace rwkv::io {

const char* file_kind_name(unsigned mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

RegularFile::RegularFile(const std::string& path, std::string_view what) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd_ < 0) {
    const int err = errno;
    if (err == EISDIR) throw Error(fmt::format("{}: {} is a directory, expected a regular file", path, what));
    throw Error(fmt::format("{}: cannot open {}: {}", path, what, std::strerror(err)));
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    throw Error(fmt::format("{}: cannot stat {}: {}", path, what, std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(fmt::format("{}: {} is {}, expected a regular file", path, what, file_kind_name(st.st_mode)));
  }
  // Regular files never block; reads should wait for the disk as usual.
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
  size_ = static_cast<uint64_t>(st.st_size);
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string read_regular_file(const std::string& path, std::string_view what, uint64_t max_bytes) {
  RegularFile file(path, what);
  auto too_large = [&](uint64_t bytes) {
    return Error(fmt::format("{}: {} is {} bytes, more than the {} bytes allowed", path, what, bytes, max_bytes));
  };
  if (file.size() > max_bytes) throw too_large(file.size());
  std::string data;
  data.resize(static_cast<size_t>(file.size()));
  size_t used = 0;
  for (;;) {
    if (used == data.size()) {
      if (used > max_bytes) throw too_large(used);
      // The file was larger than fstat said (it grew, or is a pseudo-file): read on in
      // bounded steps, one byte past the limit at most, to tell "too large" from "done".
      const uint64_t step = std::min<uint64_t>(max_bytes - used, (uint64_t(1) << 20) - 1) + 1;
      data.resize(used + static_cast<size_t>(step));
    }
    const ssize_t n = ::read(file.fd(), data.data() + used, data.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(fmt::format("{}: cannot read {}: {}", path, what, std::strerror(errno)));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > max_bytes) throw too_large(used);
  data.resize(used);
  return data;
}

void write_file_replacing(const std::string& path, std::string_view what, std::string_view bytes) {
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(fmt::format("{}: cannot create {} (as {}): {}", path, what, tmp, std::strerror(errno)));
  auto fail = [&](const char* doing) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: cannot {} {}: {}", path, doing, what, std::strerror(err)));
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("write");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: cannot write {}: {}", path, what, std::strerror(err)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: cannot rename {} into place: {}", path, what, std::strerror(err)));
  }
}

}  // namespace rwkv::io
