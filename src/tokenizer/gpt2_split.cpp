#include "tokenizer/gpt2_split.hpp"

#include <utf8proc.h>

#include <array>

#include "tokenizer/utf8.hpp"

namespace rwkv::detail {
namespace {

enum class CharClass : unsigned char { Letter, Number, Space, Other };

struct Char {
  char32_t code_point;
  unsigned length;
  CharClass cls;
};

bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

CharClass classify(char32_t c) {
  if (is_white_space(c)) return CharClass::Space;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return CharClass::Letter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return CharClass::Number;
    default: return CharClass::Other;
  }
}

const std::array<CharClass, 128> kAsciiClass = [] {
  std::array<CharClass, 128> table{};
  for (char32_t c = 0; c < 128; ++c) table[c] = classify(c);
  return table;
}();

Char char_at(std::string_view text, size_t pos) {
  auto b = static_cast<unsigned char>(text[pos]);
  if (b < 0x80) return {b, 1, kAsciiClass[b]};
  utf8::Step st = utf8::step(text.substr(pos));
  return {st.code_point, static_cast<unsigned>(st.length), classify(st.code_point)};
}

bool is_contraction_tail(std::string_view text, size_t pos) {
  // After the apostrophe: s t m d, or re ve ll (lower case only, as in the pattern).
  if (pos >= text.size()) return false;
  char a = text[pos];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return true;
  if (pos + 1 >= text.size()) return false;
  char b = text[pos + 1];
  return (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l');
}

}  // namespace

size_t gpt2_pretoken_end(std::string_view text, size_t pos) {
  const size_t n = text.size();
  if (text[pos] == '\'' && is_contraction_tail(text, pos + 1)) {
    char a = text[pos + 1];
    return pos + ((a == 's' || a == 't' || a == 'm' || a == 'd') ? 2 : 3);
  }
  Char first = char_at(text, pos);
  size_t run_start = pos;
  CharClass run_class = first.cls;
  if (first.cls == CharClass::Space) {
    // " ?X+": a single space joins a following letter, number or other run.
    if (first.code_point == ' ' && pos + 1 < n) {
      Char next = char_at(text, pos + 1);
      if (next.cls != CharClass::Space) {
        run_start = pos + 1;
        run_class = next.cls;
      }
    }
    if (run_start == pos) {
      // \s+(?!\S) takes the whole run at the end of the text, or all but its last
      // character before a non-space; \s+ takes a lone whitespace character.
      size_t end = pos, last = pos;
      while (end < n) {
        Char c = char_at(text, end);
        if (c.cls != CharClass::Space) break;
        last = end;
        end += c.length;
      }
      if (end == n || last == pos) return end;
      return last;
    }
  }
  size_t end = run_start;
  while (end < n) {
    Char c = char_at(text, end);
    if (c.cls != run_class) break;
    end += c.length;
  }
  return end;
}

}  // namespace rwkv::detail
