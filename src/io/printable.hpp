// Echoing text that came from a file in an error message. A hostile or corrupt file
// can hold control characters (which would rewrite the user's terminal), invalid UTF-8
// and megabytes in one field; messages stay one readable line of bounded length.
#pragma once

#include "rwkv/io.hpp"

namespace rwkv::io {

// Declared in rwkv/io.hpp, for the tools as well.
using rwkv::printable;

}  // namespace rwkv::io
