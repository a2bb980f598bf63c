"""Tokenizers (raw bytes, RWKV World, GPT-NeoX 20B) and the streaming decoder.

    tok = Tokenizer("world", "rwkv_vocab_v20230424.txt")
    tok.encode("Hello, world!")        # [33155, 45, 40213, 34]
    tok.decode([33155, 45, 40213, 34])  # "Hello, world!"
"""

import ctypes
from ctypes import byref, c_size_t

from . import _lib
from ._lib import check
from .core import _token_buffer


class Tokenizer:
    """A loaded tokenizer: immutable, shareable between threads."""

    def __init__(self, kind="world", vocab_path=None):
        """`kind` is "bytes", "world" or "neox"; `vocab_path` the World vocabulary file or
        the NeoX tokenizer.json (ignored for bytes)."""
        lib = _lib.lib()
        self._handle = None
        self._lib = lib
        handle = lib.rwkv_tokenizer_load(str(kind).encode(), _lib.encode_path(vocab_path) if vocab_path else None)
        if not handle:
            raise _lib.error(f"{kind} tokenizer")
        self._set(handle)

    def _set(self, handle):
        self._handle = handle
        self.kind = self._lib.rwkv_tokenizer_kind(handle).decode()
        self.vocab_size = self._lib.rwkv_tokenizer_vocab_size(handle)

    @classmethod
    def for_model(cls, model, vocab_path=None):
        """The model's own tokenizer: bytes needs no file; World uses the vocabulary in the
        model file when there is one; otherwise `vocab_path`, or when None the kind's usual
        file name in the working directory or beside the model."""
        tok = cls.__new__(cls)
        tok._lib = model._lib
        tok._handle = None
        handle = tok._lib.rwkv_tokenizer_for_model(model._h(), _lib.encode_path(vocab_path) if vocab_path else None)
        if not handle:
            raise _lib.error(f"{model.path}: tokenizer")
        tok._set(handle)
        return tok

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._lib.rwkv_tokenizer_free(handle)

    def __repr__(self):
        return f"<rwkv_engine.Tokenizer {self.kind}, {self.vocab_size} ids>"

    def encode(self, text):
        """Text (str, or bytes taken as they are) to a list of token ids."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        if not data:
            return []
        capacity = len(data) + 16
        while True:
            out = (ctypes.c_int32 * capacity)()
            n = check(self._lib.rwkv_tokenize(self._handle, data, len(data), out, capacity))
            if n <= capacity:
                return out[:n]
            capacity = n

    def decode_bytes(self, ids):
        """The bytes the ids stand for (not necessarily whole UTF-8 characters); special
        tokens give none."""
        _, address, n = _token_buffer(ids)
        if n == 0:
            return b""
        capacity = 16 * n
        while True:
            out = ctypes.create_string_buffer(capacity)
            size = check(self._lib.rwkv_detokenize(self._handle, address, n, out, capacity))
            if size <= capacity:
                return out.raw[:size]
            capacity = size

    def decode(self, ids):
        """The text of the ids; bytes that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_bytes(self, token):
        """The bytes of one token."""
        return self.decode_bytes((token,))

    def decoder(self):
        """A StreamDecoder: text as ids arrive, never part of a UTF-8 character."""
        return StreamDecoder(self)


class StreamDecoder:
    """Turns ids into text as they arrive, holding back incomplete UTF-8 characters
    (bytes that can never become valid turn into U+FFFD). One thread at a time."""

    def __init__(self, tokenizer):
        self._handle = None
        self._lib = tokenizer._lib
        self.tokenizer = tokenizer  # the decoder uses it: keep it alive
        handle = self._lib.rwkv_decoder_new(tokenizer._handle)
        if not handle:
            raise _lib.error("decoder")
        self._handle = handle
        self._n = c_size_t()

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._lib.rwkv_decoder_free(handle)

    def _text(self, address):
        if not address:
            raise _lib.error("decoder")
        n = self._n.value
        return ctypes.string_at(address, n).decode("utf-8", errors="replace") if n else ""

    def push(self, token):
        """Adds one id; returns the text now complete (often "")."""
        return self._text(self._lib.rwkv_decoder_push(self._handle, int(token), byref(self._n)))

    def flush(self):
        """Returns what is held back and starts over."""
        return self._text(self._lib.rwkv_decoder_flush(self._handle, byref(self._n)))

