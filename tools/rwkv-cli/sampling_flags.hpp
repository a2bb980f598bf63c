// The sampling flags shared by generate and chat, declared and read in one place.
#pragma once

#include "args.hpp"
#include "rwkv/sampler.hpp"

namespace rwkv_cli {

struct SamplingDefaults {
  const char* temperature;
  const char* top_p;
  const char* presence;
  const char* frequency;
};

void declare_sampling_flags(ArgParser& args, const SamplingDefaults& defaults);
rwkv::SamplerParams read_sampling_flags(const ArgParser& args);

}  // namespace rwkv_cli
