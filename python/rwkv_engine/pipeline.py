"""Prompt in, text out: a model, a tokenizer and the library's sampler together.

    pipe = Pipeline(Model("rwkv7-world-0.1b.rwkv"))
    result = pipe.generate("The capital of France is", max_tokens=50, stop=["\\n\\n"],
                           callback=lambda piece: print(piece, end="", flush=True))
    print(result.text, result.stop_reason)

Generation follows `rwkv-cli generate` (src/session.cpp) step for step, so the same
seed and options give the same text.
"""

import random
from dataclasses import dataclass, field

from . import _lib
from .core import Model
from .sampler import Sampler
from .tokenizer import Tokenizer

# ChatRWKV does not count a token toward the repetition penalties when its text is a
# piece of this string (Python's `ttt in ' \t0123456789'`, a substring test).
PENALTY_EXEMPT = " \t0123456789"


@dataclass
class GenerateResult:
    text: str = ""  # what was passed to the callback, in order
    tokens: list = field(default_factory=list)  # generated, including any that formed a stop string
    prompt_tokens: list = field(default_factory=list)
    stop_reason: str = "max_tokens"  # "max_tokens", "end_of_text", "stop_string" or "cancelled"
    state: object = None  # the state after generation (every sampled token fed but end-of-text)

    def __str__(self):
        return self.text


def _held_back(text, stops):
    """Length of the longest suffix of `text` that is a proper prefix of a stop string:
    that text might still become a stop string, so it is held back."""
    hold = 0
    for s in stops:
        for n in range(min(len(text), len(s) - 1), hold, -1):
            if text.endswith(s[:n]):
                hold = n
                break
    return hold


class Pipeline:
    """A model with its tokenizer: encode, decode and generate."""

    def __init__(self, model, tokenizer=None):
        """`model` is a Model or a path; `tokenizer` a Tokenizer, a vocabulary path, or None
        for the model's own (rwkv_tokenizer_for_model)."""
        self.model = model if isinstance(model, Model) else Model(model)
        if tokenizer is None or isinstance(tokenizer, (str, bytes)) or hasattr(tokenizer, "__fspath__"):
            tokenizer = Tokenizer.for_model(self.model, tokenizer)
        self.tokenizer = tokenizer
        self._exempt = {}

    def encode(self, text):
        return self.tokenizer.encode(text)

    def decode(self, ids):
        return self.tokenizer.decode(ids)

    def is_penalty_exempt(self, token):
        """Whether ChatRWKV leaves `token` out of the penalty counts (its bytes are a piece
        of " \\t0123456789"; special tokens, which have none, included)."""
        exempt = self._exempt.get(token)
        if exempt is None:
            exempt = self.tokenizer.token_bytes(token) in PENALTY_EXEMPT.encode()
            self._exempt[token] = exempt
        return exempt

    def generate(self, prompt, max_tokens=200, temperature=1.0, top_p=1.0, top_k=0, min_p=0.0,
                 presence_penalty=0.0, frequency_penalty=0.0, penalty_decay=0.996, repetition_penalty=1.0,
                 seed=None, order="official", stop=(), callback=None, state=None, stop_at_end_of_text=True,
                 logit_bias=None, banned_tokens=None):
        """Feeds the prompt, then samples up to max_tokens tokens; returns a GenerateResult.

        The defaults are rwkv-cli generate's. `seed` None draws one from Python's random
        module. Generation stops where the text first contains a string of `stop` (which
        is not returned), or at the end-of-text token (id 0) of World and NeoX models.
        `callback(piece)` receives the text as it becomes complete and cannot be the start
        of a stop string; returning False cancels. `state` (None: a new one) is advanced
        in place: every sampled token but end-of-text is fed, so a conversation continues
        right after the reply; it is also result.state. The prompt must not be empty."""
        if isinstance(stop, (str, bytes)):
            stop = [stop]
        stop = [s.decode("utf-8") if isinstance(s, bytes) else s for s in stop]
        if any(not s for s in stop):
            raise _lib.RwkvError("generate: a stop string is empty")
        if max_tokens < 0:
            raise _lib.RwkvError(f"generate: max tokens must be >= 0, got {max_tokens}")
        if seed is None:
            seed = random.getrandbits(63)
        model = self.model
        sampler = Sampler(model, temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
                          presence_penalty=presence_penalty, frequency_penalty=frequency_penalty,
                          penalty_decay=penalty_decay, repetition_penalty=repetition_penalty, seed=seed,
                          order=order, logit_bias=logit_bias, banned_tokens=banned_tokens)
        result = GenerateResult()
        result.prompt_tokens = self.encode(prompt)
        if not result.prompt_tokens:
            raise _lib.RwkvError("generate: the prompt is empty")
        # The whole prompt in one call (sequence mode), as rwkv-cli does.
        logits, state = model.forward(result.prompt_tokens, state)
        has_end_of_text = stop_at_end_of_text and self.tokenizer.kind != "bytes"
        decoder = self.tokenizer.decoder()
        pending = ""
        cancelled = False

        def emit(piece):
            nonlocal cancelled
            if not piece or cancelled:
                return
            result.text += piece
            if callback is not None and callback(piece) is False:
                cancelled = True

        for _ in range(max_tokens):
            if cancelled:
                break
            token = sampler.sample(logits)
            if has_end_of_text and token == 0:
                result.stop_reason = "end_of_text"
                break
            result.tokens.append(token)
            sampler.accept(token, self.is_penalty_exempt(token))
            logits, _ = model.forward(token, state)
            pending += decoder.push(token)
            if stop:
                first = min((i for i in (pending.find(s) for s in stop) if i >= 0), default=-1)
                if first >= 0:
                    emit(pending[:first])
                    result.stop_reason = "stop_string"
                    break
                hold = _held_back(pending, stop)
                emit(pending[:len(pending) - hold])
                pending = pending[len(pending) - hold:]
            else:
                emit(pending)
                pending = ""
        if cancelled:
            result.stop_reason = "cancelled"
        elif result.stop_reason != "stop_string":
            emit(pending + decoder.flush())
            if cancelled:
                result.stop_reason = "cancelled"
        result.state = state
        return result
