"""Choosing the next token from the logits, with the library's sampler.

    sampler = Sampler(model.n_vocab, temperature=0.8, top_p=0.9, seed=42)
    token = sampler.sample(logits)    # logits are not changed
    sampler.accept(token)             # for the repetition penalties
"""

import ctypes

from . import _lib
from ._lib import RwkvError, check

_ORDERS = {"official": _lib.SAMPLING_OFFICIAL, "llama": _lib.SAMPLING_LLAMA}


class Sampler:
    """The library's sampler: penalties, top-p, top-k, min-p and temperature, in ChatRWKV's
    order ("official", the default) or llama.cpp's ("llama"). Seeded: the same seed and
    logits give the same tokens. One thread at a time."""

    def __init__(self, n_vocab, temperature=None, top_p=None, top_k=None, min_p=None, presence_penalty=None,
                 frequency_penalty=None, penalty_decay=None, repetition_penalty=None, seed=None, order="official",
                 logit_bias=None, banned_tokens=None):
        """Any option left None takes the library's default (temperature 1, every filter
        and penalty off, penalty decay 0.996, seed 0). `n_vocab` may be a Model.
        temperature 0 is greedy. logit_bias maps ids to values added to their logits;
        banned_tokens are never sampled."""
        lib = _lib.lib()
        self._handle = None
        self._lib = lib
        self.n_vocab = int(getattr(n_vocab, "n_vocab", n_vocab))
        params = lib.rwkv_sampler_default_params()
        for name, value in (("temperature", temperature), ("top_p", top_p), ("top_k", top_k), ("min_p", min_p),
                            ("presence_penalty", presence_penalty), ("frequency_penalty", frequency_penalty),
                            ("penalty_decay", penalty_decay), ("repetition_penalty", repetition_penalty),
                            ("seed", seed)):
            if value is not None:
                setattr(params, name, value)
        if order not in _ORDERS:
            raise RwkvError(f"sampling order must be 'official' or 'llama', got {order!r}")
        params.order = _ORDERS[order]
        # The library copies the arrays; these only need to live through rwkv_sampler_new.
        bias = dict(logit_bias or {})
        bias_ids = (ctypes.c_int32 * max(len(bias), 1))(*bias.keys())
        bias_values = (ctypes.c_float * max(len(bias), 1))(*bias.values())
        banned = list(banned_tokens or [])
        banned_ids = (ctypes.c_int32 * max(len(banned), 1))(*banned)
        params.bias_ids = ctypes.addressof(bias_ids) if bias else None
        params.bias_values = ctypes.addressof(bias_values) if bias else None
        params.n_bias = len(bias)
        params.banned_ids = ctypes.addressof(banned_ids) if banned else None
        params.n_banned = len(banned)
        handle = lib.rwkv_sampler_new(ctypes.byref(params), self.n_vocab)
        if not handle:
            raise _lib.error("sampler")
        self._handle = handle
        self.params = params
        self._scratch = (ctypes.c_float * self.n_vocab)()

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._lib.rwkv_sampler_free(handle)

    def sample(self, logits):
        """Picks a token from n_vocab logits (a NumPy array or a sequence of floats, left
        unchanged)."""
        n = len(logits)
        if n != self.n_vocab:
            raise RwkvError(f"sampler: {n} logits given, the vocabulary has {self.n_vocab}")
        np = _lib.np
        if np is not None and isinstance(logits, np.ndarray):
            src = np.ascontiguousarray(logits, dtype=np.float32)
            ctypes.memmove(self._scratch, src.ctypes.data, 4 * n)
        else:
            self._scratch[:] = logits
        return check(self._lib.rwkv_sampler_sample(self._handle, self._scratch))

    def accept(self, token, exempt=False):
        """Records a generated token for the penalties; exempt=True for tokens that decode
        to a single space, tab or digit, which ChatRWKV does not count."""
        check(self._lib.rwkv_sampler_accept(self._handle, int(token), 1 if exempt else 0))

    def reset(self):
        """Forgets the penalty history (the random sequence continues)."""
        check(self._lib.rwkv_sampler_reset(self._handle))
