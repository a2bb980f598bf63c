// One definition per RWKV version: its tensors (native name, shape in terms of the
// hyper-parameters, and how each is derived from the official checkpoint), its
// per-layer state and its per-token scratch. The converter, the binder, rwkv-gen-model
// and every importer read these tables; each version's table lives in its own file
// (rwkv4.cpp, rwkv5.cpp, rwkv6.cpp, rwkv7.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rwkv/model_info.hpp"

namespace rwkv::arch {

// The sizes a shape is written in. C, F, V, H, N come from the model's header; the
// LoRA sizes do not: they are read off the weights, the first tensor that has one
// fixing it (LoraMix5 is five LoRA blocks of LoraMix rows, v6's time_maa_w1).
enum class Dim : uint8_t { One, Five, C, F, V, H, N, LoraMix, LoraMix5, LoraDecay, LoraW, LoraA, LoraV, LoraG, Count };

const char* dim_name(Dim d);

// Values of the dims; 0 where not known yet.
struct Sizes {
  std::array<uint64_t, size_t(Dim::Count)> value{};

  static Sizes of(const ModelInfo& info);
  uint64_t operator[](Dim d) const { return value[size_t(d)]; }
  // The product of `dims` (each must be known).
  uint64_t product(const std::vector<Dim>& dims) const;
  std::vector<uint64_t> shape(const std::vector<Dim>& dims) const;
  // Matches `actual` against `dims`, fixing unknown LoRA sizes from it; false (and
  // nothing changed) on a mismatch.
  bool unify(const std::vector<Dim>& dims, const std::vector<uint64_t>& actual);
};

// "[C, F]" with the sizes known so far filled in: "[32, 128]", "[*, 32]".
std::string describe_shape(const std::vector<Dim>& dims, const Sizes& sizes);

// How a native tensor's element order follows from the official one's.
enum class Layout : uint8_t {
  AsIs,             // same order; vectors may carry leading 1s in checkpoints ([1, 1, C])
  Transposed,       // official [in, out] (used as x @ W), stored [out, in]
  HeadBroadcast,    // official per head [H] or per channel [H, N], stored [H, N]
  SplitTransposed,  // official [K, D, C], stored as K matrices [C, D] (v6 time_maa_w2)
};

// The elementwise change from official to native values (after the layout).
enum class ValueMap : uint8_t { None, OneMinus, NegExp, ExpNegExp, Exp };

float apply(ValueMap map, float x);

enum class Where : uint8_t { Model, EveryLayer, AfterFirstLayer };

struct TensorSpec {
  const char* name;         // native name; per layer it follows "blocks.N."
  Where where;
  std::vector<Dim> shape;   // native shape, outermost first
  const char* official;     // name in the official checkpoint, in the same place
  Layout layout = Layout::AsIs;
  ValueMap map = ValueMap::None;
  bool matrix = false;      // a weight matrix: stored in the requested type; else float32
  // A low-rank matrix: stored as the checkpoint's own float16 or bfloat16 values where it
  // has them (exact, and half the bytes decode reads for it), else float32; never
  // quantized, and multiplied with float32 activations.
  bool source_half = false;
};

bool in_layer(const TensorSpec& t, uint32_t layer);
// The tensor's full native / official name in `layer` (ignored for Where::Model).
std::string native_name(const TensorSpec& t, uint32_t layer);
std::string official_name(const TensorSpec& t, uint32_t layer);
// The official checkpoint's shape (HeadBroadcast: the per-channel [H, N] form).
std::vector<Dim> official_dims(const TensorSpec& t);

// One part of a layer's recurrent state, in floats.
struct StateSlot {
  const char* name;
  std::vector<Dim> size;
  float initial = 0.0f;
};

// One per-token scratch buffer of a block step.
struct ScratchBuffer {
  const char* name;
  std::vector<Dim> per_token;
};

struct VersionSpec {
  Arch arch;
  std::vector<TensorSpec> tensors;     // the model's, then one layer's
  std::vector<StateSlot> state;        // one layer's state, in storage order
  std::vector<ScratchBuffer> scratch;  // what one block step takes per token
};

// The tensors every version shares: embedding, ln0, ln_out, head, ln1, ln2.
std::vector<TensorSpec> common_tensors();
// The channel mix v4, v5 and v6 share (arch/blocks.hpp): tensors and scratch.
std::vector<TensorSpec> shared_channel_mix_tensors(bool official_time_mix);
std::vector<ScratchBuffer> shared_channel_mix_scratch();

const VersionSpec& version_spec(Arch arch);
const VersionSpec& v4_spec();
const VersionSpec& v5_spec(Arch arch);  // V5_0, V5_1 or V5_2
const VersionSpec& v6_spec();
const VersionSpec& v7_spec();

// Offsets of the named state slots within one layer's state.
class StateLayout {
 public:
  StateLayout() = default;
  StateLayout(const VersionSpec& spec, const Sizes& sizes);
  // Throws std::logic_error for a name the table does not have.
  uint32_t offset(const char* name) const;
  uint32_t floats() const { return floats_; }
  void init(float* layer_state) const;

 private:
  struct Slot {
    const char* name;
    uint32_t offset, size;
    float initial;
  };
  std::vector<Slot> slots_;
  uint32_t floats_ = 0;
};

}  // namespace rwkv::arch
