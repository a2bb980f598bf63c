// UTF-8 scanning shared by the tokenizers and the stream decoder (Unicode 15, table 3-7).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rwkv::utf8 {

enum class Status { Complete, Incomplete, Invalid };

struct Step {
  Status status;
  size_t length;          // Complete: bytes of the character; Invalid: bytes to replace (>= 1);
                          // Incomplete: all the bytes given (a proper prefix of a character)
  char32_t code_point;    // Complete only
};

// Range of the second byte after lead byte `lead`, per table 3-7; {0, 0} for an invalid lead.
inline void second_byte_range(unsigned char lead, unsigned char& lo, unsigned char& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (lead == 0xE0) lo = 0xA0;
  else if (lead == 0xED) hi = 0x9F;
  else if (lead == 0xF0) lo = 0x90;
  else if (lead == 0xF4) hi = 0x8F;
}

inline size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Looks at the character starting at s[0]; `s` must not be empty.
inline Step step(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t need = sequence_length(p[0]);
  if (need == 0) return {Status::Invalid, 1, 0};
  if (need == 1) return {Status::Complete, 1, p[0]};
  char32_t cp = p[0] & (0xFF >> (need + 1));
  for (size_t k = 1; k < need; ++k) {
    if (k >= s.size()) return {Status::Incomplete, s.size(), 0};
    unsigned char lo = 0x80, hi = 0xBF;
    if (k == 1) second_byte_range(p[0], lo, hi);
    if (p[k] < lo || p[k] > hi) return {Status::Invalid, k, 0};
    cp = (cp << 6) | (p[k] & 0x3F);
  }
  return {Status::Complete, need, cp};
}

// Offset of the first byte that does not start a complete, valid character; s.size() if none.
inline size_t first_invalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    Step st = step(s.substr(i));
    if (st.status != Status::Complete) return i;
    i += st.length;
  }
  return i;
}

inline void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

}  // namespace rwkv::utf8
