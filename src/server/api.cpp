#include "server/api.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "rwkv/error.hpp"

namespace rwkv::server {

using nlohmann::json;

namespace {

// The numeric ranges rwkv-cli takes for the same settings (far past where each has
// saturated, well inside float).
constexpr double kLargestSetting = 1e6;

// A field that is absent or null counts as not given (OpenAI clients send nulls).
const json* field(const json& body, const char* name) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double number_field(const json& body, const char* name, double min, double max, double fallback) {
  const json* value = field(body, name);
  if (value == nullptr) return fallback;
  if (!value->is_number()) throw bad_field(name, "expected a number");
  const double x = value->get<double>();
  if (!std::isfinite(x) || x < min || x > max) {
    throw bad_field(name, fmt::format("{} is out of range ({} to {})", value->dump(), min, max));
  }
  return x;
}

int64_t integer_field(const json& body, const char* name, int64_t min, int64_t max, int64_t fallback) {
  const json* value = field(body, name);
  if (value == nullptr) return fallback;
  if (!value->is_number_integer()) throw bad_field(name, "expected an integer");
  // Unsigned JSON integers above INT64_MAX are out of every range here.
  if (value->is_number_unsigned() && value->get<uint64_t>() > uint64_t(INT64_MAX)) {
    throw bad_field(name, fmt::format("{} is out of range ({} to {})", value->dump(), min, max));
  }
  const int64_t x = value->get<int64_t>();
  if (x < min || x > max) throw bad_field(name, fmt::format("{} is out of range ({} to {})", x, min, max));
  return x;
}

bool bool_field(const json& body, const char* name) {
  const json* value = field(body, name);
  if (value == nullptr) return false;
  if (!value->is_boolean()) throw bad_field(name, "expected true or false");
  return value->get<bool>();
}

void check_model(const json& body, const RequestLimits& limits) {
  const json* model = field(body, "model");
  if (model == nullptr) return;  // lenient, as llama.cpp: the one model serves
  if (!model->is_string()) throw bad_field("model", "expected a string");
  if (model->get<std::string>() != limits.model_id) {
    throw ApiError(404, "invalid_request_error", "model_not_found",
                   fmt::format("The model '{}' does not exist; this server serves '{}'", model->get<std::string>(),
                               limits.model_id),
                   "model");
  }
}

std::vector<std::string> stop_strings(const json& body) {
  const json* stop = field(body, "stop");
  std::vector<std::string> out;
  if (stop == nullptr) return out;
  if (stop->is_string()) {
    out.push_back(stop->get<std::string>());
  } else if (stop->is_array()) {
    for (const json& s : *stop) {
      if (!s.is_string()) throw bad_field("stop", "expected a string or an array of strings");
      out.push_back(s.get<std::string>());
    }
  } else {
    throw bad_field("stop", "expected a string or an array of strings");
  }
  for (const std::string& s : out) {
    if (s.empty()) throw bad_field("stop", "a stop string must not be empty");
  }
  return out;
}

std::map<int32_t, float> logit_bias(const json& body, uint32_t n_vocab) {
  const json* bias = field(body, "logit_bias");
  std::map<int32_t, float> out;
  if (bias == nullptr) return out;
  if (!bias->is_object()) throw bad_field("logit_bias", "expected an object of token id to bias");
  for (const auto& [key, value] : bias->items()) {
    int64_t id = -1;
    try {
      size_t used = 0;
      id = std::stoll(key, &used);
      if (used != key.size()) id = -1;
    } catch (const std::exception&) {
      id = -1;
    }
    if (id < 0 || id >= int64_t(n_vocab)) {
      throw bad_field("logit_bias", fmt::format("'{}' is not a token id (0 to {})", key, n_vocab - 1));
    }
    if (!value.is_number() || !std::isfinite(value.get<double>()) || std::abs(value.get<double>()) > 100) {
      throw bad_field("logit_bias", fmt::format("the bias of token {} must be a number from -100 to 100", key));
    }
    out[static_cast<int32_t>(id)] = value.get<float>();
  }
  return out;
}

// The settings both routes share.
GenerationRequest common_settings(const json& body, const RequestLimits& limits, int32_t default_max_tokens) {
  if (!body.is_object()) throw ApiError(400, "invalid_request_error", "invalid_value", "the body must be a JSON object");
  check_model(body, limits);
  if (integer_field(body, "n", 1, 1, 1) != 1) throw bad_field("n", "only 1 is supported");
  GenerationRequest r;
  const int64_t max_tokens_limit = limits.max_completion_tokens;
  int64_t max_tokens = integer_field(body, "max_tokens", 0, max_tokens_limit, default_max_tokens);
  if (field(body, "max_completion_tokens") != nullptr) {
    max_tokens = integer_field(body, "max_completion_tokens", 0, max_tokens_limit, default_max_tokens);
  }
  r.options.max_tokens = static_cast<int32_t>(max_tokens);
  SamplerParams& p = r.options.sampler;
  p.temperature = static_cast<float>(number_field(body, "temperature", 0, kLargestSetting, 1.0));
  p.top_p = static_cast<float>(number_field(body, "top_p", 0, 1, 1.0));
  if (!(p.top_p > 0)) throw bad_field("top_p", "must be in (0, 1]");
  p.top_k = static_cast<int32_t>(integer_field(body, "top_k", 0, INT32_MAX, 0));
  p.min_p = static_cast<float>(number_field(body, "min_p", 0, 1, 0.0));
  p.presence_penalty = static_cast<float>(number_field(body, "presence_penalty", -kLargestSetting, kLargestSetting, 0));
  p.frequency_penalty =
      static_cast<float>(number_field(body, "frequency_penalty", -kLargestSetting, kLargestSetting, 0));
  p.penalty_decay = static_cast<float>(number_field(body, "penalty_decay", 0, 1, p.penalty_decay));
  p.repetition_penalty =
      static_cast<float>(number_field(body, "repetition_penalty", 1 / kLargestSetting, kLargestSetting, 1.0));
  if (field(body, "seed") != nullptr) {
    p.seed = static_cast<uint64_t>(integer_field(body, "seed", 0, INT64_MAX, 0));
  } else {
    p.seed = std::random_device{}();
  }
  p.logit_bias = logit_bias(body, limits.n_vocab);
  r.options.stop = stop_strings(body);
  r.stream = bool_field(body, "stream");
  if (const json* state = field(body, "state")) {
    if (!state->is_string() || !valid_state_name(state->get<std::string>())) {
      throw bad_field("state", "expected the name of a state in the server's --state-dir (letters, digits, '.', '_', '-')");
    }
    r.start_state = state->get<std::string>();
  }
  if (const json* options = field(body, "stream_options")) {
    if (!options->is_object()) throw bad_field("stream_options", "expected an object");
    r.include_usage = bool_field(*options, "include_usage");
  }
  return r;
}

void set_prompt_tokens(GenerationRequest& r, std::vector<int32_t> tokens, const RequestLimits& limits,
                       const char* name) {
  if (tokens.empty()) throw bad_field(name, "the prompt is empty");
  if (tokens.size() > limits.max_prompt_tokens) {
    throw ApiError(400, "invalid_request_error", "context_length_exceeded",
                   fmt::format("{}: the prompt has {} tokens, more than the {} this server takes", name, tokens.size(),
                               limits.max_prompt_tokens),
                   name);
  }
  r.prompt_tokens = std::move(tokens);
}

// "\r\n" → "\n", runs of newlines → one, surrounding whitespace trimmed: the turns are
// separated by "\n\n", so a message must not contain one (BlinkDL's advice for World
// and G1 models, as ChatRWKV does).
std::string normalize_message(std::string text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    if (text[i] == '\n' && !out.empty() && out.back() == '\n') continue;
    out += text[i];
  }
  const size_t begin = out.find_first_not_of(" \t\n");
  if (begin == std::string::npos) return "";
  const size_t end = out.find_last_not_of(" \t\n");
  return out.substr(begin, end - begin + 1);
}

std::string message_content(const json& message, size_t index) {
  const std::string name = fmt::format("messages[{}].content", index);
  const json* content = field(message, "content");
  if (content == nullptr) return "";
  if (content->is_string()) return content->get<std::string>();
  if (content->is_array()) {
    std::string text;
    for (const json& part : *content) {
      // Compared as JSON: value("type", "") throws type_error for a non-string type.
      if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
          !part["text"].is_string()) {
        throw bad_field(name, "only text parts ({\"type\": \"text\", \"text\": ...}) are supported");
      }
      text += part["text"].get<std::string>();
    }
    return text;
  }
  throw bad_field(name, "expected a string or an array of text parts");
}

}  // namespace

bool valid_state_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::vector<int32_t> token_ids(const json& array, const Tokenizer& tokenizer, const char* name) {
  std::vector<int32_t> ids;
  ids.reserve(array.size());
  for (const json& t : array) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tokenizer.vocab_size()) {
      // An array or object is named by its type: dumping one nested a million deep
      // would overflow the stack (the serializer recurses).
      throw bad_field(name, fmt::format("{} is not a token id (0 to {})",
                                        t.is_structured() ? std::string(t.type_name()) : t.dump(),
                                        tokenizer.vocab_size() - 1));
    }
    ids.push_back(t.get<int32_t>());
  }
  return ids;
}

ApiError bad_field(const std::string& field, const std::string& problem) {
  return ApiError(400, "invalid_request_error", "invalid_value", field + ": " + problem, field);
}

json error_body(const ApiError& error) {
  return {{"error",
           {{"message", error.what()},
            {"type", error.type},
            {"param", error.param.empty() ? json(nullptr) : json(error.param)},
            {"code", error.code}}}};
}

json parse_body(const std::string& body) {
  try {
    return json::parse(body);
  } catch (const json::exception& e) {
    // Not only parse_error: a number past double (1e400) is an out_of_range.
    throw ApiError(400, "invalid_request_error", "invalid_json", fmt::format("the body is not valid JSON: {}", e.what()));
  }
}

GenerationRequest parse_completion_request(const json& body, const Tokenizer& tokenizer, const RequestLimits& limits) {
  GenerationRequest r = common_settings(body, limits, 16);
  const json* prompt = field(body, "prompt");
  if (prompt == nullptr) throw bad_field("prompt", "is required");
  // One prompt: a string, its token ids, or an array holding exactly one of those.
  const json* one = prompt;
  if (prompt->is_array() && !prompt->empty() && (prompt->front().is_string() || prompt->front().is_array())) {
    if (prompt->size() != 1) throw bad_field("prompt", "only one prompt per request is supported");
    one = &prompt->front();
  }
  if (one->is_string()) {
    set_prompt_tokens(r, tokenizer.encode(one->get<std::string>()), limits, "prompt");
  } else if (one->is_array()) {
    set_prompt_tokens(r, token_ids(*one, tokenizer, "prompt"), limits, "prompt");
  } else {
    throw bad_field("prompt", "expected a string or an array of token ids");
  }
  return r;
}

ChatPrompt render_chat(const json& messages, ChatTemplate chat_template) {
  if (!messages.is_array() || messages.empty()) throw bad_field("messages", "expected a non-empty array");
  ChatPrompt chat;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& message = messages[i];
    if (!message.is_object()) throw bad_field(fmt::format("messages[{}]", i), "expected an object");
    const json* role = field(message, "role");
    if (role == nullptr || !role->is_string()) throw bad_field(fmt::format("messages[{}].role", i), "expected a string");
    const std::string name = role->get<std::string>();
    const std::string content = normalize_message(message_content(message, i));
    if (name == "system" || name == "developer") {
      chat.pieces.push_back("System: " + content + "\n\n");
    } else if (name == "user") {
      chat.pieces.push_back("User: " + content + "\n\n");
    } else if (name == "assistant") {
      // As a reply is generated: "Assistant:" ends the prompt, the text follows.
      chat.pieces.push_back("Assistant:");
      chat.pieces.push_back(assistant_reply_text(content));
    } else {
      throw bad_field(fmt::format("messages[{}].role", i),
                      fmt::format("'{}' is not one of system, developer, user, assistant", name));
    }
    chat.message_ends.push_back(chat.pieces.size());
  }
  chat.pieces.push_back("Assistant:");
  chat.reply_piece = chat.pieces.size();
  switch (chat_template) {
    case ChatTemplate::World:
      chat.reply_prefix.clear();
      break;
    case ChatTemplate::G1:
      // G1's think mode: the model continues the opened "<think" block, then answers.
      chat.reply_prefix = "<think";
      chat.pieces.push_back(" <think");
      break;
  }
  return chat;
}

std::string assistant_reply_text(const std::string& content) { return " " + normalize_message(content) + "\n\n"; }

std::string apply_chat_template(const json& messages, ChatTemplate chat_template, std::string& reply_prefix) {
  ChatPrompt chat = render_chat(messages, chat_template);
  reply_prefix = chat.reply_prefix;
  std::string prompt;
  for (const std::string& piece : chat.pieces) prompt += piece;
  return prompt;
}

GenerationRequest parse_chat_request(const json& body, const Tokenizer& tokenizer, const RequestLimits& limits,
                                     ChatTemplate chat_template) {
  GenerationRequest r = common_settings(body, limits, limits.max_completion_tokens);
  const json* messages = field(body, "messages");
  if (messages == nullptr) throw bad_field("messages", "is required");
  const ChatPrompt chat = render_chat(*messages, chat_template);
  // Each piece is tokenized apart, so that a message boundary is a token boundary: the
  // state there can be cached, and the next turn's prompt extends this one exactly.
  std::vector<int32_t> tokens;
  std::vector<size_t> piece_ends;
  for (const std::string& piece : chat.pieces) {
    const std::vector<int32_t> piece_tokens = tokenizer.encode(piece);
    tokens.insert(tokens.end(), piece_tokens.begin(), piece_tokens.end());
    piece_ends.push_back(tokens.size());
    if (tokens.size() > limits.max_prompt_tokens) break;  // set_prompt_tokens refuses it
  }
  set_prompt_tokens(r, std::move(tokens), limits, "messages");
  for (size_t end : chat.message_ends) r.checkpoints.push_back(piece_ends[end - 1]);
  r.reply_start = piece_ends[chat.reply_piece - 1];
  r.checkpoints.push_back(r.reply_start);
  r.reply_prefix = chat.reply_prefix;
  // The reply ends where the model starts the user's next turn.
  r.options.stop.insert(r.options.stop.begin(), "\n\nUser:");
  return r;
}

const char* finish_reason(StopReason reason) {
  switch (reason) {
    case StopReason::MaxTokens: return "length";
    case StopReason::EndOfText:
    case StopReason::StopString: return "stop";
    case StopReason::Cancelled: return "cancelled";
  }
  return "stop";
}


}  // namespace rwkv::server

namespace rwkv {

ChatTemplate parse_chat_template(const std::string& name) {
  if (name == "world") return ChatTemplate::World;
  if (name == "g1") return ChatTemplate::G1;
  throw Error(fmt::format("unknown chat template '{}': expected world or g1", name));
}

}  // namespace rwkv
