// The one exception type the library throws. Messages carry their context
// (file, tensor, offset, flag) so that callers can print them as they are.
#pragma once

#include <stdexcept>
#include <string>

namespace rwkv {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace rwkv
