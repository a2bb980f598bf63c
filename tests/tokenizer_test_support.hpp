// Helpers shared by the tokenizer tests.
#pragma once

#include <string>
#include <vector>

#include "rwkv/error.hpp"
#include "rwkv/tokenizer.hpp"
#include "test_support.hpp"

namespace rwkv_test {

// The message of the rwkv::Error that f() throws, or "(no error)".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const rwkv::Error& e) {
    return e.what();
  }
  return "(no error)";
}

inline std::string tokenizer_fixture(const char* name) {
  return (fixtures_dir() / "tokenizer" / name).string();
}

// Pushes every id through a StreamDecoder; returns each push's output and, last, flush()'s.
inline std::vector<std::string> stream_pieces(const rwkv::Tokenizer& tok, const std::vector<int32_t>& ids,
                                              bool keep_special = false) {
  rwkv::StreamDecoder stream(tok, keep_special);
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(stream.push(id));
  out.push_back(stream.flush());
  return out;
}

}  // namespace rwkv_test
