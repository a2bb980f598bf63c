#include "io/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

}  // namespace rwkv::io

namespace rwkv {

std::string read_regular_file(const std::string& path, std::string_view what, uint64_t max_bytes) {
  io::RegularFile file(path, what);
  if (file.size() > max_bytes) {
    throw Error(fmt::format("{}: {} is {} bytes, more than the {} bytes allowed", path, what, file.size(), max_bytes));
  }
  // Reads what fstat promised, then on in small steps until the end: a file that grows,
  // or a pseudo-file that reports size 0, stays bounded by the limit all the same.
  std::string data(static_cast<size_t>(file.size()), '\0');
  size_t used = 0;
  char more[4096];
  for (;;) {
    const bool in_promised = used < data.size();
    char* into = in_promised ? data.data() + used : more;
    const size_t room = in_promised ? data.size() - used : sizeof(more);
    const ssize_t n = ::read(file.fd(), into, room);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(fmt::format("{}: cannot read {}: {}", path, what, std::strerror(errno)));
    }
    if (n == 0) break;
    if (in_promised) {
      used += static_cast<size_t>(n);
      continue;
    }
    if (static_cast<uint64_t>(data.size()) + static_cast<uint64_t>(n) > max_bytes) {
      throw Error(fmt::format("{}: {} holds more than the {} bytes allowed", path, what, max_bytes));
    }
    data.append(more, static_cast<size_t>(n));
    used = data.size();
  }
  data.resize(used);
  return data;
}

std::string read_stream(int fd, std::string_view what, uint64_t max_bytes) {
  std::string data;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(fmt::format("{}: cannot read: {}", what, std::strerror(errno)));
    }
    if (n == 0) return data;
    if (static_cast<uint64_t>(data.size()) + static_cast<uint64_t>(n) > max_bytes) {
      throw Error(fmt::format("{}: more than the {} bytes allowed", what, max_bytes));
    }
    data.append(buffer, static_cast<size_t>(n));
  }
}

bool read_line(int fd, std::string& line, std::string_view what, uint64_t max_bytes) {
  line.clear();
  for (;;) {
    char c;
    const ssize_t n = ::read(fd, &c, 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(fmt::format("{}: cannot read: {}", what, std::strerror(errno)));
    }
    if (n == 0) return !line.empty();
    if (c == '\n') return true;
    if (line.size() >= max_bytes) throw Error(fmt::format("{}: a line longer than the {} bytes allowed", what, max_bytes));
    line += c;
  }
}

}  // namespace rwkv

namespace rwkv::io {

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
