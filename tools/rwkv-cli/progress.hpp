// A one-line progress bar on stderr, redrawn in place, shown only on a terminal.
#pragma once

#include <cstddef>
#include <string>

namespace rwkv_cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  void update(size_t done, size_t total);
  void finish();

 private:
  std::string label_;
  bool enabled_;
  int last_percent_ = -1;
};

}  // namespace rwkv_cli
