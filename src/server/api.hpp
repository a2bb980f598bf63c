// The OpenAI request shapes read into engine options, and the error shape: everything
// about the JSON of /v1/completions and /v1/chat/completions that is not HTTP.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "rwkv/generation.hpp"
#include "rwkv/server.hpp"
#include "rwkv/tokenizer.hpp"

namespace rwkv::server {

// A request the server refuses, answered as {"error": {"message", "type", "param", "code"}}.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string type, std::string code, const std::string& message, std::string param = "")
      : std::runtime_error(message),
        status(status),
        type(std::move(type)),
        code(std::move(code)),
        param(std::move(param)) {}
  int status;
  std::string type;   // "invalid_request_error", "authentication_error", "server_error"
  std::string code;   // "invalid_value", "model_not_found", "queue_full", ...
  std::string param;  // the request field at fault; empty when none
};

// A 400 for a bad field, the message naming it.
ApiError bad_field(const std::string& field, const std::string& problem);

nlohmann::json error_body(const ApiError& error);

struct RequestLimits {
  uint32_t n_vocab = 0;
  size_t max_prompt_tokens = 0;
  int32_t max_completion_tokens = 0;
  std::string model_id;
};

// What both routes ask for, read from the body.
struct GenerationRequest {
  std::vector<int32_t> prompt_tokens;
  GenerateOptions options;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with usage
  // Text the reply starts with that the model did not generate, because the template put
  // it at the end of the prompt (G1's "<think").
  std::string reply_prefix;
  // Prompt lengths at which a message ends: the prefix-state cache keeps the state there.
  std::vector<size_t> checkpoints;
  // Chat: where the reply's text starts in the prompt (after "Assistant:"), so that the
  // reply can be cached as the next turn will send it back; 0 for completions.
  size_t reply_start = 0;
  // "state": the name of a start state in --state-dir; empty = the model's initial state.
  std::string start_state;
};

// A conversation as the model reads it, in pieces tokenized one by one and concatenated,
// so that message boundaries are token boundaries.
struct ChatPrompt {
  std::vector<std::string> pieces;
  std::vector<size_t> message_ends;  // for each message, the pieces up to its end
  size_t reply_piece = 0;            // the pieces before the reply's text ("...Assistant:")
  std::string reply_prefix;          // the reply's start that the prompt holds (G1's "<think")
};
ChatPrompt render_chat(const nlohmann::json& messages, ChatTemplate chat_template);

// The piece an assistant message with `content` becomes: what follows "Assistant:".
// A finished reply rendered through this is a prefix of the next turn's prompt.
std::string assistant_reply_text(const std::string& content);

// The token ids of a JSON array (field `name`), each checked against the vocabulary.
std::vector<int32_t> token_ids(const nlohmann::json& array, const Tokenizer& tokenizer, const char* name);

// Names "state" may take: letters, digits, '.', '_', '-', not starting with '.'.
bool valid_state_name(const std::string& name);

// Parses a JSON body, turning a syntax error into a 400.
nlohmann::json parse_body(const std::string& body);

// POST /v1/completions. Defaults are OpenAI's: max_tokens 16, temperature 1, top_p 1,
// no penalties, a random seed; penalty_decay (RWKV's) 0.996.
GenerationRequest parse_completion_request(const nlohmann::json& body, const Tokenizer& tokenizer,
                                           const RequestLimits& limits);

// POST /v1/chat/completions: the messages through the template, stopping at the next
// "\n\nUser:" besides any stop strings given. max_tokens defaults to
// limits.max_completion_tokens (OpenAI's default is "as many as fit").
GenerationRequest parse_chat_request(const nlohmann::json& body, const Tokenizer& tokenizer,
                                     const RequestLimits& limits, ChatTemplate chat_template);

// The prompt a conversation becomes; `reply_prefix` gets what ends the prompt inside
// the reply (G1's "<think"). Throws ApiError naming the message at fault.
std::string apply_chat_template(const nlohmann::json& messages, ChatTemplate chat_template, std::string& reply_prefix);

// OpenAI's finish_reason: "stop" (a stop string or end of text) or "length".
const char* finish_reason(StopReason reason);

}  // namespace rwkv::server
