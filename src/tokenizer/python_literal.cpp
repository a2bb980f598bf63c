#include "tokenizer/python_literal.hpp"

#include <fmt/format.h>

#include "io/printable.hpp"
#include "rwkv/error.hpp"
#include "tokenizer/utf8.hpp"

namespace rwkv::detail {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads exactly `digits` hex digits at body[i...]; advances i.
char32_t read_hex(std::string_view body, size_t& i, int digits, char escape) {
  char32_t v = 0;
  for (int k = 0; k < digits; ++k, ++i) {
    int h = i < body.size() ? hex_value(body[i]) : -1;
    if (h < 0) throw Error(fmt::format("truncated \\{} escape: expected {} hex digits", escape, digits));
    v = v * 16 + static_cast<char32_t>(h);
  }
  return v;
}

}  // namespace

std::string parse_python_literal(std::string_view lit) {
  while (!lit.empty() && (lit.front() == ' ' || lit.front() == '\t')) lit.remove_prefix(1);
  while (!lit.empty() && (lit.back() == ' ' || lit.back() == '\t')) lit.remove_suffix(1);
  bool is_bytes = false, is_raw = false, is_unicode = false;
  size_t i = 0;
  for (; i < lit.size() && lit[i] != '\'' && lit[i] != '"'; ++i) {
    char c = static_cast<char>(lit[i] | 0x20);
    bool& seen = c == 'b' ? is_bytes : c == 'r' ? is_raw : is_unicode;
    if ((c != 'b' && c != 'r' && c != 'u') || seen) {
      throw Error(fmt::format("not a Python string or bytes literal: {}", io::printable(lit)));
    }
    seen = true;
  }
  if (i >= lit.size() || (is_bytes && is_unicode)) {
    throw Error(fmt::format("not a Python string or bytes literal: {}", io::printable(lit)));
  }
  const char quote = lit[i];
  if (lit.size() < i + 2 || lit.back() != quote) throw Error(fmt::format("unterminated literal: {}", io::printable(lit)));
  if (lit.substr(i).starts_with(std::string(3, quote)) && lit.size() >= i + 6) {
    throw Error("triple-quoted literals are not supported");
  }
  std::string_view body = lit.substr(i + 1, lit.size() - i - 2);

  std::string out;
  out.reserve(body.size());
  auto put = [&](char32_t cp) {
    if (is_bytes) {
      if (cp > 0xFF) throw Error(fmt::format("bytes literal value {} is above 255", static_cast<uint32_t>(cp)));
      out += static_cast<char>(cp);
    } else {
      if (cp > 0x10FFFF) throw Error(fmt::format("code point U+{:X} is above U+10FFFF", static_cast<uint32_t>(cp)));
      if (cp >= 0xD800 && cp <= 0xDFFF) {
        throw Error(fmt::format("surrogate U+{:04X} cannot be encoded as UTF-8", static_cast<uint32_t>(cp)));
      }
      utf8::append(out, cp);
    }
  };
  for (size_t k = 0; k < body.size();) {
    char c = body[k];
    if (c == quote) throw Error(fmt::format("unescaped {} inside the literal: {}", quote, io::printable(lit)));
    if (static_cast<unsigned char>(c) >= 0x80) {
      if (is_bytes) throw Error("bytes literals can only contain ASCII characters");
      utf8::Step st = utf8::step(body.substr(k));
      if (st.status != utf8::Status::Complete) throw Error(fmt::format("invalid UTF-8 at byte {} of the literal", k));
      out.append(body.substr(k, st.length));
      k += st.length;
      continue;
    }
    if (c != '\\') {
      out += c;
      ++k;
      continue;
    }
    if (k + 1 >= body.size()) throw Error(fmt::format("the literal ends with a backslash: {}", lit));
    char e = body[k + 1];
    if (static_cast<unsigned char>(e) >= 0x80) {  // no escape: keep the backslash
      out += '\\';
      ++k;
      continue;
    }
    if (is_raw) {
      // In a raw literal a backslash only stops the next quote from closing the literal.
      out += c;
      out += e;
      k += 2;
      continue;
    }
    k += 2;
    switch (e) {
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x': put(read_hex(body, k, 2, 'x')); break;
      case 'u':
      case 'U':
        if (is_bytes) {
          out += '\\';
          out += e;
        } else {
          put(read_hex(body, k, e == 'u' ? 4 : 8, e));
        }
        break;
      case 'N':
        if (!is_bytes) throw Error("\\N{...} escapes are not supported");
        out += "\\N";
        break;
      default:
        if (e >= '0' && e <= '7') {
          char32_t v = static_cast<char32_t>(e - '0');
          for (int n = 1; n < 3 && k < body.size() && body[k] >= '0' && body[k] <= '7'; ++n, ++k) {
            v = v * 8 + static_cast<char32_t>(body[k] - '0');
          }
          put(v);
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

}  // namespace rwkv::detail
