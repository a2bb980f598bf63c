// rwkv-server: the OpenAI-compatible HTTP API against a server on a free loopback port
// (in-process, and the program itself once), through httplib's client.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <regex>
#include <thread>

#include "rwkv/error.hpp"
#include "rwkv/server.hpp"
#include "rwkv/state_file.hpp"
#include "rwkv/threads.hpp"
#include "test_support.hpp"

namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const std::string kPrompt = "The Python interpreter";

std::shared_ptr<const rwkv::Model> default_model() {
  static const auto model = rwkv::Model::load(RWKV_DEFAULT_MODEL_PATH);
  return model;
}

std::shared_ptr<const rwkv::Tokenizer> default_tokenizer() {
  static const std::shared_ptr<const rwkv::Tokenizer> tokenizer = rwkv::load_model_tokenizer(*default_model());
  return tokenizer;
}

// An in-process server on a free port, stopped when it goes out of scope.
struct TestServer {
  explicit TestServer(rwkv::ServerOptions options = {}) {
    ::signal(SIGPIPE, SIG_IGN);  // a closed client socket is a failed write, in the tests too
    options.host = "127.0.0.1";
    options.port = 0;
    server = std::make_unique<rwkv::Server>(options, default_model(), default_tokenizer());
    server->start();
  }
  httplib::Client client(const std::string& api_key = "") const {
    httplib::Client c("127.0.0.1", server->port());
    c.set_connection_timeout(5);
    c.set_read_timeout(30);
    c.set_write_timeout(5);
    if (!api_key.empty()) c.set_bearer_token_auth(api_key.c_str());
    return c;
  }
  std::unique_ptr<rwkv::Server> server;
};

json post_json(httplib::Client& client, const std::string& path, const json& body, int expected_status = 200) {
  auto res = client.Post(path.c_str(), body.dump(), "application/json");
  EXPECT_TRUE(res) << "no response from " << path << ": " << httplib::to_string(res.error());
  if (!res) return json();
  EXPECT_EQ(res->status, expected_status) << res->body;
  return json::parse(res->body);
}

// The data payloads of a Server-Sent Events body, checking its framing: every event is
// one "data: " line followed by a blank line.
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> events;
  size_t at = 0;
  while (at < body.size()) {
    const size_t end = body.find("\n\n", at);
    EXPECT_NE(end, std::string::npos) << "an event without its blank line: " << body.substr(at);
    if (end == std::string::npos) break;
    const std::string event = body.substr(at, end - at);
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    EXPECT_EQ(event.find('\n'), std::string::npos) << event;
    events.push_back(event.substr(6));
    at = end + 2;
  }
  return events;
}

// rwkv-cli generate's text for the default model (no --model: it finds it as a user's
// run would).
std::string cli_text(const std::string& prompt, const std::string& flags) {
  const std::string prompt_file = (std::filesystem::temp_directory_path() /
                                   ("rwkv-server-test-prompt-" + std::to_string(::getpid()))).string();
  rwkv_test::write_file(prompt_file, prompt);
  auto out = rwkv_test::run_cli("generate --prompt-file '" + prompt_file + "' --json " + flags + " 2>/dev/null");
  std::filesystem::remove(prompt_file);
  EXPECT_EQ(out.exit_code, 0) << out.output;
  return json::parse(out.output)["text"].get<std::string>();
}

json completion(httplib::Client& client, const std::string& prompt, int max_tokens, json extra = json::object()) {
  json body = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
  body.update(extra);
  return post_json(client, "/v1/completions", body);
}

TEST(Server, HealthModelsAndTokenizer) {
  TestServer s;
  auto client = s.client();
  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");

  auto models = client.Get("/v1/models");
  ASSERT_TRUE(models);
  const json list = json::parse(models->body);
  EXPECT_EQ(list["object"], "list");
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(list["data"][0]["id"], "default-rwkv7");
  EXPECT_EQ(list["data"][0]["object"], "model");
  EXPECT_EQ(s.server->model_id(), "default-rwkv7");
  // One model by id (what the openai client's models.retrieve asks for).
  const json one = json::parse(client.Get("/v1/models/default-rwkv7")->body);
  EXPECT_EQ(one, list["data"][0]);
  auto other = client.Get("/v1/models/gpt-4");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
  EXPECT_EQ(json::parse(other->body)["error"]["code"], "model_not_found");

  const json tokens = post_json(client, "/tokenize", {{"content", "Hello"}});
  EXPECT_EQ(tokens["tokens"], json({72, 101, 108, 108, 111}));
  const json text = post_json(client, "/detokenize", {{"tokens", {72, 105}}});
  EXPECT_EQ(text["content"], "Hi");
  const json bad = post_json(client, "/detokenize", {{"tokens", {72, 999}}}, 400);
  EXPECT_EQ(bad["error"]["param"], "tokens");
  EXPECT_THAT(bad["error"]["message"].get<std::string>(), HasSubstr("999"));
}

TEST(Server, CompletionShapeAndGreedyTextEqualTheCli) {
  TestServer s;
  auto client = s.client();
  const json out = completion(client, kPrompt, 40);
  EXPECT_EQ(out["object"], "text_completion");
  EXPECT_EQ(out["model"], "default-rwkv7");
  EXPECT_THAT(out["id"].get<std::string>(), ::testing::StartsWith("cmpl-"));
  EXPECT_TRUE(out["created"].is_number_integer());
  ASSERT_EQ(out["choices"].size(), 1u);
  EXPECT_EQ(out["choices"][0]["index"], 0);
  EXPECT_EQ(out["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(out["choices"][0]["text"], cli_text(kPrompt, "--temperature 0 --max-tokens 40"));
  EXPECT_EQ(out["usage"]["prompt_tokens"], kPrompt.size());  // the default model reads bytes
  EXPECT_EQ(out["usage"]["completion_tokens"], 40);
  EXPECT_EQ(out["usage"]["total_tokens"], kPrompt.size() + 40);
  EXPECT_EQ(out["usage"]["prompt_tokens_details"]["cached_tokens"], 0);

  // A stop string ends the text before it, as the CLI's --stop does.
  const json stopped = completion(client, kPrompt, 200, {{"stop", {"\n\n"}}});
  EXPECT_EQ(stopped["choices"][0]["text"], cli_text(kPrompt, "--temperature 0 --max-tokens 200 --stop '\n\n'"));
  EXPECT_EQ(stopped["choices"][0]["finish_reason"], "stop");

  // Sampling with a seed draws what the CLI draws with the same seed and settings.
  const json sampled = completion(client, kPrompt, 40, {{"temperature", 0.9}, {"top_p", 0.8}, {"seed", 42}});
  EXPECT_EQ(sampled["choices"][0]["text"],
            cli_text(kPrompt, "--temperature 0.9 --top-p 0.8 --seed 42 --max-tokens 40"));
  // The prompt as token ids reads the same.
  std::vector<int> ids(kPrompt.begin(), kPrompt.end());
  EXPECT_EQ(completion(client, "", 40, {{"prompt", ids}})["choices"][0]["text"], out["choices"][0]["text"]);
}

TEST(Server, StreamedCompletionIsServerSentEventsOfTheSameText) {
  TestServer s;
  auto client = s.client();
  const std::string whole = completion(client, kPrompt, 30)["choices"][0]["text"];
  json body = {{"prompt", kPrompt}, {"max_tokens", 30}, {"temperature", 0}, {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  auto res = client.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("text/event-stream"));
  const auto events = sse_events(res->body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 3 < events.size(); ++i) {
    const json chunk = json::parse(events[i]);
    EXPECT_EQ(chunk["object"], "text_completion");
    EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
    text += chunk["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, whole);
  const json last = json::parse(events[events.size() - 3]);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  const json usage = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 30);
}

TEST(Server, ChatUsesTheWorldTemplateAndStopsAtTheNextUserTurn) {
  TestServer s;
  auto client = s.client();
  const json messages = {{{"role", "system"}, {"content", "You answer briefly."}},
                         {{"role", "user"}, {"content", "What is a list?\n\nExplain."}}};
  const json out = post_json(client, "/v1/chat/completions",
                             {{"model", "default-rwkv7"}, {"messages", messages}, {"max_tokens", 60}, {"temperature", 0}});
  EXPECT_EQ(out["object"], "chat.completion");
  EXPECT_THAT(out["id"].get<std::string>(), ::testing::StartsWith("chatcmpl-"));
  EXPECT_EQ(out["choices"][0]["message"]["role"], "assistant");
  // "\n\n" inside a message would end its turn: it becomes "\n".
  const std::string prompt = "System: You answer briefly.\n\nUser: What is a list?\nExplain.\n\nAssistant:";
  EXPECT_EQ(out["usage"]["prompt_tokens"], prompt.size());
  EXPECT_EQ(out["choices"][0]["message"]["content"],
            cli_text(prompt, "--temperature 0 --max-tokens 60 --stop '\n\nUser:'"));

  json stream_body = {{"messages", messages}, {"max_tokens", 60}, {"temperature", 0}, {"stream", true}};
  auto res = client.Post("/v1/chat/completions", stream_body.dump(), "application/json");
  ASSERT_TRUE(res);
  const auto events = sse_events(res->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  const json first = json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json delta = json::parse(events[i])["choices"][0]["delta"];
    if (delta.contains("content")) content += delta["content"].get<std::string>();
  }
  EXPECT_EQ(content, out["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_FALSE(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"].is_null());
}

TEST(Server, G1TemplateOpensAThinkBlockThatTheReplyShows) {
  rwkv::ServerOptions options;
  options.chat_template = rwkv::parse_chat_template("g1");
  TestServer s(options);
  auto client = s.client();
  const json out = post_json(client, "/v1/chat/completions",
                             {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 10}, {"temperature", 0}});
  const std::string prompt = "User: hi\n\nAssistant: <think";
  EXPECT_EQ(out["usage"]["prompt_tokens"], prompt.size());
  EXPECT_EQ(out["choices"][0]["message"]["content"],
            "<think" + cli_text(prompt, "--temperature 0 --max-tokens 10 --stop '\n\nUser:'"));
  EXPECT_THROW(rwkv::parse_chat_template("chatml"), rwkv::Error);
}

TEST(Server, ErrorsAreOpenAiShapedAndNameTheField) {
  rwkv::ServerOptions options;
  options.max_body_bytes = 4096;
  options.max_prompt_tokens = 100;
  TestServer s(options);
  auto client = s.client();
  auto error_of = [&](const std::string& path, const std::string& body, int status) {
    auto res = client.Post(path.c_str(), body, "application/json");
    EXPECT_TRUE(res);
    if (!res) return json();
    EXPECT_EQ(res->status, status) << body << " -> " << res->body;
    const json j = json::parse(res->body);
    EXPECT_TRUE(j["error"]["message"].is_string()) << res->body;
    EXPECT_TRUE(j["error"]["type"].is_string()) << res->body;
    EXPECT_TRUE(j["error"].contains("code")) << res->body;
    return j["error"];
  };
  EXPECT_EQ(error_of("/v1/completions", "{not json", 400)["code"], "invalid_json");
  EXPECT_EQ(error_of("/v1/completions", R"({"prompt": "a", "temperature": "hot"})", 400)["param"], "temperature");
  EXPECT_THAT(error_of("/v1/completions", R"({"prompt": "a", "top_p": 2})", 400)["message"].get<std::string>(),
              HasSubstr("top_p"));
  EXPECT_EQ(error_of("/v1/completions", R"({"prompt": "a", "max_tokens": -1})", 400)["param"], "max_tokens");
  EXPECT_EQ(error_of("/v1/completions", R"({"max_tokens": 3})", 400)["param"], "prompt");
  EXPECT_EQ(error_of("/v1/completions", R"({"prompt": ""})", 400)["param"], "prompt");
  EXPECT_EQ(error_of("/v1/completions", R"({"prompt": "a", "stop": [""]})", 400)["param"], "stop");
  EXPECT_EQ(error_of("/v1/completions", R"({"prompt": "a", "logit_bias": {"300": 1}})", 400)["param"], "logit_bias");
  EXPECT_EQ(error_of("/v1/completions", R"({"prompt": "a", "n": 2})", 400)["param"], "n");
  EXPECT_EQ(error_of("/v1/chat/completions", R"({"messages": [{"role": "robot", "content": "x"}]})", 400)["param"],
            "messages[0].role");
  const json unknown_model = error_of("/v1/completions", R"({"prompt": "a", "model": "gpt-4"})", 404);
  EXPECT_EQ(unknown_model["code"], "model_not_found");
  EXPECT_THAT(unknown_model["message"].get<std::string>(), HasSubstr("gpt-4"));
  const json long_prompt = error_of("/v1/completions", json({{"prompt", std::string(101, 'a')}}).dump(), 400);
  EXPECT_EQ(long_prompt["code"], "context_length_exceeded");
  EXPECT_EQ(error_of("/v1/completions", json({{"prompt", std::string(5000, 'a')}}).dump(), 413)["code"],
            "payload_too_large");
  EXPECT_EQ(error_of("/v1/nothing", "{}", 404)["code"], "not_found");
}

TEST(Server, ApiKeyGuardsEveryRouteButHealthAndTheChatPage) {
  rwkv::ServerOptions options;
  options.api_key = "sesame";
  TestServer s(options);
  auto anonymous = s.client();
  auto res = anonymous.Get("/v1/models");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(json::parse(res->body)["error"]["code"], "invalid_api_key");
  auto wrong = s.client("sesame!");
  EXPECT_EQ(post_json(wrong, "/v1/completions", {{"prompt", "a"}}, 401)["error"]["type"], "authentication_error");
  auto right = s.client("sesame");
  EXPECT_EQ(right.Get("/v1/models")->status, 200);
  EXPECT_EQ(completion(right, "a", 2)["usage"]["completion_tokens"], 2);
  EXPECT_EQ(anonymous.Get("/health")->status, 200);

  // The chat page is served to anyone and fetches nothing from elsewhere (the page
  // itself is tested in a browser: tests/node/chat_page_test.mjs).
  auto page = anonymous.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"), HasSubstr("connect-src 'self'"));
  EXPECT_THAT(page->body, HasSubstr("<title>"));
  EXPECT_THAT(page->body, HasSubstr("v1/chat/completions"));
  EXPECT_EQ(page->body.find("http://"), std::string::npos);
  EXPECT_EQ(page->body.find("https://"), std::string::npos);
  EXPECT_EQ(anonymous.Get("/index.html")->status, 401);
}

// With batch invariance (rwkv-server --batch-invariant) every token's products are its
// one-token products, so eight greedy requests stepped together (beyond the batch sizes
// whose kernels are exact anyway) return exactly what each returns alone: here with the
// cache off, so that both runs feed every prompt.
TEST(Server, ConcurrentGreedyRequestsEachGetWhatTheyGetAlone) {
  struct Invariant {
    Invariant() { rwkv::set_batch_invariant(true); }
    ~Invariant() { rwkv::set_batch_invariant(false); }
  } invariant;
  rwkv::ServerOptions options;
  options.parallel = 8;
  options.state_cache_mb = 0;
  TestServer s(options);
  const std::vector<std::string> prompts = {kPrompt,         "import os\n", "Python", "The list type",
                                            "def main():\n", "A",           "class ", "# Licensed to"};
  std::vector<std::string> alone;
  for (const std::string& p : prompts) {
    auto client = s.client();
    alone.push_back(completion(client, p, 64)["choices"][0]["text"]);
  }
  std::vector<std::future<std::string>> together;
  for (const std::string& p : prompts) {
    together.push_back(std::async(std::launch::async, [&s, p] {
      auto client = s.client();
      return completion(client, p, 64)["choices"][0]["text"].get<std::string>();
    }));
  }
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(together[i].get(), alone[i]) << prompts[i];
  EXPECT_GT(s.server->stats().largest_batch, 4u);  // stepped together, beyond the exact small batches
}

// A raw connection that sends one streaming request, reads its first event, and hangs
// up: what a client that goes away mid-stream does.
int start_stream_and_read_first_event(int port, const std::string& body) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
  std::string received;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (received.find("data: ") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    received.append(buffer, size_t(n));
  }
  EXPECT_THAT(received, HasSubstr("data: "));
  return fd;
}

template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

TEST(Server, FullQueueGets503AndADisconnectedStreamFreesItsSequence) {
  rwkv::ServerOptions options;
  options.parallel = 1;
  options.queue = 0;
  options.max_completion_tokens = 1 << 30;  // the stream would run for minutes: only a disconnect ends it
  TestServer s(options);
  const json body = {{"prompt", kPrompt}, {"max_tokens", 1 << 30}, {"stream", true}, {"seed", 1}};
  const int fd = start_stream_and_read_first_event(s.server->port(), body.dump());
  ASSERT_TRUE(eventually([&] { return s.server->stats().active_sequences == 1; }));

  auto client = s.client();
  auto busy = client.Post("/v1/completions", json({{"prompt", "a"}}).dump(), "application/json");
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503);
  EXPECT_EQ(busy->get_header_value("Retry-After"), "1");
  EXPECT_EQ(json::parse(busy->body)["error"]["code"], "queue_full");

  ::close(fd);
  EXPECT_TRUE(eventually([&] { return s.server->stats().active_sequences == 0; }));
  EXPECT_EQ(s.server->stats().cancelled_sequences, 1u);
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("rwkv_active_sequences 0\n"));
  EXPECT_THAT(metrics->body, HasSubstr("rwkv_cancelled_sequences_total 1\n"));
  EXPECT_THAT(metrics->body, HasSubstr("rwkv_requests_total{route=\"/v1/completions\",status=\"503\"} 1\n"));
  EXPECT_THAT(metrics->body, HasSubstr("rwkv_queue_length 0\n"));
  // The slot is free again.
  EXPECT_EQ(completion(client, "a", 3)["usage"]["completion_tokens"], 3);
}

TEST(Server, StopEndsInFlightStreamsWithinTheGrace) {
  rwkv::ServerOptions options;
  options.shutdown_grace_seconds = 0.2;
  options.max_completion_tokens = 1 << 30;
  TestServer s(options);
  std::future<std::string> stream = std::async(std::launch::async, [&s] {
    auto client = s.client();
    const json body = {{"prompt", kPrompt}, {"max_tokens", 1 << 30}, {"stream", true}};
    auto res = client.Post("/v1/completions", body.dump(), "application/json");
    return res ? res->body : std::string("no response");
  });
  ASSERT_TRUE(eventually([&] { return s.server->stats().completion_tokens > 5; }));
  const auto start = std::chrono::steady_clock::now();
  s.server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ASSERT_EQ(stream.wait_for(5s), std::future_status::ready);
  const auto events = sse_events(stream.get());
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(json::parse(events[events.size() - 2])["error"]["code"], "shutting_down");
}

// The program: --port 0 prints the port it took, serves, and exits 0 on SIGTERM.
TEST(Server, ProgramPrintsItsPortServesAndExitsCleanlyOnSigterm) {
  int err[2];
  ASSERT_EQ(::pipe(err), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(err[1], STDERR_FILENO);
    ::close(err[0]);
    ::close(err[1]);
    ::setenv("RWKV_DEFAULT_MODEL", RWKV_DEFAULT_MODEL_PATH, 1);
    ::execl(RWKV_SERVER_PATH, RWKV_SERVER_PATH, "--port", "0", "--threads", "1", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(err[1]);
  std::string output;
  std::smatch match;
  const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)\n");
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!std::regex_search(output, match, listening) && std::chrono::steady_clock::now() < deadline) {
    pollfd p{err[0], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buffer[512];
    const ssize_t n = ::read(err[0], buffer, sizeof buffer);
    if (n <= 0) break;
    output.append(buffer, size_t(n));
  }
  if (match.empty()) ::kill(pid, SIGKILL);
  ASSERT_FALSE(match.empty()) << output;
  const int port = std::stoi(match[1].str());
  EXPECT_GT(port, 0);

  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30);
  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  const json out = post_json(client, "/v1/completions", {{"prompt", kPrompt}, {"max_tokens", 20}, {"temperature", 0}});
  EXPECT_EQ(out["choices"][0]["text"], cli_text(kPrompt, "--temperature 0 --max-tokens 20"));

  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int status = -1;
  for (auto end = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < end;) {
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    std::this_thread::sleep_for(10ms);
  }
  if (!WIFEXITED(status)) ::kill(pid, SIGKILL), ::waitpid(pid, &status, 0);
  ::close(err[0]);
  ASSERT_TRUE(WIFEXITED(status)) << "still running 10 s after SIGTERM";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// The number of tokens `text` is, as the server tokenizes it.
size_t token_count(httplib::Client& client, const std::string& text) {
  return post_json(client, "/tokenize", {{"content", text}})["tokens"].size();
}

json chat(httplib::Client& client, const json& messages, int max_tokens) {
  return post_json(client, "/v1/chat/completions",
                   {{"messages", messages}, {"max_tokens", max_tokens}, {"temperature", 0}});
}

TEST(Server, SecondChatTurnFeedsOnlyItsNewMessageAndAnswersAsWithoutTheCache) {
  TestServer cached;
  rwkv::ServerOptions no_cache_options;
  no_cache_options.state_cache_mb = 0;
  TestServer uncached(no_cache_options);
  auto client = cached.client();
  auto plain = uncached.client();

  json messages = {{{"role", "system"}, {"content", "You are terse."}},
                   {{"role", "user"}, {"content", "Tell me about cats."}}};
  const json first = chat(client, messages, 24);
  EXPECT_EQ(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(first["choices"][0]["message"], chat(plain, messages, 24)["choices"][0]["message"]);

  // The client sends the whole conversation back, the reply as it received it.
  messages.push_back(first["choices"][0]["message"]);
  messages.push_back({{"role", "user"}, {"content", "And dogs?"}});
  // The first reply is fed into the cache after its answer: count from when that is done.
  ASSERT_TRUE(eventually([&] { return cached.server->stats().active_sequences == 0; }));
  EXPECT_EQ(cached.server->stats().reply_fills, 1u);
  const uint64_t fed_before = cached.server->stats().prompt_tokens;
  const json second = chat(client, messages, 24);
  const size_t new_tokens = token_count(client, "User: And dogs?\n\n") + token_count(client, "Assistant:");
  const size_t prompt_tokens = second["usage"]["prompt_tokens"];
  EXPECT_EQ(second["usage"]["prompt_tokens_details"]["cached_tokens"], prompt_tokens - new_tokens);
  EXPECT_TRUE(eventually([&] { return cached.server->stats().reply_fills == 2u; }));
  ASSERT_TRUE(eventually([&] { return cached.server->stats().active_sequences == 0; }));
  // What was fed: the new message, then the second reply into the cache.
  // (The reply as an assistant message renders: blank lines become newlines, and the
  // text is trimmed.)
  std::string reply = std::regex_replace(second["choices"][0]["message"]["content"].get<std::string>(),
                                         std::regex("\n\n+"), "\n");
  reply = std::regex_replace(reply, std::regex("^[ \t\n]+|[ \t\n]+$"), "");
  const size_t second_reply = token_count(client, " " + reply + "\n\n");
  EXPECT_EQ(cached.server->stats().prompt_tokens - fed_before, new_tokens + second_reply);

  // The cache changes what is fed, not what is answered.
  const json second_plain = chat(plain, messages, 24);
  EXPECT_EQ(second_plain["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(second_plain["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(second["choices"][0]["message"], second_plain["choices"][0]["message"]);
  EXPECT_EQ(uncached.server->stats().cache_hits, 0u);

  // A conversation that edits an earlier message shares only what precedes the edit.
  json edited = messages;
  edited[1]["content"] = "Tell me about owls.";
  const json third = chat(client, edited, 8);
  const size_t system_tokens = token_count(client, "System: You are terse.\n\n");
  EXPECT_EQ(third["usage"]["prompt_tokens_details"]["cached_tokens"], system_tokens);

  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("rwkv_state_cache_hits_total 2\n"));
  EXPECT_THAT(metrics->body, HasSubstr("rwkv_state_cache_misses_total 1\n"));
  EXPECT_THAT(metrics->body, HasSubstr("rwkv_state_cache_budget_bytes 268435456\n"));
  EXPECT_THAT(metrics->body, ::testing::ContainsRegex("rwkv_state_cache_bytes [1-9][0-9]*\n"));
}

TEST(Server, RepeatedCompletionPromptFeedsNothingAndStreamsReportCachedTokens) {
  TestServer s;
  auto client = s.client();
  const json first = completion(client, kPrompt, 20);
  // The same prompt again feeds nothing: its state and logits were cached whole.
  const uint64_t fed_before = s.server->stats().prompt_tokens;
  const json again = completion(client, kPrompt, 20);
  EXPECT_EQ(again["usage"]["prompt_tokens_details"]["cached_tokens"], kPrompt.size());
  EXPECT_EQ(s.server->stats().prompt_tokens, fed_before);
  EXPECT_EQ(again["choices"][0]["text"], first["choices"][0]["text"]);
  // A longer prompt extending it starts from the cached state.
  const json longer = completion(client, kPrompt + " is", 20);
  EXPECT_EQ(longer["usage"]["prompt_tokens_details"]["cached_tokens"], kPrompt.size());
  EXPECT_EQ(longer["choices"][0]["text"], cli_text(kPrompt + " is", "--temperature 0 --max-tokens 20"));

  const json body = {{"prompt", kPrompt}, {"max_tokens", 5}, {"temperature", 0}, {"stream", true},
                     {"stream_options", {{"include_usage", true}}}};
  auto res = client.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  const auto events = sse_events(res->body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(json::parse(events[events.size() - 2])["usage"]["prompt_tokens_details"]["cached_tokens"],
            kPrompt.size());
}

TEST(Server, CacheBudgetBoundsItsBytes) {
  rwkv::ServerOptions options;
  options.state_cache_mb = 1;
  TestServer s(options);
  auto client = s.client();
  for (int i = 0; i < 40; ++i) completion(client, kPrompt + " " + std::to_string(i), 1);
  const rwkv::ServerStats stats = s.server->stats();
  EXPECT_LE(stats.cache_bytes, size_t(1) << 20);
  EXPECT_GT(stats.cache_entries, 0u);
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, ::testing::ContainsRegex("rwkv_state_cache_evictions_total [1-9][0-9]*\n"));
}

TEST(Server, StartStatesFromTheStateDir) {
  rwkv_test::ScratchDir dir;
  const std::filesystem::path states = dir.path() / "states";
  std::filesystem::create_directories(states);
  auto model = default_model();
  rwkv::State state = model->new_state();
  const std::string context = "Cats are small carnivorous mammals. ";
  const auto tokens = default_tokenizer()->encode(context);
  std::vector<float> logits(model->info().n_vocab);
  model->forward_sequence(tokens, state, logits);
  rwkv::save_state((states / "cats.state").string(), *model, state);

  rwkv::ServerOptions options;
  options.state_dir = states.string();
  TestServer s(options);
  auto client = s.client();
  const json out = completion(client, kPrompt, 30, {{"state", "cats"}});
  EXPECT_EQ(out["choices"][0]["text"],
            cli_text(kPrompt, "--temperature 0 --max-tokens 30 --state-in '" + (states / "cats.state").string() + "'"));
  // The cache keeps states from different starts apart.
  EXPECT_EQ(completion(client, kPrompt, 30)["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(completion(client, kPrompt, 30, {{"state", "cats"}})["choices"][0]["text"], out["choices"][0]["text"]);

  const json unknown = post_json(client, "/v1/completions", {{"prompt", "a"}, {"state", "dogs"}}, 400);
  EXPECT_EQ(unknown["error"]["param"], "state");
  EXPECT_THAT(unknown["error"]["message"].get<std::string>(), HasSubstr("cats"));
  EXPECT_EQ(post_json(client, "/v1/completions", {{"prompt", "a"}, {"state", "../x"}}, 400)["error"]["param"],
            "state");
  EXPECT_EQ(post_json(client, "/v1/completions", {{"prompt", "a"}, {"state", 3}}, 400)["error"]["param"], "state");

  TestServer without;
  auto other = without.client();
  EXPECT_THAT(post_json(other, "/v1/completions", {{"prompt", "a"}, {"state", "cats"}}, 400)["error"]["message"]
                  .get<std::string>(),
              HasSubstr("--state-dir"));

  // A state file that does not fit the model stops the server from starting.
  rwkv_test::write_file((states / "broken.state").string(), "not a state");
  rwkv::ServerOptions broken;
  broken.state_dir = states.string();
  broken.port = 0;
  rwkv::Server server(broken, default_model(), default_tokenizer());
  try {
    server.start();
    FAIL() << "a broken state file was accepted";
  } catch (const rwkv::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("broken.state"));
  }
}

// Token arrays nested 200,000 deep (400 KB, under the body limit) are refused as bad
// fields: naming the culprit must not recurse through it (the fuzzer found the prompt's).
TEST(Server, DeeplyNestedTokenArraysAreBadFields) {
  TestServer s;
  auto client = s.client();
  const std::string nested = std::string(200000, '[') + std::string(200000, ']');
  for (const auto& [route, field] : {std::pair{"/detokenize", "tokens"}, std::pair{"/v1/completions", "prompt"}}) {
    auto res = client.Post(route, std::string("{\"") + field + "\": [" + nested + "]}", "application/json");
    ASSERT_TRUE(res) << route;
    EXPECT_EQ(res->status, 400) << route;
    EXPECT_EQ(json::parse(res->body)["error"]["param"], field) << route;
  }
}

// A non-streamed request whose client hangs up while it runs frees its sequence: past
// its first second the answer goes out chunked, led by spaces whose writes fail then.
TEST(Server, ANonStreamedRequestWhoseClientLeftFreesItsSequence) {
  rwkv::ServerOptions options;
  options.max_completion_tokens = 1 << 30;
  TestServer s(options);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(s.server->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const std::string body = json({{"prompt", kPrompt}, {"max_tokens", 1 << 30}}).dump();
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), ssize_t(request.size()));
  ASSERT_TRUE(eventually([&] { return s.server->stats().completion_tokens > 0; }));
  std::this_thread::sleep_for(1500ms);  // past the plain answer's wait
  EXPECT_EQ(s.server->stats().active_sequences, 1u);
  ::close(fd);
  EXPECT_TRUE(eventually([&] { return s.server->stats().active_sequences == 0; }, 5s));
  EXPECT_EQ(s.server->stats().cancelled_sequences, 1u);
}

// A long non-streamed answer (chunked, after leading spaces) is still one JSON body.
TEST(Server, ALongNonStreamedAnswerIsStillOneJsonBody) {
  rwkv::ServerOptions options;
  options.plain_answer_seconds = 0.01;
  TestServer s(options);
  auto client = s.client();
  auto res = client.Post("/v1/completions", json({{"prompt", kPrompt}, {"max_tokens", 400}, {"temperature", 0}}).dump(),
                         "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body.front(), ' ');  // it did go out chunked
  const json out = json::parse(res->body);
  EXPECT_EQ(out["usage"]["completion_tokens"], 400);
  EXPECT_EQ(out["choices"][0]["text"], cli_text(kPrompt, "--temperature 0 --max-tokens 400"));
}

TEST(Server, FormLabelledBodiesAreJson) {
  TestServer s;
  auto client = s.client();
  // `curl -d` labels a JSON body a form; beyond 8 KiB httplib would refuse it as one.
  const std::string prompt(12000, 'a');
  auto res = client.Post("/v1/completions", json({{"prompt", prompt}, {"max_tokens", 1}}).dump(),
                         "application/x-www-form-urlencoded");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(json::parse(res->body)["usage"]["prompt_tokens"], prompt.size());

}

}  // namespace

namespace {

// A reply being fed into the cache holds no request slot: with one slot and no queue, a
// follow-up sent the moment the answer arrives is served (from the cache), not refused.
TEST(Server, AFollowUpIsNotRefusedWhileTheReplyIsFedIntoTheCache) {
  json messages = {{{"role", "user"}, {"content", "Tell me a long story about cats."}}};
  rwkv::ServerOptions one_slot;
  one_slot.parallel = 1;
  one_slot.queue = 0;
  TestServer s(one_slot);
  auto client = s.client();
  const json first = chat(client, messages, 400);
  messages.push_back(first["choices"][0]["message"]);
  messages.push_back({{"role", "user"}, {"content", "More."}});
  const json second = chat(client, messages, 4);  // expects 200
  EXPECT_GT(second["usage"]["prompt_tokens_details"]["cached_tokens"].get<size_t>(), 400u);
}

}  // namespace
