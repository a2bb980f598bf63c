#include "rwkv/server.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "rwkv/error.hpp"
#include "rwkv/io.hpp"
#include "rwkv/state_file.hpp"
#include "server/api.hpp"
#include "server/chat_page.hpp"
#include "server/scheduler.hpp"

namespace rwkv {

using nlohmann::json;
using server::ApiError;

namespace {

// How long a streaming handler waits for text before looking again; bounds how late it
// notices a stop.
constexpr std::chrono::milliseconds kStreamPoll{100};
// A non-streamed answer still running after ServerOptions::plain_answer_seconds is sent
// chunked, with a space every kAnswerHeartbeat, so that a client gone is noticed.
constexpr std::chrono::milliseconds kAnswerHeartbeat{250};

// What a sequence that failed answers: 503 when the server is stopping, else 500.
ApiError failure_error(const server::SequenceChannel::Update& update) {
  if (update.failure == server::Failure::ShuttingDown) {
    return ApiError(503, "server_error", "shutting_down", update.failure_message);
  }
  return ApiError(500, "server_error", "internal_error", update.failure_message);
}
// An idle keep-alive connection holds an HTTP thread this long; also bounds stop().
constexpr time_t kKeepAliveSeconds = 2;
// Beyond this many HTTP threads, further connections wait in httplib's own queue (and
// are answered 503 only once they reach a handler).
constexpr size_t kMaxHttpThreads = 512;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Requests counted per route and status, for /metrics.
class RequestCounter {
 public:
  void count(const std::string& route, int status) {
    std::lock_guard lock(mutex_);
    ++counts_[{route, status}];
  }
  std::map<std::pair<std::string, int>, uint64_t> snapshot() const {
    std::lock_guard lock(mutex_);
    return counts_;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> counts_;
};

// Compares without stopping at the first difference, so that timing tells nothing
// about how much of a key was right (its length is no secret worth hiding).
bool same_key(std::string_view given, std::string_view key) {
  if (given.size() != key.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < key.size(); ++i) difference |= static_cast<unsigned char>(given[i] ^ key[i]);
  return difference == 0;
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::string model_id;
  int64_t created = std::time(nullptr);
  server::RequestLimits limits;

  std::unique_ptr<server::Scheduler> scheduler;
  httplib::Server http;
  std::thread listener;
  int port = -1;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> next_id{1};
  // Generation handlers still writing, so that stop() closes no stream mid-chunk.
  std::atomic<int> handlers_in_flight{0};
  std::mutex stop_mutex;
  bool stopped = false;
  RequestCounter requests;

  // --state-dir's states by name, loaded at start().
  std::map<std::string, std::shared_ptr<const State>> start_states;

  void load_start_states();
  std::shared_ptr<const State> start_state(const std::string& name) const;
  void routes();
  json model_object() const {
    return {{"id", model_id}, {"object", "model"}, {"created", created}, {"owned_by", "rwkv"}};
  }
  void send_error(httplib::Response& res, const ApiError& error);
  void generate(const httplib::Request& req, httplib::Response& res, bool chat);
  std::string metrics_text() const;
};

void Server::Impl::load_start_states() {
  if (options.state_dir.empty()) return;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(options.state_dir, ec)) {
    throw Error(fmt::format("server: --state-dir {}: not a folder", printable(options.state_dir)));
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(options.state_dir)) {
    const fs::path& path = entry.path();
    if (!entry.is_regular_file() || (path.extension() != ".pth" && path.extension() != ".state")) continue;
    files.push_back(path);
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& path : files) {
    const std::string name = path.stem().string();
    if (!server::valid_state_name(name)) {
      throw Error(fmt::format("server: {}: a state's name may hold only letters, digits, '.', '_' and '-'",
                              printable(path.string())));
    }
    if (start_states.count(name) != 0) {
      throw Error(fmt::format("server: --state-dir {} has two states named '{}' (.pth and .state)",
                              printable(options.state_dir), name));
    }
    State state = path.extension() == ".pth" ? load_tuned_state(path.string(), *model) : load_state(path.string(), *model);
    start_states.emplace(name, std::make_shared<const State>(std::move(state)));
  }
}

std::shared_ptr<const State> Server::Impl::start_state(const std::string& name) const {
  if (options.state_dir.empty()) throw server::bad_field("state", "this server has no --state-dir");
  auto it = start_states.find(name);
  if (it != start_states.end()) return it->second;
  std::string known;
  for (const auto& [n, state] : start_states) {
    if (known.size() > 200) {
      known += ", ...";
      break;
    }
    known += (known.empty() ? "" : ", ") + n;
  }
  throw server::bad_field("state", fmt::format("no state named '{}' in --state-dir (there: {})", name,
                                               known.empty() ? "none" : known));
}

void Server::Impl::send_error(httplib::Response& res, const ApiError& error) {
  res.status = error.status;
  if (error.code == "queue_full" || error.code == "shutting_down") res.set_header("Retry-After", "1");
  res.set_content(dump(server::error_body(error)), "application/json");
}

void Server::Impl::generate(const httplib::Request& req, httplib::Response& res, bool chat) {
  if (stopping) throw ApiError(503, "server_error", "shutting_down", "the server is shutting down");
  const json body = server::parse_body(req.body);
  server::GenerationRequest request = chat ? server::parse_chat_request(body, *tokenizer, limits, options.chat_template)
                                           : server::parse_completion_request(body, *tokenizer, limits);
  server::SequenceRequest sequence;
  sequence.prompt_tokens = request.prompt_tokens;
  sequence.options = request.options;
  sequence.checkpoints = request.checkpoints;
  if (!request.start_state.empty()) {
    sequence.start_state = start_state(request.start_state);
    sequence.start_state_name = request.start_state;
  }
  if (chat) {
    // The next turn sends this reply back as an assistant message: cache it that way.
    sequence.reply_start = request.reply_start;
    sequence.reply_tokens = [tokenizer = tokenizer, prefix = request.reply_prefix](const std::string& text) {
      return tokenizer->encode(server::assistant_reply_text(prefix + text));
    };
  }
  std::shared_ptr<server::SequenceChannel> channel;
  try {
    channel = scheduler->submit(std::move(sequence));
  } catch (const server::QueueFull& e) {
    throw ApiError(503, "server_error", "queue_full", e.what());
  } catch (const server::ShuttingDown& e) {
    throw ApiError(503, "server_error", "shutting_down", e.what());
  } catch (const Error& e) {
    throw ApiError(400, "invalid_request_error", "invalid_value", e.what());
  }

  const std::string id = fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", next_id++);
  const int64_t created_at = std::time(nullptr);
  const size_t prompt_tokens = request.prompt_tokens.size();
  auto usage = [prompt_tokens](const server::SequenceChannel::Update& update) {
    return json{{"prompt_tokens", prompt_tokens},
                {"completion_tokens", update.completion_tokens},
                {"total_tokens", prompt_tokens + update.completion_tokens},
                {"prompt_tokens_details", {{"cached_tokens", update.cached_tokens}}}};
  };
  // One choice in the shape of its route: text, a whole message, or a delta.
  auto choice = [chat](const std::string& text, const json& finish, bool streaming, bool first) {
    json c = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
    if (!chat) {
      c["text"] = text;
    } else if (!streaming) {
      c["message"] = {{"role", "assistant"}, {"content", text}};
    } else {
      json delta = json::object();
      if (first) delta["role"] = "assistant";
      if (!text.empty() || first) delta["content"] = text;
      c["delta"] = delta;
    }
    return c;
  };
  const std::string object = chat ? (request.stream ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  auto envelope = [id, created_at, object, model = model_id](json choices) {
    return json{{"id", id}, {"object", object}, {"created", created_at}, {"model", model},
                {"choices", std::move(choices)}};
  };

  if (!request.stream) {
    // The whole answer as one JSON body. Most requests finish quickly and get it plain,
    // with its true status. One still running after plain_answer_seconds is answered with a
    // chunked body that starts with spaces (JSON allows them), a few a second while it
    // runs: a client that has gone is then noticed by a failed write and its sequence
    // freed, as for a stream. Its status (200) is sent early, so a failure after that
    // comes as an error body.
    auto text = std::make_shared<std::string>(request.reply_prefix);
    // The answer's body once finished; a failure is thrown as the ApiError it is.
    auto answer = [text, choice, envelope, usage](const server::SequenceChannel::Update& update) {
      if (update.failure != server::Failure::None) throw failure_error(update);
      json out = envelope(json::array({choice(*text, server::finish_reason(update.reason), false, true)}));
      out["usage"] = usage(update);
      return dump(out);
    };
    server::SequenceChannel::Update update;
    const auto plain_until =
        std::chrono::steady_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(options.plain_answer_seconds * 1000));
    do {
      update = channel->take(kStreamPoll);
      *text += update.text;
    } while (!update.finished && std::chrono::steady_clock::now() < plain_until);
    if (update.finished) {
      res.set_content(answer(update), "application/json");
      return;
    }
    auto done = std::make_shared<bool>(false);
    auto last_write = std::make_shared<std::chrono::steady_clock::time_point>();  // the first space at once
    ++handlers_in_flight;
    res.set_chunked_content_provider(
        "application/json",
        [channel, text, answer, done, last_write](size_t, httplib::DataSink& sink) {
          const server::SequenceChannel::Update update = channel->take(kStreamPoll);
          *text += update.text;
          if (!update.finished) {
            const auto now = std::chrono::steady_clock::now();
            if (now - *last_write < kAnswerHeartbeat) return true;
            *last_write = now;
            if (!sink.write(" ", 1)) {
              channel->cancel();  // the client is gone: free its sequence
              return false;
            }
            return true;
          }
          std::string body;
          try {
            body = answer(update);
          } catch (const ApiError& error) {
            body = dump(server::error_body(error));  // the status (200) has gone already
          }
          *done = true;
          const bool ok = sink.write(body.data(), body.size());
          if (ok) sink.done();
          return ok;
        },
        [this, channel, done](bool) {
          if (!*done) channel->cancel();
          --handlers_in_flight;
        });
    return;
  }

  struct StreamState {
    bool first = true;
    bool done = false;
  };
  auto state = std::make_shared<StreamState>();
  const std::string prefix = request.reply_prefix;
  const bool include_usage = request.include_usage;
  ++handlers_in_flight;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [channel, state, prefix, include_usage, choice, envelope, usage](size_t, httplib::DataSink& sink) {
        auto send = [&](const json& event) {
          const std::string frame = "data: " + dump(event) + "\n\n";
          return sink.write(frame.data(), frame.size());
        };
        server::SequenceChannel::Update update = channel->take(kStreamPoll);
        std::string text = std::move(update.text);
        if (state->first) text = prefix + text;
        if (!text.empty() || (state->first && update.finished)) {
          if (!send(envelope(json::array({choice(text, nullptr, true, state->first)})))) {
            channel->cancel();  // the client is gone: free its sequence
            return false;
          }
          state->first = false;
        }
        if (!update.finished) return true;
        bool ok = true;
        if (update.failure != server::Failure::None) {
          ok = send(server::error_body(failure_error(update)));
        } else {
          ok = send(envelope(json::array({choice("", server::finish_reason(update.reason), true, false)})));
          if (ok && include_usage) {
            json last = envelope(json::array());
            last["usage"] = usage(update);
            ok = send(last);
          }
        }
        static constexpr std::string_view kDone = "data: [DONE]\n\n";
        if (ok) ok = sink.write(kDone.data(), kDone.size());
        if (ok) sink.done();
        state->done = true;
        return ok;
      },
      [this, channel, state](bool) {
        // Whatever ended the response (finished, a write failure, the server stopping),
        // a sequence still running has nobody to read it.
        if (!state->done) channel->cancel();
        --handlers_in_flight;
      });
}

std::string Server::Impl::metrics_text() const {
  const server::SchedulerStats s = scheduler->stats();
  std::string out;
  out += "# HELP rwkv_requests_total HTTP requests answered, by route and status.\n";
  out += "# TYPE rwkv_requests_total counter\n";
  for (const auto& [key, count] : requests.snapshot()) {
    out += fmt::format("rwkv_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, count);
  }
  auto metric = [&](const char* name, const char* type, const char* help, uint64_t value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  metric("rwkv_prompt_tokens_total", "counter", "Prompt tokens fed to the model.", s.prompt_tokens);
  metric("rwkv_completion_tokens_total", "counter", "Tokens generated.", s.completion_tokens);
  metric("rwkv_queue_length", "gauge", "Requests waiting for a sequence slot.", s.queued);
  metric("rwkv_active_sequences", "gauge", "Sequences being stepped.", s.active);
  metric("rwkv_batch_sequences", "gauge", "Sequences in the latest step.", s.last_batch_sequences);
  metric("rwkv_batch_tokens", "gauge", "Tokens (prompt chunks and decode tokens) in the latest step.",
         s.last_batch_tokens);
  metric("rwkv_steps_total", "counter", "Batched passes over the weights.", s.steps);
  metric("rwkv_cancelled_sequences_total", "counter", "Sequences ended early (client gone, shutdown).", s.cancelled);
  metric("rwkv_state_cache_hits_total", "counter", "Prompts that started from a cached prefix state.", s.cache.hits);
  metric("rwkv_state_cache_misses_total", "counter", "Prompts that found no cached prefix state.", s.cache.misses);
  metric("rwkv_state_cache_cached_tokens_total", "counter", "Prompt tokens not fed thanks to cached states.",
         s.cache.hit_tokens);
  metric("rwkv_state_cache_entries", "gauge", "States in the prefix-state cache.", s.cache.entries);
  metric("rwkv_state_cache_bytes", "gauge", "Bytes the prefix-state cache holds.", s.cache.bytes);
  metric("rwkv_state_cache_budget_bytes", "gauge", "The prefix-state cache's budget (--state-cache-mb).",
         s.cache.budget_bytes);
  metric("rwkv_state_cache_evictions_total", "counter", "States dropped to stay within the budget.",
         s.cache.evictions);
  metric("rwkv_reply_fills_total", "counter", "Finished chat replies fed into the cache for the next turn.",
         s.reply_fills);
  return out;
}

void Server::Impl::routes() {
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Content-Security-Policy", server::kChatPageContentSecurityPolicy);
    res.set_header("X-Content-Type-Options", "nosniff");
    const std::string_view page = server::chat_page_html();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (stopping) {
      res.status = 503;
      res.set_content(R"({"status":"shutting down"})", "application/json");
      return;
    }
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump({{"object", "list"}, {"data", json::array({model_object()})}}), "application/json");
  });
  http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string requested = req.matches[1].str();
    if (requested != model_id) {
      throw ApiError(404, "invalid_request_error", "model_not_found",
                     fmt::format("no model '{}' here (this server serves '{}')", printable(requested), model_id),
                     "model");
    }
    res.set_content(dump(model_object()), "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(), "text/plain; version=0.0.4");
  });
  http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    const json body = server::parse_body(req.body);
    if (!body.is_object() || !body.contains("content") || !body["content"].is_string()) {
      throw server::bad_field("content", "expected a string");
    }
    res.set_content(dump({{"tokens", tokenizer->encode(body["content"].get<std::string>())}}), "application/json");
  });
  http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    const json body = server::parse_body(req.body);
    if (!body.is_object() || !body.contains("tokens") || !body["tokens"].is_array()) {
      throw server::bad_field("tokens", "expected an array of token ids");
    }
    const std::vector<int32_t> ids = server::token_ids(body["tokens"], *tokenizer, "tokens");
    res.set_content(dump({{"content", utf8_replace_invalid(tokenizer->decode(ids))}}), "application/json");
  });
  http.Post("/v1/completions",
            [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, false); });
  http.Post("/v1/chat/completions",
            [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, true); });

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // Every body is JSON whatever its Content-Type: `curl -d` labels its body a form,
    // which httplib would refuse beyond 8 KiB (the label is read after this handler,
    // when the body is).
    if (req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0) {
      auto& headers = const_cast<httplib::Headers&>(req.headers);  // httplib's own, not const
      headers.erase("Content-Type");
      headers.emplace("Content-Type", "application/json");
    }
    // The chat page holds no data: it asks for the key itself before calling the API.
    const bool open_route = req.path == "/health" || req.path == "/";
    if (options.api_key.empty() || open_route) return httplib::Server::HandlerResponse::Unhandled;
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    const bool ok = header.size() > kBearer.size() && header.compare(0, kBearer.size(), kBearer) == 0 &&
                    same_key(std::string_view(header).substr(kBearer.size()), options.api_key);
    if (ok) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError(401, "authentication_error", "invalid_api_key",
                             header.empty() ? "no API key given (Authorization: Bearer KEY)" : "the API key is wrong"));
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      send_error(res, ApiError(500, "server_error", "internal_error", e.what()));
    }
  });
  // httplib's own refusals (no such route, a body over the limit) in the OpenAI shape.
  http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                     httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404) {
      send_error(res, ApiError(404, "invalid_request_error", "not_found",
                               fmt::format("no route {} {}", req.method, req.path)));
    } else if (res.status == 413) {
      send_error(res, ApiError(413, "invalid_request_error", "payload_too_large",
                               fmt::format("the body is larger than the {} bytes this server takes",
                                           options.max_body_bytes)));
    } else {
      send_error(res, ApiError(res.status, "invalid_request_error", "http_error",
                               fmt::format("the request was refused (HTTP {})", res.status)));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    static const char* const kRoutes[] = {"/", "/health", "/v1/models", "/metrics", "/tokenize", "/detokenize",
                                          "/v1/completions", "/v1/chat/completions"};
    std::string route = "other";  // unknown paths share one label, so clients cannot grow the series
    for (const char* r : kRoutes) {
      if (req.path == r) route = r;
    }
    if (req.path.rfind("/v1/models/", 0) == 0) route = "/v1/models/{id}";
    requests.count(route, res.status);
  });
}

Server::Server(ServerOptions options, const std::string& model_path) {
  auto model = Model::load(model_path.empty() ? default_model_path() : model_path);
  std::shared_ptr<const Tokenizer> tokenizer = load_model_tokenizer(*model);
  impl_ = std::make_unique<Impl>();
  impl_->options = std::move(options);
  impl_->model = std::move(model);
  impl_->tokenizer = std::move(tokenizer);
}

Server::Server(ServerOptions options, std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tokenizer)
    : impl_(std::make_unique<Impl>()) {
  if (!model || !tokenizer) throw Error("server: a model and a tokenizer are required");
  impl_->options = std::move(options);
  impl_->model = std::move(model);
  impl_->tokenizer = std::move(tokenizer);
}

Server::~Server() { stop(); }

void Server::start() {
  Impl& s = *impl_;
  const ServerOptions& o = s.options;
  if (s.listener.joinable() || s.stopped) throw Error("server: already started");
  if (o.parallel < 1) throw Error(fmt::format("server: parallel must be at least 1, got {}", o.parallel));
  if (o.queue < 0) throw Error(fmt::format("server: queue must be at least 0, got {}", o.queue));
  if (o.prompt_chunk_tokens < 1) throw Error("server: the prompt chunk must be at least 1 token");
  if (o.port < 0 || o.port > 65535) throw Error(fmt::format("server: port {} is out of range (0 to 65535)", o.port));
  if (static_cast<uint32_t>(s.tokenizer->vocab_size()) > s.model->info().n_vocab) {
    throw Error(fmt::format("server: the tokenizer has {} tokens but {} has n_vocab = {}", s.tokenizer->vocab_size(),
                            s.model->path(), s.model->info().n_vocab));
  }
  s.model_id = o.model_id.empty() ? std::filesystem::path(s.model->path()).stem().string() : o.model_id;
  s.limits = {s.model->info().n_vocab, o.max_prompt_tokens, o.max_completion_tokens, s.model_id};

  s.load_start_states();
  s.scheduler = std::make_unique<server::Scheduler>(
      s.model, s.tokenizer,
      server::SchedulerOptions{size_t(o.parallel), size_t(o.queue), size_t(o.prompt_chunk_tokens),
                               o.state_cache_mb << 20});
  s.routes();
  s.http.set_payload_max_length(o.max_body_bytes);
  s.http.set_keep_alive_timeout(kKeepAliveSeconds);
  // Every waiting or active request holds an HTTP thread while it waits for its text;
  // a few more answer health checks, metrics and refusals meanwhile.
  const size_t http_threads = std::min<size_t>(size_t(o.parallel) + size_t(o.queue) + 4, kMaxHttpThreads);
  s.http.new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };

  s.port = o.port == 0 ? s.http.bind_to_any_port(o.host) : (s.http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (s.port < 0) {
    s.scheduler->shutdown(std::chrono::milliseconds(0));
    throw Error(fmt::format("server: cannot listen on {}:{} (in use, or not an address of this machine)", o.host,
                            o.port));
  }
  // The socket listens from here: connections wait in its backlog until accepted.
  s.listener = std::thread([&s] { s.http.listen_after_bind(); });
}

int Server::port() const { return impl_->port; }
const std::string& Server::host() const { return impl_->options.host; }
const std::string& Server::model_id() const { return impl_->model_id; }

void Server::stop() {
  Impl& s = *impl_;
  std::lock_guard lock(s.stop_mutex);
  if (s.stopped) return;
  s.stopped = true;
  s.stopping = true;
  if (s.scheduler) {
    const auto grace = std::chrono::milliseconds(static_cast<int64_t>(s.options.shutdown_grace_seconds * 1000));
    s.scheduler->shutdown(grace);
  }
  // Streams still writing their last chunks get a moment: httplib cuts streams once it
  // stops.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (s.handlers_in_flight > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  s.http.stop();
  if (s.listener.joinable()) s.listener.join();
}

ServerStats Server::stats() const {
  ServerStats out;
  if (!impl_->scheduler) return out;
  const server::SchedulerStats s = impl_->scheduler->stats();
  out.active_sequences = s.active;
  out.queued_requests = s.queued;
  out.steps = s.steps;
  out.largest_batch = s.largest_batch_sequences;
  out.prompt_tokens = s.prompt_tokens;
  out.completion_tokens = s.completion_tokens;
  out.cancelled_sequences = s.cancelled;
  out.cache_hits = s.cache.hits;
  out.cache_misses = s.cache.misses;
  out.cached_tokens = s.cache.hit_tokens;
  out.cache_entries = s.cache.entries;
  out.cache_bytes = s.cache.bytes;
  out.reply_fills = s.reply_fills;
  return out;
}

}  // namespace rwkv
