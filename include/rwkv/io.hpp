// Reading what a user names (files, standard input) the way the library reads its own
// files, and echoing text that came from a file in a message.
//
//   std::string prompt = rwkv::read_regular_file(path, "the prompt file", 1 << 20);
//   throw rwkv::Error("unknown tensor '" + rwkv::printable(name) + "'");
//
// A FIFO, a device or a directory is refused with a message instead of blocking or
// reading forever; every read is bounded. Errors are rwkv::Error naming the path (or
// `what`, for a stream), what it was meant to be and the system's reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rwkv {

// The whole of the regular file `path`, at most `max_bytes` (enforced while reading,
// so a file that grows cannot make the read unbounded). `what` says what the file was
// meant to be in errors: "<path>: <what> is a directory, expected a regular file".
std::string read_regular_file(const std::string& path, std::string_view what, uint64_t max_bytes);

// Everything readable from `fd` (a pipe, a terminal, standard input) up to its end, at
// most `max_bytes`: more is refused with an error naming `what`, so that `< /dev/zero`
// or an endless pipe cannot exhaust memory.
std::string read_stream(int fd, std::string_view what, uint64_t max_bytes);

// One line of `fd` without its '\n', read a byte at a time (so nothing past the line is
// consumed), at most `max_bytes`. Returns false at the end of input with nothing read.
bool read_line(int fd, std::string& line, std::string_view what, uint64_t max_bytes);

// `text` for one line of a message: control characters, DEL and invalid UTF-8 bytes
// written as escapes (\n, \t, \x1b, ...), backslashes doubled, valid UTF-8 kept, and cut
// after `max_bytes` bytes of input with "... (N bytes)" appended.
std::string printable(std::string_view text, size_t max_bytes = 80);

}  // namespace rwkv
