"""PIPELINE and PIPELINE_ARGS as in the official `rwkv` package (rwkv/utils.py), so that
scripts written for it change one import:

    from rwkv_engine.model import RWKV
    from rwkv_engine.utils import PIPELINE, PIPELINE_ARGS
    model = RWKV(model="rwkv7-world-0.1b.rwkv", strategy="cpu fp32")   # strategy is ignored
    pipeline = PIPELINE(model, "rwkv_vocab_v20230424")
    pipeline.generate("The capital of France is", token_count=50, args=PIPELINE_ARGS(temperature=1.0, top_p=0.7),
                      callback=lambda s: print(s, end="", flush=True))

Sampling goes through the library's sampler in ChatRWKV's order (penalties, softmax,
top-p, top-k, then temperature), seeded from Python's `random` module.
"""

import os
import random

from ._lib import RwkvError
from .pipeline import PENALTY_EXEMPT
from .sampler import Sampler
from .tokenizer import Tokenizer

WORLD_VOCAB = "rwkv_vocab_v20230424"


class PIPELINE_ARGS:
    """Generation settings with ChatRWKV's defaults."""

    def __init__(self, temperature=1.0, top_p=0.85, top_k=0, alpha_frequency=0.2, alpha_presence=0.2,
                 alpha_decay=0.996, token_ban=(), token_stop=(), chunk_len=256):
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.alpha_frequency = alpha_frequency  # frequency penalty (as in GPT-3)
        self.alpha_presence = alpha_presence  # presence penalty (as in GPT-3)
        self.alpha_decay = alpha_decay  # per-token decay of the penalty counts
        self.token_ban = list(token_ban)  # never generated
        self.token_stop = list(token_stop)  # generation stops at any of these (not returned)
        self.chunk_len = chunk_len  # prompt tokens per forward call


def _world_tokenizer(model):
    if getattr(model, "tokenizer_kind", None) == "world":
        return Tokenizer.for_model(model)
    places = [os.path.join(os.getcwd(), WORLD_VOCAB + ".txt")]
    if getattr(model, "path", None):
        places.append(os.path.join(os.path.dirname(os.path.abspath(model.path)), WORLD_VOCAB + ".txt"))
    for path in places:
        if os.path.exists(path):
            return Tokenizer("world", path)
    raise RwkvError(f"{WORLD_VOCAB}.txt not found (looked in {', '.join(places)})")


class PIPELINE:
    """encode, decode, sample_logits and generate over a model."""

    def __init__(self, model, WORD_NAME=None):
        """WORD_NAME: "rwkv_vocab_v20230424" (World: the model's own vocabulary, or the file
        of that name in the working directory or beside the model), a path to a World
        vocabulary (.txt) or a NeoX tokenizer.json, or None for the model's own tokenizer."""
        self.model = model
        if WORD_NAME is None:
            self.tokenizer = Tokenizer.for_model(model)
        elif WORD_NAME == WORLD_VOCAB:
            self.tokenizer = _world_tokenizer(model)
        elif WORD_NAME == "cl100k_base":
            raise RwkvError("PIPELINE: the cl100k_base (tiktoken) tokenizer is not supported")
        else:
            path = os.fspath(WORD_NAME)
            self.tokenizer = Tokenizer("neox" if path.endswith(".json") else "world", path)

    def refine_context(self, context):
        """Strips every line, drops empty ones, and starts the text with a newline."""
        lines = [line.strip().strip("\u3000").strip("\r") for line in context.strip().split("\n")]
        context = "\n" + "\n".join(line for line in lines if line).strip()
        return context if context != "" else "\n"

    def encode(self, x):
        return self.tokenizer.encode(x)

    def decode(self, x):
        """The text of the ids; invalid UTF-8 becomes U+FFFD."""
        return self.tokenizer.decode(x)

    def _sampler(self, temperature, top_p, top_k, **penalties):
        # ChatRWKV turns temperature 0 into top_p 0, which keeps only the most likely
        # token(s): the library's greedy choice. Its top_p must be in (0, 1].
        if temperature == 0 or top_p <= 0:
            temperature, top_p = 0.0, 1.0
        return Sampler(self.model.n_vocab, temperature=temperature, top_p=top_p, top_k=int(top_k),
                       seed=random.getrandbits(63), **penalties)

    def sample_logits(self, logits, temperature=1.0, top_p=0.85, top_k=0):
        """A token from the logits: top-p, top-k, then temperature (0 = the most likely)."""
        return self._sampler(temperature, top_p, top_k).sample(logits)

    def generate(self, ctx, token_count=100, args=None, callback=None, state=None):
        """ChatRWKV's generation loop: feeds the prompt (chunk_len tokens per call), then
        token_count times applies the bans and penalties, samples, and feeds the token back
        at the next step. callback(text) gets each piece once it decodes to valid UTF-8.
        A given state is advanced in place. Returns the generated text."""
        args = args if args is not None else PIPELINE_ARGS()
        sampler = self._sampler(args.temperature, args.top_p, args.top_k, presence_penalty=args.alpha_presence,
                                frequency_penalty=args.alpha_frequency, penalty_decay=args.alpha_decay,
                                banned_tokens=args.token_ban)
        token_stop = set(args.token_stop)
        all_tokens = []
        out_last = 0
        out_str = ""
        token = None
        for i in range(token_count):
            tokens = self.encode(ctx) if i == 0 else [token]
            if not tokens:
                raise RwkvError("generate: the prompt is empty")
            while len(tokens) > 0:
                out, state = self.model.forward(tokens[:args.chunk_len], state)
                tokens = tokens[args.chunk_len:]
            token = sampler.sample(out)
            if token in token_stop:
                break
            all_tokens.append(token)
            sampler.accept(token, self.decode([token]) in PENALTY_EXEMPT)
            tmp = self.decode(all_tokens[out_last:])
            if "\ufffd" not in tmp:  # whole UTF-8 characters
                if callback:
                    callback(tmp)
                out_str += tmp
                out_last = i + 1
        return out_str
