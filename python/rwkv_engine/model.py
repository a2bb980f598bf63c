"""RWKV as in the official `rwkv` package (rwkv/model.py):

    from rwkv_engine.model import RWKV
    model = RWKV(model="rwkv7-world-0.1b.rwkv", strategy="cpu fp32")   # strategy is ignored
    out, state = model.forward([187, 510, 1563], None)
    out, state = model.forward([310], state)

The engine runs on the CPU in the precision of the file it loads; convert a checkpoint
with `rwkv-cli convert --type f16` (or RWKV(..., convert_and_save_and_exit=PATH)).
"""

import os
import sys
import types

from .core import Model, State, convert

__all__ = ["RWKV", "Model", "State"]


class RWKV(Model):
    """A Model with the official constructor and attributes (args, version)."""

    def __init__(self, model, strategy="cpu fp32", verbose=True, convert_and_save_and_exit=None):
        """`model` is a path to any format the library reads; as in the official code, a
        path without its file that exists with ".pth" added is taken with it. `strategy`
        is accepted and ignored. With convert_and_save_and_exit, the model is converted
        to a native file there and the program exits, as the official code does."""
        path = os.fspath(model).strip()
        if not os.path.exists(path) and os.path.exists(path + ".pth"):
            path += ".pth"
        if convert_and_save_and_exit:
            convert(path, convert_and_save_and_exit)
            if verbose:
                print(f"Converted and saved to {convert_and_save_and_exit}. Now this will exit.", file=sys.stderr)
            raise SystemExit(0)
        if verbose:
            print(f"Loading {path} (rwkv_engine; strategy {strategy!r} ignored)", file=sys.stderr)
        super().__init__(path)
        self.strategy = strategy
        self.version = float(self.arch)
        self.args = types.SimpleNamespace(
            MODEL_NAME=path, strategy_string=strategy, n_layer=self.n_layer, n_embd=self.n_embd,
            n_att=self.n_embd, vocab_size=self.n_vocab, n_head=self.n_head, head_size=self.head_size)
