// The C API (include/rwkv.h) over the public C++ API. Every entry point catches every
// exception: errors become -1 or NULL plus a per-thread message, never an unwinding
// through C frames.
#include "rwkv.h"

#include <fmt/format.h>

#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "rwkv/convert.hpp"
#include "rwkv/error.hpp"
#include "rwkv/model.hpp"
#include "rwkv/sampler.hpp"
#include "rwkv/state.hpp"
#include "rwkv/state_file.hpp"
#include "rwkv/threads.hpp"
#include "rwkv/tokenizer.hpp"

struct rwkv_model {
  std::shared_ptr<const rwkv::Model> model;
};

struct rwkv_state {
  std::shared_ptr<const rwkv::Model> model;  // keeps the model alive while the state is
  rwkv::State state;
};

struct rwkv_tokenizer {
  std::shared_ptr<const rwkv::Tokenizer> tokenizer;
};

struct rwkv_decoder {
  std::shared_ptr<const rwkv::Tokenizer> tokenizer;  // kept alive for `stream`
  rwkv::StreamDecoder stream;
  std::string text;  // what the last push/flush returned
};

struct rwkv_sampler {
  rwkv::Sampler sampler;
  uint32_t n_vocab;
};

namespace {

thread_local std::string last_error;
thread_local std::string default_model_path_result;

// Runs `body`; on any exception records "function: message" and returns `failed`.
template <typename Result, typename Body>
Result guarded(const char* function, Result failed, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    try {
      last_error = fmt::format("{}: out of memory", function);
    } catch (...) {
    }
  } catch (const std::exception& e) {
    try {
      last_error = fmt::format("{}: {}", function, e.what());
    } catch (...) {
    }
  } catch (...) {
    try {
      last_error = fmt::format("{}: unknown error", function);
    } catch (...) {
    }
  }
  return failed;
}

template <typename T>
T& need(T* p, const char* argument) {
  if (p == nullptr) throw rwkv::Error(fmt::format("{} is NULL", argument));
  return *p;
}

std::string need_string(const char* s, const char* argument) {
  if (s == nullptr) throw rwkv::Error(fmt::format("{} is NULL", argument));
  return s;
}

int32_t as_int32(uint32_t v) { return static_cast<int32_t>(v); }

void check_state_model(const rwkv_state& state, const rwkv::Model& model) {
  const rwkv::State reference = model.new_state();
  if (state.state.data.size() != reference.data.size() || state.state.floats_per_layer != reference.floats_per_layer) {
    throw rwkv::Error(fmt::format("the state belongs to {}, a model of another shape than {}", state.model->path(),
                                  model.path()));
  }
}

int eval_tokens(const char* function, const rwkv_model* model, rwkv_state* state, const int32_t* tokens, size_t n,
                float* logits, bool every_token) {
  return guarded(function, -1, [&] {
    const rwkv::Model& m = *need(model, "model").model;
    rwkv_state& s = need(state, "state");
    if (tokens == nullptr) throw rwkv::Error("tokens is NULL");
    if (n == 0) throw rwkv::Error("n is 0: at least one token is needed");
    const size_t n_vocab = m.info().n_vocab;
    const size_t n_logits = logits == nullptr ? 0 : (every_token ? n * n_vocab : n_vocab);
    m.forward_sequence({tokens, n}, s.state, {logits, n_logits});
    return 0;
  });
}

}  // namespace

extern "C" {

int32_t rwkv_api_version(void) { return RWKV_API_VERSION; }

const char* rwkv_version(void) { return RWKV_VERSION_STRING; }

const char* rwkv_last_error(void) { return last_error.c_str(); }

int rwkv_set_threads(int32_t n_threads) {
  return guarded("rwkv_set_threads", -1, [&] {
    if (n_threads < 0) throw rwkv::Error(fmt::format("n_threads is {}; expected 0 (one per core) or more", n_threads));
    const unsigned wanted = n_threads == 0 ? rwkv::physical_core_count() : static_cast<unsigned>(n_threads);
    try {
      rwkv::set_thread_count(wanted);
    } catch (const rwkv::Error&) {
      if (rwkv::thread_count() != wanted) throw;  // asking again for the count in use is fine
    }
    return 0;
  });
}

int32_t rwkv_get_threads(void) {
  return guarded("rwkv_get_threads", int32_t(-1), [] { return static_cast<int32_t>(rwkv::thread_count()); });
}

const char* rwkv_default_model_path(void) {
  return guarded("rwkv_default_model_path", static_cast<const char*>(nullptr), [] {
    default_model_path_result = rwkv::default_model_path();
    return default_model_path_result.c_str();
  });
}

rwkv_model* rwkv_model_load(const char* path) {
  return guarded("rwkv_model_load", static_cast<rwkv_model*>(nullptr), [&] {
    return new rwkv_model{rwkv::Model::load(need_string(path, "path"))};
  });
}

void rwkv_model_free(rwkv_model* model) { delete model; }

int32_t rwkv_model_n_vocab(const rwkv_model* model) {
  return guarded("rwkv_model_n_vocab", int32_t(-1), [&] { return as_int32(need(model, "model").model->info().n_vocab); });
}

int32_t rwkv_model_n_layer(const rwkv_model* model) {
  return guarded("rwkv_model_n_layer", int32_t(-1), [&] { return as_int32(need(model, "model").model->info().n_layer); });
}

int32_t rwkv_model_n_embd(const rwkv_model* model) {
  return guarded("rwkv_model_n_embd", int32_t(-1), [&] { return as_int32(need(model, "model").model->info().n_embd); });
}

int32_t rwkv_model_n_head(const rwkv_model* model) {
  return guarded("rwkv_model_n_head", int32_t(-1), [&] { return as_int32(need(model, "model").model->info().n_head); });
}

int32_t rwkv_model_head_size(const rwkv_model* model) {
  return guarded("rwkv_model_head_size", int32_t(-1),
                 [&] { return as_int32(need(model, "model").model->info().head_size); });
}

const char* rwkv_model_arch(const rwkv_model* model) {
  return guarded("rwkv_model_arch", static_cast<const char*>(nullptr),
                 [&] { return rwkv::arch_name(need(model, "model").model->info().arch); });
}

const char* rwkv_model_tokenizer_kind(const rwkv_model* model) {
  return guarded("rwkv_model_tokenizer_kind", static_cast<const char*>(nullptr),
                 [&] { return rwkv::tokenizer_kind_name(need(model, "model").model->info().tokenizer); });
}

size_t rwkv_model_state_size(const rwkv_model* model) {
  return guarded("rwkv_model_state_size", size_t(0),
                 [&] { return need(model, "model").model->new_state().data.size(); });
}

int rwkv_convert(const char* input_path, const char* output_path, const char* type) {
  return guarded("rwkv_convert", -1, [&] {
    rwkv::ConvertOptions options;
    options.type = type == nullptr ? "" : type;
    rwkv::convert_model(need_string(input_path, "input_path"), need_string(output_path, "output_path"), options);
    return 0;
  });
}

int rwkv_quantize(const char* input_path, const char* output_path, const char* type) {
  return guarded("rwkv_quantize", -1, [&] {
    rwkv::ConvertOptions options;
    options.type = need_string(type, "type");
    rwkv::quantize_model(need_string(input_path, "input_path"), need_string(output_path, "output_path"), options);
    return 0;
  });
}

rwkv_state* rwkv_state_new(const rwkv_model* model) {
  return guarded("rwkv_state_new", static_cast<rwkv_state*>(nullptr), [&] {
    const auto& m = need(model, "model").model;
    return new rwkv_state{m, m->new_state()};
  });
}

rwkv_state* rwkv_state_copy(const rwkv_state* state) {
  return guarded("rwkv_state_copy", static_cast<rwkv_state*>(nullptr),
                 [&] { return new rwkv_state(need(state, "state")); });
}

void rwkv_state_free(rwkv_state* state) { delete state; }

int rwkv_state_reset(rwkv_state* state) {
  return guarded("rwkv_state_reset", -1, [&] {
    rwkv_state& s = need(state, "state");
    s.state = s.model->new_state();
    return 0;
  });
}

int rwkv_state_assign(rwkv_state* to, const rwkv_state* from) {
  return guarded("rwkv_state_assign", -1, [&] {
    rwkv_state& target = need(to, "to");
    const rwkv_state& source = need(from, "from");
    check_state_model(source, *target.model);
    target.state = source.state;
    return 0;
  });
}

float* rwkv_state_data(rwkv_state* state) {
  return guarded("rwkv_state_data", static_cast<float*>(nullptr),
                 [&] { return need(state, "state").state.data.data(); });
}

size_t rwkv_state_size(const rwkv_state* state) {
  return guarded("rwkv_state_size", size_t(0), [&] { return need(state, "state").state.data.size(); });
}

int rwkv_state_save(const rwkv_state* state, const char* path) {
  return guarded("rwkv_state_save", -1, [&] {
    const rwkv_state& s = need(state, "state");
    rwkv::save_state(need_string(path, "path"), *s.model, s.state);
    return 0;
  });
}

rwkv_state* rwkv_state_load(const rwkv_model* model, const char* path) {
  return guarded("rwkv_state_load", static_cast<rwkv_state*>(nullptr), [&] {
    const auto& m = need(model, "model").model;
    return new rwkv_state{m, rwkv::load_state(need_string(path, "path"), *m)};
  });
}

rwkv_state* rwkv_state_load_tuned(const rwkv_model* model, const char* pth_path) {
  return guarded("rwkv_state_load_tuned", static_cast<rwkv_state*>(nullptr), [&] {
    const auto& m = need(model, "model").model;
    return new rwkv_state{m, rwkv::load_tuned_state(need_string(pth_path, "pth_path"), *m)};
  });
}

int64_t rwkv_state_to_bytes(const rwkv_state* state, void* out, size_t capacity) {
  return guarded("rwkv_state_to_bytes", int64_t(-1), [&] {
    const rwkv_state& s = need(state, "state");
    const std::string bytes = rwkv::state_to_bytes(*s.model, s.state);
    if (out != nullptr && capacity >= bytes.size()) std::memcpy(out, bytes.data(), bytes.size());
    return static_cast<int64_t>(bytes.size());
  });
}

rwkv_state* rwkv_state_from_bytes(const rwkv_model* model, const void* bytes, size_t n_bytes) {
  return guarded("rwkv_state_from_bytes", static_cast<rwkv_state*>(nullptr), [&] {
    const auto& m = need(model, "model").model;
    if (bytes == nullptr && n_bytes > 0) throw rwkv::Error("bytes is NULL");
    const std::string_view view(static_cast<const char*>(bytes), n_bytes);
    return new rwkv_state{m, rwkv::state_from_bytes(view, *m)};
  });
}

int rwkv_eval(const rwkv_model* model, rwkv_state* state, const int32_t* tokens, size_t n, float* logits) {
  return eval_tokens("rwkv_eval", model, state, tokens, n, logits, false);
}

int rwkv_eval_all(const rwkv_model* model, rwkv_state* state, const int32_t* tokens, size_t n, float* logits) {
  return eval_tokens("rwkv_eval_all", model, state, tokens, n, logits, true);
}

int rwkv_eval_batch(const rwkv_model* model, const rwkv_batch_item* items, size_t n_items) {
  return guarded("rwkv_eval_batch", -1, [&] {
    const rwkv::Model& m = *need(model, "model").model;
    if (items == nullptr && n_items > 0) throw rwkv::Error("items is NULL");
    std::vector<rwkv::BatchItem> batch(n_items);
    for (size_t i = 0; i < n_items; ++i) {
      const rwkv_batch_item& item = items[i];
      if (item.tokens == nullptr) throw rwkv::Error(fmt::format("items[{}].tokens is NULL", i));
      if (item.n_tokens == 0) throw rwkv::Error(fmt::format("items[{}].n_tokens is 0", i));
      if (item.state == nullptr) throw rwkv::Error(fmt::format("items[{}].state is NULL", i));
      if (item.logits == nullptr && item.n_logits != 0) {
        throw rwkv::Error(fmt::format("items[{}].logits is NULL with n_logits {}", i, item.n_logits));
      }
      batch[i] = {{item.tokens, item.n_tokens}, &item.state->state, {item.logits, item.n_logits}};
    }
    m.forward_batch(batch);
    return 0;
  });
}

rwkv_tokenizer* rwkv_tokenizer_load(const char* kind, const char* vocab_path) {
  return guarded("rwkv_tokenizer_load", static_cast<rwkv_tokenizer*>(nullptr), [&] {
    const rwkv::TokenizerKind k = rwkv::parse_tokenizer_kind(need_string(kind, "kind"));
    const std::string path = vocab_path == nullptr ? "" : vocab_path;
    if (k != rwkv::TokenizerKind::Bytes && path.empty()) {
      throw rwkv::Error(fmt::format("vocab_path is needed for a {} tokenizer", rwkv::tokenizer_kind_name(k)));
    }
    return new rwkv_tokenizer{rwkv::load_tokenizer(k, path)};
  });
}

rwkv_tokenizer* rwkv_tokenizer_for_model(const rwkv_model* model, const char* vocab_path) {
  return guarded("rwkv_tokenizer_for_model", static_cast<rwkv_tokenizer*>(nullptr), [&] {
    const rwkv::Model& m = *need(model, "model").model;
    return new rwkv_tokenizer{rwkv::load_model_tokenizer(m, vocab_path == nullptr ? "" : vocab_path)};
  });
}

void rwkv_tokenizer_free(rwkv_tokenizer* tokenizer) { delete tokenizer; }

int32_t rwkv_tokenizer_vocab_size(const rwkv_tokenizer* tokenizer) {
  return guarded("rwkv_tokenizer_vocab_size", int32_t(-1),
                 [&] { return need(tokenizer, "tokenizer").tokenizer->vocab_size(); });
}

const char* rwkv_tokenizer_kind(const rwkv_tokenizer* tokenizer) {
  return guarded("rwkv_tokenizer_kind", static_cast<const char*>(nullptr),
                 [&] { return rwkv::tokenizer_kind_name(need(tokenizer, "tokenizer").tokenizer->kind()); });
}

int64_t rwkv_tokenize(const rwkv_tokenizer* tokenizer, const char* text, size_t n_bytes, int32_t* out,
                      size_t capacity) {
  return guarded("rwkv_tokenize", int64_t(-1), [&] {
    const rwkv::Tokenizer& t = *need(tokenizer, "tokenizer").tokenizer;
    if (text == nullptr && n_bytes > 0) throw rwkv::Error("text is NULL");
    const std::vector<int32_t> ids = t.encode(std::string_view(text == nullptr ? "" : text, n_bytes));
    if (out != nullptr && capacity >= ids.size()) std::copy(ids.begin(), ids.end(), out);
    return static_cast<int64_t>(ids.size());
  });
}

int64_t rwkv_detokenize(const rwkv_tokenizer* tokenizer, const int32_t* ids, size_t n_ids, char* out,
                        size_t capacity) {
  return guarded("rwkv_detokenize", int64_t(-1), [&] {
    const rwkv::Tokenizer& t = *need(tokenizer, "tokenizer").tokenizer;
    if (ids == nullptr && n_ids > 0) throw rwkv::Error("ids is NULL");
    const std::string bytes = t.decode({ids, n_ids});
    if (out != nullptr && capacity >= bytes.size()) std::memcpy(out, bytes.data(), bytes.size());
    return static_cast<int64_t>(bytes.size());
  });
}

rwkv_decoder* rwkv_decoder_new(const rwkv_tokenizer* tokenizer) {
  return guarded("rwkv_decoder_new", static_cast<rwkv_decoder*>(nullptr), [&] {
    const auto& t = need(tokenizer, "tokenizer").tokenizer;
    return new rwkv_decoder{t, rwkv::StreamDecoder(*t), {}};
  });
}

void rwkv_decoder_free(rwkv_decoder* decoder) { delete decoder; }

const char* rwkv_decoder_push(rwkv_decoder* decoder, int32_t id, size_t* n_bytes) {
  return guarded("rwkv_decoder_push", static_cast<const char*>(nullptr), [&] {
    rwkv_decoder& d = need(decoder, "decoder");
    d.text = d.stream.push(id);
    if (n_bytes != nullptr) *n_bytes = d.text.size();
    return d.text.c_str();
  });
}

const char* rwkv_decoder_flush(rwkv_decoder* decoder, size_t* n_bytes) {
  return guarded("rwkv_decoder_flush", static_cast<const char*>(nullptr), [&] {
    rwkv_decoder& d = need(decoder, "decoder");
    d.text = d.stream.flush();
    if (n_bytes != nullptr) *n_bytes = d.text.size();
    return d.text.c_str();
  });
}

rwkv_sampler_params rwkv_sampler_default_params(void) {
  const rwkv::SamplerParams defaults;
  rwkv_sampler_params p{};
  p.temperature = defaults.temperature;
  p.top_k = defaults.top_k;
  p.top_p = defaults.top_p;
  p.min_p = defaults.min_p;
  p.repetition_penalty = defaults.repetition_penalty;
  p.presence_penalty = defaults.presence_penalty;
  p.frequency_penalty = defaults.frequency_penalty;
  p.penalty_decay = defaults.penalty_decay;
  p.seed = defaults.seed;
  p.order = defaults.order == rwkv::SamplingOrder::Llama ? RWKV_SAMPLING_LLAMA : RWKV_SAMPLING_OFFICIAL;
  return p;
}

rwkv_sampler* rwkv_sampler_new(const rwkv_sampler_params* params, int32_t n_vocab) {
  return guarded("rwkv_sampler_new", static_cast<rwkv_sampler*>(nullptr), [&] {
    const rwkv_sampler_params& p = need(params, "params");
    if (n_vocab <= 0) throw rwkv::Error(fmt::format("n_vocab is {}; expected a positive count", n_vocab));
    rwkv::SamplerParams s;
    s.temperature = p.temperature;
    s.top_k = p.top_k;
    s.top_p = p.top_p;
    s.min_p = p.min_p;
    s.repetition_penalty = p.repetition_penalty;
    s.presence_penalty = p.presence_penalty;
    s.frequency_penalty = p.frequency_penalty;
    s.penalty_decay = p.penalty_decay;
    s.seed = p.seed;
    if (p.order == RWKV_SAMPLING_OFFICIAL) {
      s.order = rwkv::SamplingOrder::Official;
    } else if (p.order == RWKV_SAMPLING_LLAMA) {
      s.order = rwkv::SamplingOrder::Llama;
    } else {
      throw rwkv::Error(fmt::format("params.order is {}; expected RWKV_SAMPLING_OFFICIAL (0) or RWKV_SAMPLING_LLAMA (1)",
                                    p.order));
    }
    if (p.n_bias > 0 && (p.bias_ids == nullptr || p.bias_values == nullptr)) {
      throw rwkv::Error(fmt::format("params.n_bias is {} but bias_ids or bias_values is NULL", p.n_bias));
    }
    for (size_t i = 0; i < p.n_bias; ++i) s.logit_bias[p.bias_ids[i]] += p.bias_values[i];
    if (p.n_banned > 0 && p.banned_ids == nullptr) {
      throw rwkv::Error(fmt::format("params.n_banned is {} but banned_ids is NULL", p.n_banned));
    }
    s.banned_tokens.assign(p.banned_ids, p.banned_ids + p.n_banned);
    const auto vocab = static_cast<uint32_t>(n_vocab);
    return new rwkv_sampler{rwkv::Sampler(s, vocab), vocab};
  });
}

void rwkv_sampler_free(rwkv_sampler* sampler) { delete sampler; }

int32_t rwkv_sampler_sample(rwkv_sampler* sampler, float* logits) {
  return guarded("rwkv_sampler_sample", int32_t(-1), [&] {
    rwkv_sampler& s = need(sampler, "sampler");
    if (logits == nullptr) throw rwkv::Error("logits is NULL");
    return s.sampler.sample({logits, s.n_vocab});
  });
}

int rwkv_sampler_accept(rwkv_sampler* sampler, int32_t token, int exempt) {
  return guarded("rwkv_sampler_accept", -1, [&] {
    need(sampler, "sampler").sampler.accept(token, exempt != 0);
    return 0;
  });
}

int rwkv_sampler_reset(rwkv_sampler* sampler) {
  return guarded("rwkv_sampler_reset", -1, [&] {
    need(sampler, "sampler").sampler.reset_history();
    return 0;
  });
}

}  // extern "C"
