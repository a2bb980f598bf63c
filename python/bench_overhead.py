#!/usr/bin/env python3
"""The binding's per-token overhead on decode.

Times the same decode loop two ways on one model and one thread pool:
  library: rwkv_eval called directly through ctypes, one token per call, into buffers
           allocated once (no Python objects created per token);
  binding: model.forward(token, state), which returns a new NumPy float32 array of logits
           each call (the usual way to use the package).
Both feed the same fixed token sequence from the initial state, each into its own state,
step by step in alternating order; the overhead is the median of the paired per-token
differences (the machine's noise moves whole runs by far more than the binding costs). With --cli, also prints
`rwkv-cli bench --decode N --json`'s decode_ms_per_token for reference.

    RWKV_LIBRARY=build/librwkv.so python3 python/bench_overhead.py bench-models/rwkv7-0.1b-f16.rwkv
"""

import argparse
import ctypes
import json
import os
import random
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rwkv_engine  # noqa: E402
from rwkv_engine import _lib  # noqa: E402


class Library:
    """rwkv_eval through ctypes with buffers allocated once: no Python object per token."""

    def __init__(self, model, tokens):
        lib = _lib.lib()
        self.lib = lib
        self.eval = lib.rwkv_eval
        self.model = model._handle
        self.state = lib.rwkv_state_new(model._handle)
        self.ids = (ctypes.c_int32 * len(tokens))(*tokens)
        self.logits = (ctypes.c_float * model.n_vocab)()
        self.logits_address = ctypes.addressof(self.logits)
        self.addresses = [ctypes.addressof(self.ids) + 4 * i for i in range(len(tokens))]

    def __del__(self):
        self.lib.rwkv_state_free(self.state)

    def step(self, i):
        if self.eval(self.model, self.state, self.addresses[i], 1, self.logits_address) != 0:
            raise _lib.error()


class Binding:
    """model.forward(token, state): a new NumPy array of logits per call."""

    def __init__(self, model, tokens):
        self.forward = model.forward
        self.state = model.new_state()
        self.tokens = tokens

    def step(self, i):
        logits, self.state = self.forward(self.tokens[i], self.state)


def run(model, tokens):
    """One run: both loops over the same tokens from the initial state, step by step in
    alternating order, so that each pair of steps sees the same machine. Returns the
    per-token times in ms: (library, binding)."""
    library, binding = Library(model, tokens), Binding(model, tokens)
    lib_ms, bind_ms = [], []
    clock = time.perf_counter
    for i in range(len(tokens)):
        pair = ((library, lib_ms), (binding, bind_ms))
        for loop, times in (pair if i % 2 == 0 else pair[::-1]):
            start = clock()
            loop.step(i)
            times.append((clock() - start) * 1e3)
    return lib_ms, bind_ms


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="model file (the 0.1B shape: rwkv-gen-model --preset rwkv7-0.1b, converted f16)")
    p.add_argument("--tokens", type=int, default=64, help="decode steps per run (default 64)")
    p.add_argument("--runs", type=int, default=7, help="runs of each kind, alternating (default 7)")
    p.add_argument("--threads", type=int, default=0, help="threads for the matrix products (0 = per physical core)")
    p.add_argument("--cli", help="rwkv-cli, to print its own `bench --decode` figure too")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    if _lib.np is None:
        sys.exit("bench_overhead.py: NumPy is needed (the binding's usual logits)")

    rwkv_engine.set_threads(args.threads)
    model = rwkv_engine.Model(args.model)
    rng = random.Random(1)
    tokens = [rng.randrange(model.n_vocab) for _ in range(args.tokens)]
    run(model, tokens[:4])  # warm up: page in the weights, start the threads
    library, binding, differences = [], [], []
    for _ in range(args.runs):
        lib_ms, bind_ms = run(model, tokens)
        library.append(sum(lib_ms) / len(lib_ms))
        binding.append(sum(bind_ms) / len(bind_ms))
        differences += [b - a for a, b in zip(lib_ms, bind_ms)]
    lib_ms = statistics.median(library)
    bind_ms = statistics.median(binding)
    # The median of the paired per-token differences: robust to the machine's noise,
    # which moves a whole run (or a token) by far more than the binding costs.
    diff_ms = statistics.median(differences)
    overhead = diff_ms / lib_ms * 100
    result = {
        "model": args.model,
        "threads": rwkv_engine.get_threads(),
        "tokens_per_run": args.tokens,
        "runs": args.runs,
        "library_ms_per_token": lib_ms,
        "binding_ms_per_token": bind_ms,
        "overhead_us_per_token": diff_ms * 1e3,
        "overhead_percent": overhead,
        "library_runs_ms": library,
        "binding_runs_ms": binding,
    }
    if args.cli:
        out = subprocess.run([args.cli, "bench", "--model", args.model, "--decode", str(args.tokens), "--prefill", "16",
                              "--threads", str(rwkv_engine.get_threads()), "--json"],
                             check=True, stdout=subprocess.PIPE).stdout
        result["cli_decode_ms_per_token"] = json.loads(out)["decode_ms_per_token"]
    if args.json:
        print(json.dumps(result))
        return
    print(f"model {args.model}: n_layer {model.n_layer}, n_embd {model.n_embd}, n_vocab {model.n_vocab}; "
          f"{result['threads']} threads; {args.runs} runs x {args.tokens} tokens")
    def runs(values):
        return ", ".join(f"{x:.3f}" for x in values)

    print(f"library (rwkv_eval via ctypes): {lib_ms:.3f} ms/token, median of runs ({runs(library)})")
    print(f"binding (model.forward):        {bind_ms:.3f} ms/token, median of runs ({runs(binding)})")
    if args.cli:
        print(f"rwkv-cli bench decode:          {result['cli_decode_ms_per_token']:.3f} ms/token")
    print(f"overhead (median of paired per-token differences): {result['overhead_us_per_token']:.1f} us/token "
          f"= {overhead:.2f}% of decode")


if __name__ == "__main__":
    main()
