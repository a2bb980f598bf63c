// Converting models to the native format and re-quantizing native files.
//
//   rwkv::ConvertOptions opt;
//   opt.type = "q8_0";
//   rwkv::convert_model("RWKV-x070-World-0.1B.pth", "rwkv7-0.1b-q8_0.rwkv", opt);
//
// Output files are written to a temporary name and renamed when complete.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "rwkv/error.hpp"
#include "rwkv/model.hpp"

namespace rwkv {

// Weight types by name: "f32", "f16", "bf16", "q8_0", "q4_s".
std::vector<std::string> weight_type_names();

struct ConvertOptions {
  // The type of the large matrices. For convert_model, "" or "auto" means f32 for a
  // .pth and, for other formats, the type that loses nothing more than the file
  // already lost (F32 -> f32, F16 -> f16, Q8_0 -> q8_0 bit for bit, else f16).
  // quantize_model requires a type.
  std::string type;
  // The embedding's and the head's types; "" = the default for `type` (a quantized
  // type keeps the embedding f16, q4_s gets a q8_0 head).
  std::string embedding_type;
  std::string head_type;
  // convert_model: "bytes", "world" or "neox"; "" = inferred from n_vocab.
  std::string tokenizer;
  // quantize_model: going from one lossy type to another rounds twice; refused unless set.
  bool allow_requantize = false;
  // Called after each tensor: (tensors done, tensors in all).
  std::function<void(size_t done, size_t total)> progress;
};

struct ConvertReport {
  ModelInfo info;
  std::string source_format;         // as the source was read: "pth", "rwkv.cpp", "gguf",
                                     // "huggingface (safetensors)", ...; quantize_model: "native"
  std::string weight_types;          // "matrices q4_s, embedding f16, head q8_0"
  std::vector<std::string> ignored_tensors;  // in the source, unused by the architecture
  size_t converted_tensors = 0;      // quantize_model: tensors whose type changed
};

// What convert_model and quantize_model throw for an option with a bad value, before
// anything is written: what() is "<option>: <problem>", e.g. "type: unknown weight type
// 'q3': expected f32, f16, bf16, q8_0 or q4_s"; option() is the field's name ("type",
// "embedding_type", "head_type", "tokenizer").
class ConvertOptionError : public Error {
 public:
  ConvertOptionError(std::string option, std::string problem);
  const std::string& option() const { return option_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string option_;
  std::string problem_;
};

// Any format model_file_format() knows → native. Throws rwkv::Error naming the file,
// tensor or option.
ConvertReport convert_model(const std::string& input, const std::string& output, const ConvertOptions& options);
// Native → native with other weight types. Throws rwkv::Error as above.
ConvertReport quantize_model(const std::string& input, const std::string& output, const ConvertOptions& options);

}  // namespace rwkv
