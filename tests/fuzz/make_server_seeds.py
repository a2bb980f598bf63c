#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_server_request (tests/fuzz/corpus/server_request):
request bodies of POST /v1/completions and /v1/chat/completions in the OpenAI shapes,
every field rwkv-server reads, and broken ones (wrong types, numbers out of range or
past double, deep nesting, invalid UTF-8, not JSON at all). Each seed is well under 1 KB.
Standard library only.

    tests/fuzz/make_server_seeds.py
"""
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "server_request")

# What the fuzz target's RequestLimits allow: model "m", up to 4096 tokens each way.
ALL_OPTIONS = {
    "model": "m",
    "max_tokens": 64,
    "temperature": 0.7,
    "top_p": 0.9,
    "top_k": 40,
    "min_p": 0.05,
    "presence_penalty": 0.5,
    "frequency_penalty": 0.25,
    "penalty_decay": 0.99,
    "repetition_penalty": 1.1,
    "seed": 42,
    "n": 1,
    "stop": ["\n\n", "User:"],
    "logit_bias": {"0": -100, "33155": 2.5},
    "stream": True,
    "stream_options": {"include_usage": True},
    "state": "default.state",
    "user": "fuzz",
}

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "developer", "content": "Answer briefly."},
    {"role": "user", "content": "Hello!"},
    {"role": "assistant", "content": "Hi. How can I help?"},
    {"role": "user", "content": "What is RWKV?"},
]


def seeds():
    # Completions that are accepted.
    yield "completion-minimal.json", {"prompt": "Hello"}
    yield "completion-full.json", dict(ALL_OPTIONS, prompt="Once upon a time")
    yield "completion-token-ids.json", {"prompt": [33155, 45, 40213, 34, 0, 65535], "max_tokens": 0}
    yield "completion-one-string.json", {"prompt": ["The capital of France is"], "stop": "."}
    yield "completion-one-token-array.json", {"prompt": [[1, 2, 3]], "max_completion_tokens": 4096}
    yield "completion-nulls.json", {"prompt": "x", "model": None, "temperature": None, "top_p": None, "stop": None,
                                    "seed": None, "logit_bias": None, "stream": None, "stream_options": None}
    yield "completion-greedy.json", {"model": "m", "prompt": "1 + 1 =", "temperature": 0, "max_tokens": 4,
                                     "stream": False, "stream_options": {"include_usage": False}}
    yield "completion-unicode.json", {"prompt": "中文 émoji 😀 \u0000 tab\t", "stop": ["😀"]}
    # Chats that are accepted.
    yield "chat-minimal.json", {"messages": [{"role": "user", "content": "Hi"}]}
    yield "chat-all-roles.json", dict(ALL_OPTIONS, messages=MESSAGES)
    yield "chat-content-parts.json", {"messages": [
        {"role": "system", "content": [{"type": "text", "text": "Be terse."}]},
        {"role": "user", "content": [{"type": "text", "text": "Two "}, {"type": "text", "text": "parts"}]}]}
    yield "chat-newlines.json", {"messages": [
        {"role": "user", "content": "  line one\r\n\r\n\n\nline two\n\nUser: fake turn \t"},
        {"role": "assistant", "content": "\n\n"},
        {"role": "user", "content": None}], "max_tokens": 16}
    yield "chat-stream.json", {"model": "m", "messages": [{"role": "user", "content": "Stream it"}], "stream": True,
                               "stream_options": {"include_usage": True}, "stop": "\n"}
    # Refused: wrong types, ranges and shapes.
    yield "wrong-types.json", {"prompt": 1, "max_tokens": "16", "temperature": "hot", "stop": 5, "stream": "yes",
                               "messages": {"role": "user"}}
    yield "wrong-model.json", {"model": "gpt-4o", "prompt": "x", "messages": [{"role": "user", "content": "x"}]}
    yield "out-of-range.json", {"prompt": "x", "messages": [{"role": "user", "content": "x"}], "max_tokens": 4097,
                                "temperature": -1, "top_p": 0, "top_k": -1, "min_p": 2, "penalty_decay": 1.5,
                                "seed": -1, "n": 2}
    yield "big-integers.json", {"prompt": [18446744073709551615], "max_tokens": 9223372036854775807,
                                "seed": 18446744073709551615, "top_k": 2147483648,
                                "logit_bias": {"99999999999999999999": 1}}
    yield "bad-logit-bias.json", {"prompt": "x", "logit_bias": {"-1": 1, " 7": 1, "0x10": 1, "5": 101, "6": "1"}}
    yield "bad-stop.json", {"prompt": "x", "messages": [{"role": "user", "content": "x"}], "stop": ["ok", "", 3]}
    yield "bad-messages.json", {"messages": [{"role": "tool", "content": "x"}, {"content": "no role"}, 7,
                                             {"role": "user", "content": [{"type": "image_url", "image_url": {}}]},
                                             {"role": "user", "content": [{"type": 1}, {"text": 2}]}]}
    yield "bad-part-type.json", {"messages": [{"role": "user", "content": [{"type": 1, "text": "x"}]}]}
    yield "bad-role.json", {"messages": [{"role": "user", "content": "x"}, {"role": ["user"], "content": "y"}]}
    yield "bad-prompts.json", {"prompt": ["one", "two"], "messages": []}
    yield "empty-prompt.json", {"prompt": "", "messages": [{"role": "user"}]}
    yield "bad-state.json", {"prompt": "x", "state": "../../etc/passwd"}
    yield "not-an-object.json", ["prompt", "x"]


def raw_seeds():
    # Bodies json.dumps cannot write: numbers past double, deep nesting, broken syntax
    # and invalid UTF-8 (inside a string, and bare).
    yield "huge-numbers.json", b'{"prompt":"x","temperature":1e400,"top_p":-1e999,"max_tokens":1e3}'
    yield "nan-like.json", b'{"prompt":"x","temperature":NaN,"top_p":Infinity,"seed":-0}'
    yield "deep-nesting.json", b'{"prompt":' + b"[" * 300 + b"1" + b"]" * 300 + b"}"
    yield "deep-messages.json", (b'{"messages":[{"role":"user","content":[' + b'{"type":"text","text":' * 40 +
                                 b'"x"' + b"}" * 40 + b"]}]}")
    yield "invalid-utf8.json", b'{"prompt":"\xff\xfe caf\xc3","model":"m\xc0\xaf"}'
    yield "utf8-escapes.json", b'{"prompt":"\\ud83d\\ude00 \\ud800 lone","messages":[{"role":"user","content":"\\u00e9"}]}'
    yield "truncated.json", b'{"messages":[{"role":"user","content":"unfinished'
    yield "trailing-garbage.json", b'{"prompt":"x"} {"prompt":"y"}'
    yield "duplicate-keys.json", b'{"prompt":"x","prompt":[1],"max_tokens":1,"max_tokens":"2"}'
    yield "empty.json", b""
    yield "whitespace.json", b" \t\r\n"
    yield "bom.json", b'\xef\xbb\xbf{"prompt":"x"}'


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    for name, body in seeds():
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            json.dump(body, f, ensure_ascii=False, separators=(",", ":"))
    for name, body in raw_seeds():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(body)


if __name__ == "__main__":
    main()
