#include "server/chat_page.hpp"

namespace rwkv::server {

namespace {

// Model text only ever reaches the page through textContent and Text nodes, never
// innerHTML; the page loads nothing but itself (see kChatPageContentSecurityPolicy).
constexpr std::string_view kChatPage = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>RWKV chat</title>
<link rel="icon" href="data:,">
<style>
:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1d1d1f; --muted: #6b6b70; --line: #d9d9de;
  --user: #eef3ff; --assistant: #f5f5f7; --accent: #2857c5; --error: #b3261e;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #17171a; --fg: #e8e8ec; --muted: #9a9aa2; --line: #34343a;
    --user: #1f2a44; --assistant: #222227; --accent: #7fa2ff; --error: #ff8a80;
  }
}
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body {
  background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
.page {
  display: flex; flex-direction: column; gap: 0.6rem;
  max-width: 52rem; height: 100%; margin: 0 auto; padding: 0.75rem 1rem;
}
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.25rem 1rem; }
h1 { font-size: 1.2rem; margin: 0; }
.model { margin: 0; color: var(--muted); font-size: 0.9rem; overflow-wrap: anywhere; }
#conversation {
  flex: 1; min-height: 8rem; overflow-y: auto; display: flex; flex-direction: column; gap: 0.6rem;
  padding: 0.75rem; border: 1px solid var(--line); border-radius: 8px;
}
#conversation:empty::before { content: "No messages yet."; color: var(--muted); margin: auto; }
.message { max-width: 85%; padding: 0.5rem 0.75rem; border-radius: 8px; }
.message.user { align-self: flex-end; background: var(--user); }
.message.assistant { align-self: flex-start; background: var(--assistant); }
.message.failed { outline: 1px solid var(--error); }
.role { margin: 0 0 0.15rem; font-size: 0.75rem; font-weight: 600; color: var(--muted); }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
.note { margin-top: 0.3rem; font-size: 0.85rem; color: var(--error); white-space: pre-wrap; }
fieldset {
  display: flex; flex-wrap: wrap; gap: 0.4rem 1rem; margin: 0; padding: 0.4rem 0.75rem 0.6rem;
  border: 1px solid var(--line); border-radius: 8px;
}
legend { padding: 0 0.3rem; color: var(--muted); font-size: 0.85rem; }
fieldset label { display: flex; flex-direction: column; font-size: 0.85rem; color: var(--muted); }
input, textarea, button { font: inherit; color: inherit; }
input, textarea {
  background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 0.3rem 0.45rem;
}
input[type="number"] { width: 6.5rem; }
#api-key { width: 12rem; }
form { display: flex; gap: 0.5rem; align-items: flex-end; }
textarea { flex: 1; min-width: 0; resize: vertical; min-height: 2.6rem; }
.actions { display: flex; gap: 0.4rem; }
button {
  border: 1px solid var(--line); border-radius: 6px; padding: 0.45rem 0.9rem;
  background: var(--assistant); cursor: pointer;
}
button[type="submit"] { background: var(--accent); border-color: var(--accent); color: #fff; }
button:disabled { opacity: 0.5; cursor: default; }
input:focus-visible, textarea:focus-visible, button:focus-visible {
  outline: 2px solid var(--accent); outline-offset: 1px;
}
#status { margin: 0; min-height: 1.5em; font-size: 0.85rem; color: var(--muted); font-variant-numeric: tabular-nums; }
#status.error { color: var(--error); }
.visually-hidden {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
@media (max-width: 560px) {
  .page { padding: 0.5rem; }
  .message { max-width: 100%; }
  form { flex-direction: column; align-items: stretch; }
  .actions > button { flex: 1; }
  input[type="number"], #api-key { width: 100%; }
  fieldset label { flex: 1 1 40%; }
}
</style>
</head>
<body>
<main class="page">
  <header>
    <h1>RWKV chat</h1>
    <p class="model">model: <span id="model-id">loading…</span></p>
  </header>
  <section id="conversation" role="log" aria-label="Conversation"></section>
  <fieldset>
    <legend>Settings</legend>
    <label for="temperature">Temperature
      <input id="temperature" type="number" min="0" max="5" step="0.1" value="1.0" inputmode="decimal"></label>
    <label for="top-p">Top-p
      <input id="top-p" type="number" min="0" max="1" step="0.05" value="0.3" inputmode="decimal"></label>
    <label for="max-tokens">Max tokens
      <input id="max-tokens" type="number" min="1" step="1" value="500" inputmode="numeric"></label>
    <label for="api-key">API key (kept in this browser)
      <input id="api-key" type="password" autocomplete="off" spellcheck="false" placeholder="none"></label>
  </fieldset>
  <form id="composer">
    <label for="prompt" class="visually-hidden">Message</label>
    <textarea id="prompt" rows="2" placeholder="Message (Enter sends, Shift+Enter starts a new line)"></textarea>
    <div class="actions">
      <button type="submit" id="send">Send</button>
      <button type="button" id="stop" disabled>Stop</button>
      <button type="button" id="reset">Reset</button>
    </div>
  </form>
  <p id="status" role="status" aria-live="polite"></p>
</main>
<script>
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const conversation = $("conversation"), prompt = $("prompt"), status = $("status");
  const sendButton = $("send"), stopButton = $("stop"), resetButton = $("reset");
  const apiKeyInput = $("api-key"), modelId = $("model-id");
  const kApiKeyStorage = "rwkv-chat-api-key";

  // What the server sees of the conversation: every turn so far, sent with each request.
  let messages = [];
  let conversationId = newConversationId();
  // The reply being streamed: its AbortController, or null when idle.
  let inFlight = null;

  function newConversationId() {
    // crypto.getRandomValues works on plain http too, unlike crypto.randomUUID.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function storedApiKey() {
    try { return localStorage.getItem(kApiKeyStorage) || ""; } catch { return ""; }
  }
  function storeApiKey(key) {
    try {
      if (key) localStorage.setItem(kApiKeyStorage, key); else localStorage.removeItem(kApiKeyStorage);
    } catch { /* storage disabled: the key lasts as long as the page */ }
  }
  function headers(extra) {
    const h = Object.assign({}, extra);
    const key = apiKeyInput.value.trim();
    if (key) h.Authorization = "Bearer " + key;
    return h;
  }

  function setStatus(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  function nearBottom() {
    return conversation.scrollHeight - conversation.scrollTop - conversation.clientHeight < 40;
  }
  function addMessage(role, text) {
    const stick = nearBottom();
    const article = document.createElement("article");
    article.className = "message " + role;
    const label = document.createElement("p");
    label.className = "role";
    label.textContent = role === "user" ? "You" : "Assistant";
    const body = document.createElement("div");
    body.className = "text";
    const textNode = document.createTextNode(text);
    body.appendChild(textNode);
    article.append(label, body);
    conversation.appendChild(article);
    if (stick) conversation.scrollTop = conversation.scrollHeight;
    return { article, textNode };
  }
  function addNote(view, text) {
    const note = document.createElement("div");
    note.className = "note";
    note.textContent = text;
    view.article.appendChild(note);
    view.article.classList.add("failed");
  }

  // An error response's "HTTP 401: message", from the OpenAI error shape when it is one.
  async function describeHttpError(res) {
    let detail = res.statusText;
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) detail = body.error.message;
    } catch { /* not JSON: the status text will do */ }
    return "HTTP " + res.status + (detail ? ": " + detail : "");
  }

  async function loadModel() {
    try {
      const res = await fetch("v1/models", { headers: headers() });
      if (!res.ok) { modelId.textContent = "unavailable (" + (await describeHttpError(res)) + ")"; return; }
      const body = await res.json();
      modelId.textContent = body.data && body.data.length ? String(body.data[0].id) : "none";
    } catch (e) {
      modelId.textContent = "unavailable (" + e.message + ")";
    }
  }

  function numberSetting(id, integer) {
    const input = $(id);
    if (input.value.trim() === "") return undefined;  // the server's default
    const value = integer ? parseInt(input.value, 10) : Number(input.value);
    return Number.isFinite(value) ? value : undefined;
  }

  function setBusy(busy) {
    sendButton.disabled = busy;
    stopButton.disabled = !busy;
  }

  // Reads Server-Sent Events from a fetch body, calling onData with each event's data.
  async function readEvents(body, onData) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(l.startsWith("data: ") ? 6 : 5)).join("\n");
        if (data && onData(data) === false) { reader.cancel().catch(() => {}); return true; }
      }
    }
    return false;
  }

  async function send() {
    const text = prompt.value;
    if (inFlight || text.trim() === "") return;
    prompt.value = "";
    const epoch = conversationId;  // a Reset meanwhile makes this reply nobody's
    const turn = messages.length;
    messages.push({ role: "user", content: text });
    const userView = addMessage("user", text);
    const replyView = addMessage("assistant", "");
    const controller = new AbortController();
    inFlight = controller;
    setBusy(true);
    setStatus("waiting for the first token…");

    const request = { messages: messages.slice(), stream: true, stream_options: { include_usage: true } };
    const settings = { temperature: numberSetting("temperature"), top_p: numberSetting("top-p"),
                       max_tokens: numberSetting("max-tokens", true) };
    for (const [name, value] of Object.entries(settings)) if (value !== undefined) request[name] = value;

    let reply = "", chunks = 0, usageTokens = null, finishReason = null;
    let firstTokenAt = null, lastTokenAt = null;
    const startedAt = performance.now();
    try {
      const res = await fetch("v1/chat/completions", {
        method: "POST", signal: controller.signal,
        headers: headers({ "Content-Type": "application/json", "X-Conversation-Id": conversationId }),
        body: JSON.stringify(request),
      });
      if (!res.ok) throw new Error(await describeHttpError(res));
      const sawDone = await readEvents(res.body, (data) => {
        if (data === "[DONE]") return false;
        const event = JSON.parse(data);
        if (event.error) throw new Error("the server ended the reply: " + (event.error.message || "unknown error"));
        if (event.usage) usageTokens = event.usage.completion_tokens;
        const choice = event.choices && event.choices[0];
        if (!choice) return true;
        if (choice.finish_reason) finishReason = choice.finish_reason;
        const piece = choice.delta && choice.delta.content;
        if (piece) {
          const stick = nearBottom();
          // The view drops the blank the reply opens with ("Assistant: Hi"); the history keeps it.
          replyView.textNode.appendData(replyView.textNode.length ? piece : piece.trimStart());
          if (stick) conversation.scrollTop = conversation.scrollHeight;
          reply += piece;
          ++chunks;
          lastTokenAt = performance.now();
          if (firstTokenAt === null) firstTokenAt = lastTokenAt;
          setStatus("generating… " + chunks + (chunks === 1 ? " chunk" : " chunks"));
        }
        return true;
      });
      if (!sawDone) throw new Error("the stream ended before [DONE]");
      messages.push({ role: "assistant", content: reply });
      setStatus(speedText(usageTokens !== null ? usageTokens : chunks, startedAt, firstTokenAt, lastTokenAt) +
                (finishReason === "length" ? " · cut at max tokens" : ""));
    } catch (e) {
      if (epoch !== conversationId) return;  // reset: the views are gone already
      if (e.name === "AbortError" && reply !== "") {
        // Stopped by the user: the text so far stays part of the conversation.
        messages.push({ role: "assistant", content: reply });
        setStatus("stopped after " + chunks + (chunks === 1 ? " chunk" : " chunks"));
      } else {
        // The turn leaves the history, so that the next request does not repeat it.
        messages = messages.slice(0, turn);
        const stopped = e.name === "AbortError";
        addNote(replyView, stopped ? "stopped before any text" : e.message);
        userView.article.classList.add("failed");
        if (prompt.value === "") prompt.value = text;
        setStatus(stopped ? "stopped" : "error: " + e.message, !stopped);
      }
    } finally {
      if (inFlight === controller) { inFlight = null; setBusy(false); }
    }
  }

  function speedText(tokens, startedAt, firstTokenAt, lastTokenAt) {
    const total = ((lastTokenAt !== null ? lastTokenAt : performance.now()) - startedAt) / 1000;
    let text = tokens + (tokens === 1 ? " token" : " tokens") + " in " + total.toFixed(2) + " s";
    if (tokens > 0 && total > 0) {
      // After the first token: the decode speed, apart from reading the prompt.
      const decoding = firstTokenAt !== null ? (lastTokenAt - firstTokenAt) / 1000 : 0;
      const rate = tokens > 1 && decoding > 0 ? (tokens - 1) / decoding : tokens / total;
      text += " · " + rate.toFixed(1) + " tokens/s";
      if (firstTokenAt !== null) {
        text += " · first token after " + ((firstTokenAt - startedAt) / 1000).toFixed(2) + " s";
      }
    }
    return text;
  }

  function reset() {
    if (inFlight) { inFlight.abort(); inFlight = null; }
    setBusy(false);
    messages = [];
    conversationId = newConversationId();
    conversation.replaceChildren();
    setStatus("");
    prompt.focus();
  }

  $("composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  stopButton.addEventListener("click", () => { if (inFlight) inFlight.abort(); });
  resetButton.addEventListener("click", reset);
  apiKeyInput.value = storedApiKey();
  apiKeyInput.addEventListener("change", () => { storeApiKey(apiKeyInput.value.trim()); loadModel(); });
  loadModel();
  prompt.focus();
})();
</script>
</body>
</html>
)html";

}  // namespace

std::string_view chat_page_html() { return kChatPage; }

}  // namespace rwkv::server
