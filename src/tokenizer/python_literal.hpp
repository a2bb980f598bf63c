// Internal: Python string and bytes literals as they appear in the World vocabulary file.
#pragma once

#include <string>
#include <string_view>

namespace rwkv::detail {

// The bytes a Python literal stands for: a str literal ('...' or "...", optional u or r
// prefix) gives its UTF-8; a bytes literal (b'...', br'...') gives its bytes. Escapes as
// in Python: \\ \' \" \a \b \f \n \r \t \v, octal \ooo, \xhh (a code point in str, a byte in
// bytes), \uXXXX and \UXXXXXXXX (str only); other backslashes are kept, as Python does.
// Leading and trailing blanks are ignored. Throws rwkv::Error saying what is wrong.
std::string parse_python_literal(std::string_view literal);

}  // namespace rwkv::detail
