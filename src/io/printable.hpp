// Echoing text that came from a file in an error message. A hostile or corrupt file
// can hold control characters (which would rewrite the user's terminal), invalid UTF-8
// and megabytes in one field; messages stay one readable line of bounded length.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rwkv::io {

// `text` with control characters, DEL and invalid UTF-8 bytes written as escapes (\n,
// \t, \x1b, ...), backslashes doubled, valid UTF-8 kept, and cut after `max_bytes` bytes
// of input with "... (N bytes)" appended.
std::string printable(std::string_view text, size_t max_bytes = 80);

}  // namespace rwkv::io
