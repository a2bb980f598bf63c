// Internal: the GPT-2 pre-tokenizer split, written out by hand instead of with a regex
// engine (linear time, no backtracking blow-up on long runs). The pattern is
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with \s the Unicode White_Space property and \p{L}, \p{N} the general categories.
#pragma once

#include <cstddef>
#include <string_view>

namespace rwkv::detail {

// End of the pre-token that starts at byte `pos` of valid UTF-8 `text` (pos < text.size()).
size_t gpt2_pretoken_end(std::string_view text, size_t pos);

}  // namespace rwkv::detail
