// The torch.save writer, shared with rwkv::write_random_checkpoint (rwkv-gen-model),
// under the tests' namespace.
#pragma once

#include "convert/pth_writer.hpp"

namespace rwkv_test {
using namespace rwkv::pth_writer;  // NOLINT: the tests name its helpers unqualified
}  // namespace rwkv_test
