// libFuzzer target: rwkv-server's request parser (src/server/api.hpp). The input is an
// HTTP body, read as rwkv-server reads POST /v1/completions and /v1/chat/completions
// (both chat templates), with the real World vocabulary. A bad request must end in an
// ApiError with a 4xx status and a message whose error body is valid JSON; a request
// that is accepted must give a prompt and options that the engine accepts in turn.
// /tokenize and /detokenize are lambdas in server.cpp, not reachable from api.hpp: the
// body parsing they share with these routes is covered here.
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_support.hpp"
#include "rwkv/error.hpp"
#include "rwkv/generation.hpp"
#include "rwkv/sampler.hpp"
#include "rwkv/server.hpp"
#include "rwkv/tokenizer.hpp"
#include "server/api.hpp"

namespace {

using nlohmann::json;
using rwkv_fuzz::property_failed;

std::unique_ptr<rwkv::Tokenizer> g_tokenizer;
rwkv::server::RequestLimits g_limits;

// The vocabulary committed beside the tiny fixture models: the real World one, so that
// prompts tokenize as they would on a served model.
std::unique_ptr<rwkv::Tokenizer> load_fixture_tokenizer() {
  const std::string path = std::string(RWKV_SOURCE_DIR) + "/tests/fixtures/tiny-v7.0.hf/rwkv_vocab_v20230424.txt";
  try {
    return rwkv::load_tokenizer(rwkv::TokenizerKind::World, path);
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "fuzz_server_request: cannot load the World vocabulary: %s\n", e.what());
    std::abort();
  }
}

// What rwkv-server answers for a refused request (server.cpp's send_error): a 4xx, a
// message, and an error body that serializes (invalid UTF-8 replaced, as the server
// dumps it) to JSON that parses back with a message, type, code and param.
void check_api_error(const rwkv::server::ApiError& e) {
  if (e.status < 400 || e.status > 499) property_failed("ApiError for a request has a status outside 4xx");
  if (std::string(e.what()).empty()) property_failed("ApiError has an empty message");
  if (e.type.empty() || e.code.empty()) property_failed("ApiError has an empty type or code");
  const json body = rwkv::server::error_body(e);
  const std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  json back = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (back.is_discarded()) property_failed("error_body(e) does not dump as valid JSON");
  if (!back.is_object() || !back["error"].is_object()) property_failed("error_body(e) has no error object");
  json& error = back["error"];
  if (!error["message"].is_string() || error["message"].get<std::string>().empty()) {
    property_failed("error_body(e) has no error.message string");
  }
  if (!error["type"].is_string() || !error["code"].is_string()) property_failed("error_body(e) lacks type or code");
  if (!(error["param"].is_null() || (error["param"].is_string() && !e.param.empty()))) {
    property_failed("error_body(e).param is neither null nor the field at fault");
  }
}

// The promises of an accepted request: a non-empty prompt of valid ids within the
// limit, options inside the ranges the engine takes (Generation and Sampler accept them,
// as the scheduler's submit() will), stop strings non-empty.
void check_request(const rwkv::server::GenerationRequest& r) {
  if (r.prompt_tokens.empty()) property_failed("accepted request has an empty prompt");
  if (r.prompt_tokens.size() > g_limits.max_prompt_tokens) property_failed("prompt longer than max_prompt_tokens");
  for (int32_t id : r.prompt_tokens) {
    if (id < 0 || static_cast<uint32_t>(id) >= g_limits.n_vocab) property_failed("prompt token id out of range");
  }
  const rwkv::GenerateOptions& o = r.options;
  if (o.max_tokens < 0 || o.max_tokens > g_limits.max_completion_tokens) property_failed("max_tokens outside limit");
  for (const std::string& s : o.stop) {
    if (s.empty()) property_failed("accepted request has an empty stop string");
  }
  const rwkv::SamplerParams& p = o.sampler;
  if (!(std::isfinite(p.temperature) && p.temperature >= 0)) property_failed("temperature not finite and >= 0");
  if (!(p.top_p > 0 && p.top_p <= 1)) property_failed("top_p outside (0, 1]");
  if (p.top_k < 0) property_failed("top_k < 0");
  if (!(p.min_p >= 0 && p.min_p <= 1)) property_failed("min_p outside [0, 1]");
  if (!(p.penalty_decay >= 0 && p.penalty_decay <= 1)) property_failed("penalty_decay outside [0, 1]");
  if (!(std::isfinite(p.presence_penalty) && std::isfinite(p.frequency_penalty))) property_failed("penalty not finite");
  if (!(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0)) property_failed("repetition_penalty <= 0");
  for (const auto& [id, bias] : p.logit_bias) {
    if (id < 0 || static_cast<uint32_t>(id) >= g_limits.n_vocab) property_failed("logit_bias id out of range");
    if (!(std::isfinite(bias) && std::abs(bias) <= 100)) property_failed("logit_bias value not in [-100, 100]");
  }
  try {
    rwkv::Generation::check_options(o);
    const rwkv::Sampler sampler(p, g_limits.n_vocab);
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "engine refused: %s\n", e.what());
    property_failed("the engine refuses options the request parser accepted");
  }
}

// The names a start state may have (api.hpp's rule, restated here as the oracle).
bool state_name_ok(const std::string& name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

// The fields that the prefix-state cache and --state-dir add to a request, where this
// api.hpp has them (detected at compile time, so the target builds with or without):
// checkpoints are prompt lengths in order, the last a chat's reply start; a start state
// has a valid name.
template <typename Request>
void check_cache_fields(const Request& r, bool chat) {
  if constexpr (requires { r.checkpoints; r.reply_start; }) {
    size_t previous = 0;
    for (size_t c : r.checkpoints) {
      if (c < previous || c > r.prompt_tokens.size()) property_failed("checkpoints out of order or past the prompt");
      previous = c;
    }
    if (chat) {
      if (r.reply_start == 0 || r.reply_start > r.prompt_tokens.size()) property_failed("reply_start outside prompt");
      if (r.checkpoints.empty() || r.checkpoints.back() != r.reply_start) {
        property_failed("the last checkpoint of a chat is not its reply start");
      }
      const std::string head = g_tokenizer->decode(std::span(r.prompt_tokens).first(r.reply_start));
      if (!head.ends_with("Assistant:")) property_failed("the prompt before reply_start does not end with Assistant:");
    } else if (r.reply_start != 0) {
      property_failed("a completion has a reply_start");
    }
  }
  if constexpr (requires { r.start_state; }) {
    if (!r.start_state.empty() && !state_name_ok(r.start_state)) {
      property_failed("accepted start state has an invalid name");
    }
  }
}

// A chat prompt ends where the template opens the reply, and the reply stops at the
// user's next turn.
void check_chat(const rwkv::server::GenerationRequest& r, rwkv::ChatTemplate chat_template) {
  check_request(r);
  check_cache_fields(r, /*chat=*/true);
  const std::string prompt = g_tokenizer->decode(r.prompt_tokens);
  const std::string end = chat_template == rwkv::ChatTemplate::G1 ? "Assistant: <think" : "Assistant:";
  if (!prompt.ends_with(end)) {
    property_failed("chat prompt does not end with the template's reply opening");
  }
  if (r.reply_prefix != (chat_template == rwkv::ChatTemplate::G1 ? "<think" : "")) {
    property_failed("reply_prefix does not match the chat template");
  }
  if (r.options.stop.empty() || r.options.stop.front() != "\n\nUser:") property_failed("chat stop lacks \\n\\nUser:");
}

// Runs one parse; ApiError (checked) and rwkv::Error are the expected refusals, anything
// else escapes to libFuzzer as a finding.
template <typename Parse>
void refusal_ok(Parse parse) {
  try {
    parse();
  } catch (const rwkv::server::ApiError& e) {
    check_api_error(e);
  } catch (const rwkv::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_tokenizer = load_fixture_tokenizer();
  g_limits.n_vocab = static_cast<uint32_t>(g_tokenizer->vocab_size());
  g_limits.max_prompt_tokens = 4096;
  g_limits.max_completion_tokens = 4096;
  g_limits.model_id = "m";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  json body;
  try {
    body = rwkv::server::parse_body(text);
  } catch (const rwkv::server::ApiError& e) {
    check_api_error(e);
    return 0;
  }
  refusal_ok([&] {
    const rwkv::server::GenerationRequest r = rwkv::server::parse_completion_request(body, *g_tokenizer, g_limits);
    check_request(r);
    check_cache_fields(r, /*chat=*/false);
  });
  for (const rwkv::ChatTemplate chat_template : {rwkv::ChatTemplate::World, rwkv::ChatTemplate::G1}) {
    refusal_ok([&] {
      check_chat(rwkv::server::parse_chat_request(body, *g_tokenizer, g_limits, chat_template), chat_template);
    });
  }
  return 0;
}
