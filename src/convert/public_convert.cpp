// rwkv/convert.hpp over the converter (to_native.hpp) and requantization: weight types
// and the tokenizer given by name, the "auto" types of `rwkv-cli convert`, and a report.
#include "rwkv/convert.hpp"

#include <fmt/format.h>

#include <optional>
#include <utility>

#include "convert/requantize.hpp"
#include "convert/source_model.hpp"
#include "convert/to_native.hpp"
#include "convert/weight_types.hpp"
#include "kernels/dtype.hpp"

namespace rwkv {

namespace {

// Parses an option's value with a library parser; its error, with the option's name.
template <typename Parse>
auto parse_option(const char* option, const std::string& value, Parse parse) -> decltype(parse(value)) {
  try {
    return parse(value);
  } catch (const Error& e) {
    throw ConvertOptionError(option, e.what());
  }
}

std::optional<DType> optional_type(const char* option, const std::string& value) {
  if (value.empty()) return std::nullopt;
  return parse_option(option, value, parse_dtype);
}

// The types of `type`, `embedding_type` and `head_type` when all follow from `type`.
convert::WeightTypes named_types(const ConvertOptions& options) {
  const DType matrices = parse_option("type", options.type, parse_dtype);
  const std::optional<DType> embedding = optional_type("embedding_type", options.embedding_type);
  const std::optional<DType> head = optional_type("head_type", options.head_type);
  return convert::WeightTypes::for_type(matrices, embedding, head);
}

std::string describe(const convert::WeightTypes& types) {
  return fmt::format("matrices {}, embedding {}, head {}", dtype_name(types.matrices), dtype_name(types.embedding),
                     dtype_name(types.head));
}

}  // namespace

ConvertOptionError::ConvertOptionError(std::string option, std::string problem)
    : Error(option + ": " + problem), option_(std::move(option)), problem_(std::move(problem)) {}

std::vector<std::string> weight_type_names() {
  std::vector<std::string> names;
  for (DType t : all_dtypes()) names.emplace_back(dtype_name(t));
  return names;
}

ConvertReport convert_model(const std::string& input, const std::string& output, const ConvertOptions& options) {
  // The source first: a file that cannot be converted is reported before its options.
  const convert::SourceModel source = convert::open_source(input);
  convert::ConvertOptions convert_options;
  if (!options.type.empty() && options.type != "auto") {
    convert_options.types = named_types(options);
  } else {
    // An official checkpoint is float32 or bfloat16 and its matrices are widened once
    // at load anyway; other formats keep what they hold (F16 as f16, Q8_0 bit for bit).
    convert_options.types = source.format == "pth" ? convert::WeightTypes::for_type(DType::F32)
                                                   : convert::lossless_types(source);
    if (const auto embedding = optional_type("embedding_type", options.embedding_type)) {
      convert_options.types.embedding = *embedding;
    }
    if (const auto head = optional_type("head_type", options.head_type)) convert_options.types.head = *head;
  }
  if (!options.tokenizer.empty()) {
    convert_options.tokenizer = parse_option("tokenizer", options.tokenizer, parse_tokenizer_kind);
  }
  convert_options.progress = options.progress;
  convert::ConvertResult result = convert::convert_source(source, output, convert_options);
  ConvertReport report;
  report.info = result.info;
  report.source_format = source.format;
  report.weight_types = describe(convert_options.types);
  report.ignored_tensors = std::move(result.ignored_tensors);
  return report;
}

ConvertReport quantize_model(const std::string& input, const std::string& output, const ConvertOptions& options) {
  if (options.type.empty()) {
    throw ConvertOptionError("type", fmt::format("required ({})", dtype_names()));
  }
  convert::RequantizeOptions requantize_options;
  requantize_options.types = named_types(options);
  requantize_options.allow_requantize = options.allow_requantize;
  requantize_options.progress = options.progress;
  const convert::RequantizeResult result = convert::requantize_native(input, output, requantize_options);
  ConvertReport report;
  report.info = result.info;
  report.source_format = "native";
  report.weight_types = describe(requantize_options.types);
  report.converted_tensors = result.converted_tensors;
  return report;
}

}  // namespace rwkv
