// The RWKV model: weights loaded from a native model file (mapped, used in place)
// and a forward step that advances a caller-owned State by one token.
//
//   auto model = rwkv::Model::load("rwkv7-world-0.1b.rwkv");
//   rwkv::State state = model->new_state();
//   std::vector<float> logits(model->info().n_vocab);
//   for (int32_t token : prompt) model->forward(token, state, logits);
//
// A loaded Model is immutable and may be shared by several threads, each with its
// own State. Native files are written by `rwkv-cli convert` (see docs/format.md).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "rwkv/model_info.hpp"
#include "rwkv/state.hpp"
#include "rwkv/tokenizer.hpp"

namespace rwkv {

struct TensorInfo {
  std::string name;
  std::string dtype;  // "f32", "f16"
  std::vector<uint64_t> shape;
  uint64_t bytes = 0;  // in the file
  // How the loaded model holds it: false for the file's own layout, true where it was
  // rearranged at load for the kernels in use (q8_0 and q4_s as int8 panels with AVX-512
  // VNNI; the environment variable RWKV_REPACK=0 turns that off).
  bool packed = false;
};

// The format of a model file or directory, told by its content: "native", "pth",
// "rwkv.cpp", "gguf", "safetensors", "huggingface" (a directory with config.json) or
// "unknown". Throws rwkv::Error if the path cannot be read.
std::string model_file_format(const std::string& path);

// What an imported model file holds before conversion: its format and how many tensors
// have each of its element types ("FP16", "Q5_1", "bfloat16", ...). Throws rwkv::Error
// for a native or unreadable file.
struct SourceSummary {
  std::string format;
  std::vector<std::pair<std::string, size_t>> tensor_types;
};
SourceSummary summarize_source_file(const std::string& path);

// One sequence's part in Model::forward_batch.
struct BatchItem {
  std::span<const int32_t> tokens;  // its next tokens: one when decoding, or a chunk of a prompt
  State* state = nullptr;           // the caller's, advanced in place (never copied)
  std::span<float> logits;          // empty (none), n_vocab (after its last token) or tokens.size() × n_vocab
};

class Model {
 public:
  // Maps and validates a native model file. Throws rwkv::Error naming the file
  // and the problem (missing, truncated, bad magic, unsupported version, a tensor
  // missing, of the wrong shape or pointing outside the file). Any other format
  // model_file_format() knows is converted first (to a temporary native file, removed
  // once mapped), in the types that lose nothing more than the file already lost;
  // converting once with `rwkv-cli convert` makes loading instant.
  static std::shared_ptr<const Model> load(const std::string& path);

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelInfo& info() const;
  const std::string& path() const;
  uint64_t file_bytes() const;
  std::vector<TensorInfo> tensors() const;
  // The World vocabulary stored in the model file (imports that carry their tokenizer,
  // such as GGUF), as the text of a vocabulary file; empty if the file has none.
  std::string_view embedded_vocabulary() const;

  // The initial state: zeros, except where a version needs otherwise (v4's pp = -1e30).
  State new_state() const;

  // Feeds one token: advances `state` and writes n_vocab logits. Throws
  // rwkv::Error if the token is out of range or the state belongs to another shape.
  void forward(int32_t token, State& state, std::span<float> logits) const;
  // Feeds one token without computing logits (a prompt token that is not the last).
  void advance(int32_t token, State& state) const;
  // Feeds many tokens at once (sequence mode): each weight matrix is read once per
  // chunk of tokens, so a prompt is read far faster than token by token, with the
  // same result within float32 rounding (and, for bf16 weights on AMD processors with
  // AVX512_BF16, of the activations to bf16). `logits` may be empty (no logits), hold
  // n_vocab values (the last token's) or tokens.size() × n_vocab (every token's).
  void forward_sequence(std::span<const int32_t> tokens, State& state, std::span<float> logits) const;
  // Advances several independent sequences at once (batched decoding): every weight
  // matrix is read once for all the items' tokens together, so B sequences taking one
  // token each cost far less than B calls of forward(). Items may mix one decode token
  // with chunks of prompts; each item's result is that of forward_sequence on its own
  // (within float32 rounding). Items are independent: a scheduler adds or drops
  // sequences between calls by changing the list, and states are used where they are.
  // Throws rwkv::Error, before any state changes, for a token out of range, a state of
  // another shape, a state named by two items, or a logits buffer of another size.
  void forward_batch(std::span<const BatchItem> items) const;

  struct Impl;

 private:
  // `path` is read; `shown_path` is what path() reports (the imported file's).
  static std::shared_ptr<const Model> load_native(const std::string& path, const std::string& shown_path);
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The model's own tokenizer: bytes needs no file; World uses the vocabulary embedded
// in the model file when there is one and `vocab_path` is empty; otherwise
// `vocab_path`, or when it is empty the kind's usual file name (default_vocab_filename)
// in the working directory, else beside the model. Throws rwkv::Error naming the file.
std::unique_ptr<Tokenizer> load_model_tokenizer(const Model& model, const std::string& vocab_path = "");

// The default model's path: $RWKV_DEFAULT_MODEL when set, else the file the
// installation put in its data directory (share/rwkv/default-rwkv7.rwkv), else the one
// this build tree converted. Throws rwkv::Error naming the places tried.
std::string default_model_path();

}  // namespace rwkv
