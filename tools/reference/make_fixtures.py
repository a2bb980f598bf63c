"""Generate the tiny random-weight RWKV fixtures in tests/fixtures/.

    python3 tools/reference/make_fixtures.py [--out tests/fixtures]

Deterministic (seeded random.Random, no dependence on dict/hash order).
For every architecture version it writes a checkpoint with the official
tensor names and shapes of that version (smaller), the token sequence and
the reference logits computed by rwkv_reference.py from the weights exactly
as stored in the file (read back with pth_io), plus fixtures.json.
"""

import argparse
import collections
import json
import math
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pth_io  # noqa: E402
from rwkv_reference import RWKVReference  # noqa: E402

VOCAB = 256
C = 32

# 24 tokens: ASCII, byte 0 (twice), bytes > 127 (UTF-8 of "中文", 0x80, 0xFF), a repeat
TOKENS = [84, 104, 101, 32, 0, 114, 119, 107, 118, 10, 255, 128,
          228, 184, 173, 230, 150, 135, 32, 84, 104, 101, 0, 33]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.t = collections.OrderedDict()

    def put(self, name, shape, values):
        n = 1
        for s in shape:
            n *= s
        assert len(values) == n, (name, shape, len(values))
        self.t[name] = (tuple(shape), pth_io.round_to_dtype(values, "f32"))

    def normal(self, name, shape, std, mean=0.0):
        n = 1
        for s in shape:
            n *= s
        self.put(name, shape, [self.r.gauss(mean, std) for _ in range(n)])

    def uniform(self, name, shape, lo, hi):
        n = 1
        for s in shape:
            n *= s
        self.put(name, shape, [self.r.uniform(lo, hi) for _ in range(n)])

    def linear(self, name, n_out, n_in, gain=1.0):
        self.normal(name, (n_out, n_in), gain / math.sqrt(n_in))

    def ln(self, prefix, n=C):
        self.normal(prefix + ".weight", (n,), 0.1, 1.0)
        self.normal(prefix + ".bias", (n,), 0.05)


def decay_profile(rng, n, lo, hi):
    """Spread of raw decay parameters over channels, like the training init
    (slow to fast), with noise."""
    return [lo + (hi - lo) * (i / max(n - 1, 1)) ** 0.9 + rng.gauss(0, 0.2) for i in range(n)]


def block_common(g, i, n=C):
    p = "blocks.%d." % i
    g.ln(p + "ln1", n)
    g.ln(p + "ln2", n)
    if i == 0:
        g.ln(p + "ln0", n)


def make_v4(seed, n_layer=2):
    g = Gen(seed)
    g.normal("emb.weight", (VOCAB, C), 1.0)
    F = 4 * C
    for i in range(n_layer):
        p, a, f = "blocks.%d." % i, "blocks.%d.att." % i, "blocks.%d.ffn." % i
        block_common(g, i)
        g.put(a + "time_decay", (C,), decay_profile(g.r, C, -4.0, 2.0))  # w = -exp(.)
        g.put(a + "time_first", (C,), [math.log(0.3) + 0.5 * ((j + 1) % 3 - 1) + g.r.gauss(0, 0.3)
                                       for j in range(C)])
        for m in "kvr":
            g.uniform(a + "time_mix_" + m, (1, 1, C), 0.0, 1.0)
        g.linear(a + "key.weight", C, C)
        g.linear(a + "value.weight", C, C)
        g.linear(a + "receptance.weight", C, C)
        g.linear(a + "output.weight", C, C, 0.7)
        g.uniform(f + "time_mix_k", (1, 1, C), 0.0, 1.0)
        g.uniform(f + "time_mix_r", (1, 1, C), 0.0, 1.0)
        g.linear(f + "key.weight", F, C)
        g.linear(f + "receptance.weight", C, C)
        g.linear(f + "value.weight", C, F, 0.7)
    g.ln("ln_out")
    g.linear("head.weight", VOCAB, C, 2.5)
    return g.t, dict(n_layer=n_layer, n_embd=C, head_size=None, n_head=None, n_ffn=F)


def make_v5(seed, sub, n_layer=2, N=8):
    """sub: '5.0' (no gate, time_decay/time_first [H]),
            '5.1' (gate, time_decay/time_faaaa [H]),
            '5.2' (gate, time_decay/time_faaaa [H,N])."""
    g = Gen(seed)
    H = C // N
    F = 4 * C
    g.normal("emb.weight", (VOCAB, C), 1.0)
    for i in range(n_layer):
        a, f = "blocks.%d.att." % i, "blocks.%d.ffn." % i
        block_common(g, i)
        if sub == "5.2":
            g.put(a + "time_decay", (H, N), decay_profile(g.r, C, -4.5, 0.2))
            g.put(a + "time_faaaa", (H, N), [g.r.uniform(-0.3, 1.0) for _ in range(C)])
        else:
            g.put(a + "time_decay", (H,), decay_profile(g.r, H, -4.5, 0.2))
            if sub == "5.0":
                g.put(a + "time_first", (H,), [g.r.gauss(-1.0, 0.5) for _ in range(H)])  # exp() at load
            else:
                g.put(a + "time_faaaa", (H,), [g.r.uniform(-0.3, 1.0) for _ in range(H)])
        for m in "kvr" + ("" if sub == "5.0" else "g"):
            g.uniform(a + "time_mix_" + m, (1, 1, C), 0.0, 1.0)
        g.normal(a + "ln_x.weight", (C,), 0.1, 1.0)
        g.normal(a + "ln_x.bias", (C,), 0.05)
        g.linear(a + "key.weight", C, C)
        g.linear(a + "value.weight", C, C)
        g.linear(a + "receptance.weight", C, C)
        g.linear(a + "output.weight", C, C, 0.5)
        if sub != "5.0":
            g.linear(a + "gate.weight", C, C)
        g.uniform(f + "time_mix_k", (1, 1, C), 0.0, 1.0)
        g.uniform(f + "time_mix_r", (1, 1, C), 0.0, 1.0)
        g.linear(f + "key.weight", F, C)
        g.linear(f + "value.weight", C, F, 0.7)
        g.linear(f + "receptance.weight", C, C)
    g.ln("ln_out")
    g.linear("head.weight", VOCAB, C, 2.5)
    return g.t, dict(n_layer=n_layer, n_embd=C, head_size=N, n_head=H, n_ffn=F)


def make_v6(seed, n_layer=2, N=8, D_mix=8, D_decay=16):
    g = Gen(seed)
    H = C // N
    F = int(3.5 * C)  # 112
    g.normal("emb.weight", (VOCAB, C), 1.0)
    for i in range(n_layer):
        a, f = "blocks.%d.att." % i, "blocks.%d.ffn." % i
        block_common(g, i)
        for m in "xwkvrg":
            g.uniform(a + "time_maa_" + m, (1, 1, C), 0.0, 1.0)
        g.normal(a + "time_maa_w1", (C, 5 * D_mix), 0.3 / math.sqrt(C) * 3)
        g.normal(a + "time_maa_w2", (5, D_mix, C), 0.3)
        g.put(a + "time_decay", (1, 1, C), decay_profile(g.r, C, -4.5, 0.5))
        g.normal(a + "time_decay_w1", (C, D_decay), 0.5 / math.sqrt(C))
        g.normal(a + "time_decay_w2", (D_decay, C), 0.3)
        g.put(a + "time_faaaa", (H, N), [g.r.uniform(-0.3, 1.0) for _ in range(C)])
        g.linear(a + "receptance.weight", C, C)
        g.linear(a + "key.weight", C, C)
        g.linear(a + "value.weight", C, C)
        g.linear(a + "output.weight", C, C, 0.5)
        g.linear(a + "gate.weight", C, C)
        g.normal(a + "ln_x.weight", (C,), 0.1, 1.0)
        g.normal(a + "ln_x.bias", (C,), 0.05)
        g.uniform(f + "time_maa_k", (1, 1, C), 0.0, 1.0)
        g.uniform(f + "time_maa_r", (1, 1, C), 0.0, 1.0)
        g.linear(f + "key.weight", F, C)
        g.linear(f + "receptance.weight", C, C)
        g.linear(f + "value.weight", C, F, 0.7)
    g.ln("ln_out")
    g.linear("head.weight", VOCAB, C, 2.5)
    return g.t, dict(n_layer=n_layer, n_embd=C, head_size=N, n_head=H, n_ffn=F,
                     d_mix=D_mix, d_decay=D_decay)


def make_v7(seed, n_layer=3, N=16, D_w=8, D_a=8, D_v=4, D_g=16, C=C, F=None):
    """C/F default to the tiny size (32, 4*C); tiny-v7.0-c256 uses C=256 so that
    llama-quantize can make real K-quant blocks (rows a multiple of 256)."""
    g = Gen(seed)
    H = C // N
    F = F or 4 * C
    g.normal("emb.weight", (VOCAB, C), 1.0)
    for i in range(n_layer):
        a, f = "blocks.%d.att." % i, "blocks.%d.ffn." % i
        block_common(g, i, C)
        for m in "rwkvag":
            g.uniform(a + "x_" + m, (1, 1, C), 0.0, 1.0)
        g.normal(a + "w1", (C, D_w), 0.5 / math.sqrt(C))
        g.normal(a + "w2", (D_w, C), 0.5)
        g.put(a + "w0", (1, 1, C), decay_profile(g.r, C, -6.0, 1.0))
        g.normal(a + "a1", (C, D_a), 0.5 / math.sqrt(C))
        g.normal(a + "a2", (D_a, C), 0.5)
        g.normal(a + "a0", (1, 1, C), 0.5)
        if i > 0:  # layer 0 has no value-residual LoRA (its v is v_first)
            g.normal(a + "v1", (C, D_v), 0.5 / math.sqrt(C))
            g.normal(a + "v2", (D_v, C), 0.5)
            g.normal(a + "v0", (1, 1, C), 0.5)
        g.normal(a + "g1", (C, D_g), 1.0 / math.sqrt(C))
        g.normal(a + "g2", (D_g, C), 1.0 / math.sqrt(D_g))
        g.normal(a + "k_k", (1, 1, C), 0.1, 0.85)
        g.normal(a + "k_a", (1, 1, C), 0.1, 1.0)
        g.normal(a + "r_k", (H, N), 0.3)
        g.linear(a + "receptance.weight", C, C)
        g.linear(a + "key.weight", C, C)
        g.linear(a + "value.weight", C, C)
        g.linear(a + "output.weight", C, C, 0.7)
        g.normal(a + "ln_x.weight", (C,), 0.1, 1.0)
        g.normal(a + "ln_x.bias", (C,), 0.05)
        g.uniform(f + "x_k", (1, 1, C), 0.0, 1.0)
        g.linear(f + "key.weight", F, C)
        g.linear(f + "value.weight", C, F, 0.7)
    g.ln("ln_out", C)
    g.linear("head.weight", VOCAB, C, 2.5)
    return g.t, dict(n_layer=n_layer, n_embd=C, head_size=N, n_head=H, n_ffn=F,
                     d_decay=D_w, d_aaa=D_a, d_mv=D_v, d_gate=D_g)


# (model name, arch version, builder, seed, stored dtypes); a dtype given as
# (dtype, suffix) overrides SUFFIX (tiny-v7.0-c256 is stored as f16 under the plain name)
MODELS = [
    ("tiny-v4", "4", lambda: make_v4(1004), ["f32", "bf16"]),
    ("tiny-v5.0", "5.0", lambda: make_v5(1050, "5.0"), ["f32"]),
    ("tiny-v5.1", "5.1", lambda: make_v5(1051, "5.1"), ["f32"]),
    ("tiny-v5.2", "5.2", lambda: make_v5(1052, "5.2"), ["f32"]),
    ("tiny-v6.0", "6.0", lambda: make_v6(1060), ["f32"]),
    ("tiny-v7.0", "7.0", lambda: make_v7(1070), ["f32", "f16", "bf16"]),
    # n_embd 256 / n_ffn 512, 1 layer: the smallest RWKV-7 whose matrices llama-quantize
    # really stores as Q4_K/Q5_K/Q6_K (tools/fixtures/make_gguf_fixtures.sh); float16 keeps
    # the .pth at ~1.3 MB; small LoRA ranks (as tiny-v7.0) keep the GGUFs small.
    ("tiny-v7.0-c256", "7.0", lambda: make_v7(1071, n_layer=1, N=64, C=256, F=512), [("f16", "")]),
]
SUFFIX = {"f32": "", "f16": "-fp16", "bf16": "-bf16"}


def stats(vals):
    n = len(vals)
    m = sum(vals) / n
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "tests", "fixtures"))
    a = ap.parse_args()
    out_dir = os.path.normpath(a.out)
    os.makedirs(out_dir, exist_ok=True)
    index = []
    for name, ver, build, dtypes in MODELS:
        tensors, meta = build()
        for dt in dtypes:
            dt, sfx = dt if isinstance(dt, tuple) else (dt, SUFFIX[dt])
            mname = name + sfx
            path = os.path.join(out_dir, mname + ".pth")
            pth_io.save_pth(path, tensors, dtype=dt)
            # round trip: names, shapes, values (as rounded to dt)
            sd = pth_io.load_pth(path)
            assert list(sd.keys()) == list(tensors.keys()), mname
            for k, (shape, vals) in tensors.items():
                t = sd[k]
                assert t.shape == shape and t.dtype == dt, (mname, k)
                assert t.data == pth_io.round_to_dtype(vals, dt), (mname, k)
            model = RWKVReference(sd)
            assert model.version == ver, (mname, model.version, ver)
            logits = model.run(TOKENS)
            flat = [v for row in logits for v in row]
            assert all(math.isfinite(v) for v in flat), mname
            # variation by position and sensitivity to the first token
            row_std = [stats(r)[1] for r in logits]
            pos_diff = max(abs(p - q) for p, q in zip(logits[0], logits[-1]))
            alt = model.run([TOKENS[0] + 1] + TOKENS[1:])
            far = max(abs(p - q) for p, q in zip(alt[-1], logits[-1]))
            assert pos_diff > 0.1 and far > 1e-4, (mname, pos_diff, far)
            lpath = os.path.join(out_dir, mname + ".logits.f32")
            with open(lpath, "wb") as fh:
                fh.write(struct.pack("<%df" % len(flat), *flat))
            with open(os.path.join(out_dir, mname + ".tokens.json"), "w") as fh:
                json.dump(TOKENS, fh)
                fh.write("\n")
            entry = collections.OrderedDict([
                ("name", mname), ("file", mname + ".pth"), ("arch_version", ver),
                ("weights_dtype", {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dt]),
                ("n_vocab", VOCAB)])
            entry.update(meta)
            entry.update([("tokens", TOKENS), ("tokens_file", mname + ".tokens.json"),
                          ("logits", mname + ".logits.f32"), ("logits_shape", [len(TOKENS), VOCAB])])
            index.append(entry)
            print("%-18s v%-4s %-4s %7d bytes  logit std/row %.2f..%.2f  first-token effect at t=%d: %.3g"
                  % (mname, ver, dt, os.path.getsize(path), min(row_std), max(row_std), len(TOKENS) - 1, far))
    doc = collections.OrderedDict([
        ("about", "Tiny random-weight RWKV checkpoints (official tensor names/shapes) and reference "
                  "logits from tools/reference/rwkv_reference.py (float64, RNN mode, one token at a "
                  "time from the initial state). Row t of a logits file = logits after feeding "
                  "tokens[0..t]; raw little-endian float32 [T, n_vocab]. fp16/bf16 models: logits "
                  "computed from the weights as rounded to that type. Regenerate with "
                  "python3 tools/reference/make_fixtures.py"),
        ("models", index)])
    with open(os.path.join(out_dir, "fixtures.json"), "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    print("total size of %s: %d bytes" % (out_dir, total))


if __name__ == "__main__":
    main()
