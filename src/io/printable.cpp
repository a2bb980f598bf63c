#include "io/printable.hpp"

#include <fmt/format.h>

#include "tokenizer/utf8.hpp"

namespace rwkv {

std::string printable(std::string_view text, size_t max_bytes) {
  const std::string_view shown = text.substr(0, max_bytes);
  std::string out;
  out.reserve(shown.size() + 16);
  size_t i = 0;
  while (i < shown.size()) {
    const auto c = static_cast<unsigned char>(shown[i]);
    if (c >= 0x80) {
      const utf8::Step st = utf8::step(shown.substr(i));
      // C1 controls (U+0080..U+009F) act on terminals like C0 ones.
      if (st.status == utf8::Status::Complete && st.code_point >= 0xA0) {
        out.append(shown.substr(i, st.length));
        i += st.length;
        continue;
      }
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  if (text.size() > shown.size()) out += fmt::format("... ({} bytes)", text.size());
  return out;
}

}  // namespace rwkv
