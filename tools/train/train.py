#!/usr/bin/env python3
"""Train the engine's small default model: RWKV-7 ("x070"), byte-level vocabulary of 256.

The architecture is the official one (BlinkDL/RWKV-LM, RWKV-v7), with the official tensor names
and shapes, so the saved .pth loads like any released RWKV-7 checkpoint:

    python3 tools/train/prepare_data.py --out data/
    python3 tools/train/train.py --data data/ --out out/ --n-layer 4 --n-embd 384 --dropout 0.25 --steps 6800
    rwkv-cli convert out/default-rwkv7.pth models/default-rwkv7.rwkv --type f16 --tokenizer bytes

(models/README.md records the exact arguments of the shipped model.)

Training runs the model in "GPT mode" (whole sequences at once; the WKV recurrence in a small CUDA
kernel, wkv7_cuda.cu, or a plain Python loop on the CPU). After training the weights are rounded to
float16 and saved; the held-out bits per byte are measured with those rounded weights; and the
reference logits for the engine are computed by an independent, token-by-token "RNN mode" forward
(`rnn_forward`), written after the official rwkv_v7_numpy.py.

    python3 tools/train/train.py --export-reference out/default-rwkv7.pth --data data/ --out out/
        recomputes only the reference fixture from a checkpoint (CPU is fine).
    python3 tools/train/train.py --self-test
        tiny CPU check: GPT mode == RNN mode, and a few training steps.
"""
import argparse
import contextlib
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HEAD_SIZE = 64
VOCAB = 256
CHUNK = 16          # state checkpoint interval of the CUDA kernel; training T must be a multiple
DECAY_SCALE = math.exp(-0.5)   # w = exp(-e^-0.5 * sigmoid(w0 + tanh(x w1) w2))

########################################################################################################
# WKV recurrence: S <- S diag(w) + (S a) b^T + v k^T ; y = S r   (per head, S is N_v x N_k)
########################################################################################################

_ext = None


def load_kernel():
    global _ext
    if _ext is None:
        from torch.utils.cpp_extension import load
        here = os.path.dirname(os.path.abspath(__file__))
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")
        _ext = load(name="wkv7_train", sources=[os.path.join(here, "wkv7_cuda.cpp"), os.path.join(here, "wkv7_cuda.cu")],
                    extra_cuda_cflags=["-O3", "-res-usage", f"-DN_={HEAD_SIZE}", f"-DCHUNK={CHUNK}"], verbose=False)
    return _ext


class WKV7Function(torch.autograd.Function):
    @staticmethod
    def forward(ctx, r, w, k, v, a, b):
        B, T, H, N = r.shape
        assert T % CHUNK == 0, "training length must be a multiple of CHUNK"
        y = torch.empty_like(v)
        sa = torch.empty_like(v)
        ckpt = torch.empty(B, H, T // CHUNK, N, N, device=r.device, dtype=torch.float32)
        _ext.forward(r, w, k, v, a, b, None, y, sa, ckpt, None)
        ctx.save_for_backward(r, w, k, v, a, b, sa, ckpt)
        return y

    @staticmethod
    def backward(ctx, dy):
        r, w, k, v, a, b, sa, ckpt = ctx.saved_tensors
        grads = [torch.empty_like(x) for x in (r, w, k, v, a, b)]
        _ext.backward(r, w, k, v, a, b, dy.float().contiguous(), sa, ckpt, *grads)
        return tuple(grads)


def wkv_loop(r, w, k, v, a, b, s0=None):
    """Reference recurrence, one time step at a time (CPU, tests). Inputs [B,T,H,N]."""
    B, T, H, N = r.shape
    S = torch.zeros(B, H, N, N, dtype=r.dtype, device=r.device) if s0 is None else s0
    ys = []
    for t in range(T):
        sa = S @ a[:, t, :, :, None]                                   # [B,H,N,1]
        S = S * w[:, t, :, None, :] + sa * b[:, t, :, None, :] + v[:, t, :, :, None] * k[:, t, :, None, :]
        ys.append((S @ r[:, t, :, :, None])[..., 0])
    return torch.stack(ys, 1), S


def wkv(r, w, k, v, a, b, s0=None, want_state=False):
    """Returns y [B,T,H,N] and (if want_state) the final state [B,H,N,N]."""
    dt = torch.float64 if r.dtype == torch.float64 else torch.float32   # float64 only in tests
    args = [x.to(dt).contiguous() for x in (r, w, k, v, a, b)]
    if args[0].is_cuda and _ext is not None:
        if torch.is_grad_enabled() and not want_state and s0 is None:
            return WKV7Function.apply(*args), None
        B, T, H, N = args[0].shape
        y = torch.empty_like(args[3])
        s_out = torch.empty(B, H, N, N, device=y.device, dtype=torch.float32)
        _ext.forward(*args, None if s0 is None else s0.float().contiguous(), y, None, None, s_out)
        return y, s_out
    return wkv_loop(*args, s0)

########################################################################################################
# Model (GPT mode). Module and parameter names give the official state-dict names.
########################################################################################################


def up(x):
    """The dtype to compute the recurrence inputs in: float32 (float64 in the CPU tests)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def lora_dim(C, factor):
    return max(32, int(round(factor * C ** 0.5 / 32)) * 32)   # the official suggestion


class TimeMix(nn.Module):
    def __init__(self, C, layer_id, n_layer):
        super().__init__()
        self.layer_id = layer_id
        H, N = C // HEAD_SIZE, HEAD_SIZE
        self.n_head = H
        r01 = layer_id / max(n_layer - 1, 1)        # 0 .. 1
        r10 = 1.0 - layer_id / n_layer              # 1 .. ~0
        ddd = (torch.arange(C, dtype=torch.float32) / C).view(1, 1, C)
        n = torch.arange(C, dtype=torch.float32)
        linear = n / (C - 1) - 0.5
        zigzag = ((n % N) - (N - 1) / 2) / ((N - 1) / 2)
        zigzag = zigzag * zigzag.abs()
        www = -6 + 6 * (n / (C - 1)) ** (1 + r01 ** 0.3)
        Dw, Da, Dv, Dg = lora_dim(C, 2.5), lora_dim(C, 2.5), lora_dim(C, 1.7), lora_dim(C, 5)

        P = nn.Parameter
        self.x_r = P(1.0 - ddd ** (0.2 * r10))
        self.x_w = P(1.0 - ddd ** (0.9 * r10))
        self.x_k = P(1.0 - ddd ** (0.7 * r10))
        self.x_v = P(1.0 - ddd ** (0.7 * r10))
        self.x_a = P(1.0 - ddd ** (0.9 * r10))
        self.x_g = P(1.0 - ddd ** (0.2 * r10))
        self.w0 = P((www + 0.5 + zigzag * 2.5).view(1, 1, C))
        self.w1 = P(torch.zeros(C, Dw))
        self.w2 = P(ortho(torch.zeros(Dw, C), 0.1))
        self.a0 = P((-0.19 + zigzag * 0.3 + linear * 0.4).view(1, 1, C))
        self.a1 = P(torch.zeros(C, Da))
        self.a2 = P(ortho(torch.zeros(Da, C), 0.1))
        if layer_id > 0:   # value residual gate; layer 0 has none
            self.v0 = P((0.73 - linear * 0.4).view(1, 1, C))
            self.v1 = P(torch.zeros(C, Dv))
            self.v2 = P(ortho(torch.zeros(Dv, C), 0.1))
        self.g1 = P(torch.zeros(C, Dg))
        self.g2 = P(ortho(torch.zeros(Dg, C), 0.1))
        self.k_k = P((0.71 - linear * 0.1).view(1, 1, C))
        self.k_a = P(torch.full((1, 1, C), 1.02))
        self.r_k = P(torch.full((H, N), -0.04))
        self.receptance = nn.Linear(C, C, bias=False)
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)
        self.ln_x = nn.GroupNorm(H, C, eps=64e-5)
        with torch.no_grad():
            ortho(self.receptance.weight, 1.0)
            ortho(self.key.weight, 0.1)
            ortho(self.value.weight, 1.0)
            self.output.weight.zero_()
            self.ln_x.weight.fill_(((1 + layer_id) / n_layer) ** 0.7)

    def forward(self, x, v_first, state):
        B, T, C = x.shape
        H, N = self.n_head, HEAD_SIZE
        x_prev = torch.cat([state[0].unsqueeze(1).to(x.dtype), x[:, :-1]], 1)
        xx = x_prev - x
        xr, xw, xk, xv, xa, xg = (x + xx * m for m in (self.x_r, self.x_w, self.x_k, self.x_v, self.x_a, self.x_g))

        r = self.receptance(xr).to(up(x))
        w = torch.exp(-DECAY_SCALE * torch.sigmoid(self.w0 + (torch.tanh(xw @ self.w1) @ self.w2).to(up(x))))
        k = self.key(xk).to(up(x))
        v = self.value(xv).to(up(x))
        if self.layer_id == 0:
            v_first = v
        else:
            v = v + (v_first - v) * torch.sigmoid(self.v0 + ((xv @ self.v1) @ self.v2).to(up(x)))
        a = torch.sigmoid(self.a0 + ((xa @ self.a1) @ self.a2).to(up(x)))
        g = (torch.sigmoid(xg @ self.g1) @ self.g2).to(up(x))
        kk = F.normalize((k * self.k_k).view(B, T, H, N), dim=-1, p=2.0, eps=1e-12)
        k = k * (1 + (a - 1) * self.k_a)

        rr, kh, vh, ah = (z.view(B, T, H, N) for z in (r, k, v, a))
        y, s_new = wkv(rr, w.view(B, T, H, N), kh, vh, -kk, kk * ah, state[1], want_state=state[1] is not None)
        y = self.ln_x(y.reshape(B * T, C)).view(B, T, C)
        y = y + ((rr * kh * self.r_k).sum(-1, keepdim=True) * vh).view(B, T, C)
        return self.output(y * g), v_first, (x[:, -1], s_new)


class ChannelMix(nn.Module):
    def __init__(self, C, layer_id, n_layer):
        super().__init__()
        r10 = 1.0 - layer_id / n_layer
        ddd = (torch.arange(C, dtype=torch.float32) / C).view(1, 1, C)
        self.x_k = nn.Parameter(1.0 - ddd ** (r10 ** 4))
        self.key = nn.Linear(C, 4 * C, bias=False)
        self.value = nn.Linear(4 * C, C, bias=False)
        with torch.no_grad():
            ortho(self.key.weight, 1.0)
            self.value.weight.zero_()

    def forward(self, x, state):
        x_prev = torch.cat([state.unsqueeze(1).to(x.dtype), x[:, :-1]], 1)
        k = x + (x_prev - x) * self.x_k
        return self.value(torch.relu(self.key(k)) ** 2), x[:, -1]


class Block(nn.Module):
    def __init__(self, C, layer_id, n_layer, dropout):
        super().__init__()
        self.layer_id = layer_id
        if layer_id == 0:
            self.ln0 = nn.LayerNorm(C)
        self.ln1 = nn.LayerNorm(C)
        self.ln2 = nn.LayerNorm(C)
        self.att = TimeMix(C, layer_id, n_layer)
        self.ffn = ChannelMix(C, layer_id, n_layer)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, v_first, state):
        if self.layer_id == 0:
            x = self.ln0(x)
        dx, v_first, att_state = self.att(self.ln1(x), v_first, (state[0], state[1]))
        x = x + self.drop(dx)
        dx, ffn_state = self.ffn(self.ln2(x), state[2])
        x = x + self.drop(dx)
        return x, v_first, (att_state[0], att_state[1], ffn_state)


class RWKV7(nn.Module):
    def __init__(self, n_layer, n_embd, dropout=0.0):
        super().__init__()
        assert n_embd % HEAD_SIZE == 0
        self.n_layer, self.n_embd = n_layer, n_embd
        self.emb = nn.Embedding(VOCAB, n_embd)
        self.blocks = nn.ModuleList([Block(n_embd, i, n_layer, dropout) for i in range(n_layer)])
        self.ln_out = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, VOCAB, bias=False)
        with torch.no_grad():
            self.emb.weight.uniform_(-1e-4, 1e-4)
            ortho(self.head.weight, 0.5 * math.sqrt(VOCAB / n_embd) if VOCAB > n_embd else 0.5)

    def zero_state(self, B, device, with_wkv):
        C, H = self.n_embd, self.n_embd // HEAD_SIZE
        z = lambda: torch.zeros(B, C, device=device)
        return [(z(), torch.zeros(B, H, HEAD_SIZE, HEAD_SIZE, device=device) if with_wkv else None, z())
                for _ in range(self.n_layer)]

    def forward(self, idx, state=None):
        """idx [B,T] bytes -> logits [B,T,256], new state. state=None: start from zeros, no state out."""
        B, T = idx.shape
        keep = state is not None
        if state is None:
            state = self.zero_state(B, idx.device, with_wkv=False)
        x = self.emb(idx)
        v_first = None
        new_state = []
        for block, st in zip(self.blocks, state):
            x, v_first, st = block(x, v_first, st)
            new_state.append(st)
        return self.head(self.ln_out(x)), (new_state if keep else None)


def ortho(t, gain):
    with torch.no_grad():
        if gain == 0:
            return t.zero_()
        return nn.init.orthogonal_(t, gain=gain)


def official_state_dict(model, dtype=None):
    """name -> contiguous tensor, in the order of the official checkpoints."""
    sd = model.state_dict()
    order = ["emb.weight"]
    att = ["x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "w1", "w2", "a0", "a1", "a2", "v0", "v1", "v2",
           "g1", "g2", "k_k", "k_a", "r_k", "receptance.weight", "key.weight", "value.weight", "output.weight",
           "ln_x.weight", "ln_x.bias"]
    for i in range(model.n_layer):
        p = f"blocks.{i}."
        if i == 0:
            order += [p + "ln0.weight", p + "ln0.bias"]
        order += [p + "ln1.weight", p + "ln1.bias", p + "ln2.weight", p + "ln2.bias"]
        order += [p + "att." + n for n in att if (p + "att." + n) in sd]
        order += [p + "ffn.x_k", p + "ffn.key.weight", p + "ffn.value.weight"]
    order += ["ln_out.weight", "ln_out.bias", "head.weight"]
    assert sorted(order) == sorted(sd.keys()), set(order) ^ set(sd.keys())
    out = {}
    for n in order:
        t = sd[n].detach().cpu()
        out[n] = (t.to(dtype) if dtype is not None else t).contiguous().clone()
    return out

########################################################################################################
# RNN mode: one byte at a time, from a plain state dict (independent of the classes above)
########################################################################################################


def rnn_forward(sd, tokens, dtype=torch.float64):
    """Logits [len(tokens), 256] from a state dict, one token at a time (official RNN-mode maths)."""
    W = {n: t.to(dtype) for n, t in sd.items()}
    C = W["emb.weight"].shape[1]
    H, N = C // HEAD_SIZE, HEAD_SIZE
    L = 1 + max(int(n.split(".")[1]) for n in W if n.startswith("blocks."))
    ln = lambda x, p: F.layer_norm(x, (C,), W[p + ".weight"], W[p + ".bias"], eps=1e-5)
    att_x = [torch.zeros(C, dtype=dtype) for _ in range(L)]
    ffn_x = [torch.zeros(C, dtype=dtype) for _ in range(L)]
    S = [torch.zeros(H, N, N, dtype=dtype) for _ in range(L)]
    out = []
    for tok in tokens:
        x = ln(W["emb.weight"][tok], "blocks.0.ln0")
        v_first = None
        for i in range(L):
            p = f"blocks.{i}.att."
            xa_ = ln(x, f"blocks.{i}.ln1")
            xx = att_x[i] - xa_
            att_x[i] = xa_
            xr, xw, xk, xv, xa, xg = (xa_ + xx * W[p + m].view(C) for m in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g"))
            r = W[p + "receptance.weight"] @ xr
            w = torch.exp(-DECAY_SCALE * torch.sigmoid(W[p + "w0"].view(C) + torch.tanh(xw @ W[p + "w1"]) @ W[p + "w2"]))
            k = W[p + "key.weight"] @ xk
            v = W[p + "value.weight"] @ xv
            if i == 0:
                v_first = v
            else:
                v = v + (v_first - v) * torch.sigmoid(W[p + "v0"].view(C) + (xv @ W[p + "v1"]) @ W[p + "v2"])
            a = torch.sigmoid(W[p + "a0"].view(C) + (xa @ W[p + "a1"]) @ W[p + "a2"])
            g = torch.sigmoid(xg @ W[p + "g1"]) @ W[p + "g2"]
            kk = k * W[p + "k_k"].view(C)
            k = k * (1 + (a - 1) * W[p + "k_a"].view(C))
            r_, w_, k_, v_, kk_, a_ = (z.view(H, N) for z in (r, w, k, v, kk, a))
            kk_ = kk_ / torch.clamp(kk_.norm(dim=-1, keepdim=True), min=1e-12)
            # S[h] is N_v x N_k:  S <- S diag(w) - (S kk)(kk*a)^T + v k^T ;  y = S r
            S[i] = S[i] * w_[:, None, :] - (S[i] @ kk_[:, :, None]) * (kk_ * a_)[:, None, :] + v_[:, :, None] * k_[:, None, :]
            y = (S[i] @ r_[:, :, None])[:, :, 0]
            y = (y - y.mean(-1, keepdim=True)) / torch.sqrt(y.var(-1, unbiased=False, keepdim=True) + 64e-5)
            y = y.reshape(C) * W[p + "ln_x.weight"] + W[p + "ln_x.bias"]
            y = y + ((r_ * k_ * W[p + "r_k"]).sum(-1, keepdim=True) * v_).reshape(C)
            x = x + W[p + "output.weight"] @ (y * g)

            p = f"blocks.{i}.ffn."
            xf = ln(x, f"blocks.{i}.ln2")
            kx = xf + (ffn_x[i] - xf) * W[p + "x_k"].view(C)
            ffn_x[i] = xf
            x = x + W[p + "value.weight"] @ torch.relu(W[p + "key.weight"] @ kx) ** 2
        out.append(W["head.weight"] @ ln(x, "ln_out"))
    return torch.stack(out)

########################################################################################################
# Data, evaluation, reference export
########################################################################################################


def load_split(data_dir, name):
    with open(os.path.join(data_dir, f"{name}.bin"), "rb") as f:
        raw = f.read()
    return raw, hashlib.sha256(raw).hexdigest()


def bf16(enabled):
    """bfloat16 autocast for the matrix products on the GPU (the recurrence stays float32)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


@torch.no_grad()
def evaluate(model, data, device, n_streams=16, ctx=1024, autocast=True):
    """Bits per byte over a byte string: split into n_streams contiguous streams, each run through the
    model in windows of ctx bytes with the recurrent state carried over (so every byte after a stream's
    first is predicted from its full past in that stream)."""
    was_training = model.training
    model.eval()
    arr = torch.tensor(np.frombuffer(data, dtype=np.uint8).astype(np.int64), device=device)
    L = len(arr) // n_streams
    streams = arr[: L * n_streams].view(n_streams, L)
    state = model.zero_state(n_streams, device, with_wkv=True)
    total, count = 0.0, 0
    for s in range(0, L - 1, ctx):
        inp = streams[:, s: min(s + ctx, L - 1)]
        tgt = streams[:, s + 1: s + 1 + inp.shape[1]]
        with bf16(autocast and device.type == "cuda"):
            logits, state = model(inp, state)
        total += F.cross_entropy(logits.float().reshape(-1, VOCAB), tgt.reshape(-1), reduction="sum").item()
        count += tgt.numel()
    model.train(was_training)
    return total / count / math.log(2), count


def export_reference(sd16, val, out_dir, sample_len=500, every=10):
    """RNN-mode reference logits for the engine: the first sample_len bytes of the held-out split,
    float16-rounded weights, maths in float64 (stored as float32); also reports float32 maths."""
    sample = list(val[:sample_len])
    sd = {n: t.float() for n, t in sd16.items()}
    t0 = time.time()
    ref64 = rnn_forward(sd, sample, torch.float64)
    ref32 = rnn_forward(sd, sample, torch.float32)
    positions = list(range(0, sample_len, every))
    rows = ref64[positions].float().numpy().astype("<f4")
    diff32 = (ref32.double() - ref64).abs().max().item()
    tgt = torch.tensor(sample[1:])
    nll = F.cross_entropy(ref64[:-1], tgt).item()
    with open(os.path.join(out_dir, "default_model_reference.f32"), "wb") as f:
        f.write(rows.tobytes())
    manifest = {
        "description": "RNN-mode logits of models/default-rwkv7.pth (float16 weights) from tools/train/train.py "
                       "(rnn_forward, float64 maths, stored as float32 little-endian). Starting from the zero state, "
                       "feed sample bytes 0..499 one at a time; row i of the .f32 file holds the 256 logits after "
                       "feeding byte positions[i].",
        "logits_file": "default_model_reference.f32",
        "shape": [len(positions), VOCAB],
        "dtype": "float32-le",
        "positions": positions,
        "sample_hex": bytes(sample).hex(),
        "sample_source": f"val.bin bytes [0, {sample_len}) from tools/train/prepare_data.py",
        "float32_vs_float64_max_abs_diff": diff32,
        "sample_bits_per_byte": nll / math.log(2),
        "tolerance": 1e-3,
    }
    with open(os.path.join(out_dir, "default_model_reference.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"reference: {len(positions)} rows, float32-vs-float64 max diff {diff32:.2e}, "
          f"sample bpb {nll / math.log(2):.4f}, {time.time() - t0:.1f}s")
    return ref64

########################################################################################################
# Training
########################################################################################################


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="folder with train.bin, dev.bin, val.bin (prepare_data.py)")
    p.add_argument("--out", default="out", help="output folder")
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=384)
    p.add_argument("--ctx-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--lr-final", type=float, default=1e-5)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--time-limit", type=float, default=0, help="stop training after this many seconds (0: none)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--name", default="default-rwkv7", help="checkpoint file name (without .pth)")
    p.add_argument("--no-export", action="store_true", help="skip saving and the reference export")
    p.add_argument("--export-reference", metavar="PTH", help="only recompute the reference fixture from a checkpoint")
    p.add_argument("--self-test", action="store_true", help="tiny CPU checks")
    args = p.parse_args()

    if args.self_test:
        return self_test()
    os.makedirs(args.out, exist_ok=True)
    if args.export_reference:
        val, _ = load_split(args.data, "val")
        sd16 = torch.load(args.export_reference, map_location="cpu")
        export_reference(sd16, val, args.out)
        return

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        load_kernel()
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    train, h_train = load_split(args.data, "train")
    dev, h_dev = load_split(args.data, "dev")
    val, h_val = load_split(args.data, "val")
    print(f"data: train {len(train)} B sha256 {h_train}\n      dev {len(dev)} B sha256 {h_dev}\n      val {len(val)} B sha256 {h_val}")
    print("args:", json.dumps(vars(args)))
    if device.type == "cuda":
        print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")

    model = RWKV7(args.n_layer, args.n_embd, args.dropout).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: L{args.n_layer} C{args.n_embd} H{args.n_embd // HEAD_SIZE}, {n_params} parameters "
          f"(float16 file ~{n_params * 2 / 2**20:.2f} MiB)")

    decay, no_decay, w0s = [], [], []
    for n, prm in model.named_parameters():
        if n.endswith("att.w0"):
            w0s.append(prm)
        elif prm.squeeze().dim() >= 2 and n.endswith(".weight"):
            decay.append(prm)
        else:
            no_decay.append(prm)
    groups = [{"params": decay, "weight_decay": args.weight_decay, "lr_scale": 1.0},
              {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0},
              {"params": w0s, "weight_decay": 0.0, "lr_scale": 2.0}]
    extra = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.99), eps=1e-8, **extra)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        prog = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr_final + 0.5 * (args.lr - args.lr_final) * (1 + math.cos(math.pi * min(prog, 1.0)))

    data_t = torch.tensor(np.frombuffer(train, dtype=np.uint8).astype(np.int64), device=device)
    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)
    B, T = args.batch_size, args.ctx_len
    offs = torch.arange(T + 1, device=device)
    best = (float("inf"), None, -1)
    t_start = time.time()
    tokens = 0
    loss_ema = None
    step = 0
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step) * g["lr_scale"]
        starts = torch.randint(0, len(data_t) - T - 1, (B,), device=device, generator=gen)
        chunk = data_t[starts[:, None] + offs]
        x, y = chunk[:, :-1], chunk[:, 1:]
        with bf16(device.type == "cuda"):
            logits, _ = model(x)
        logits = logits.float()
        ce = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        # the official "L2Wrap": pushes the largest logit of each position gently towards 0
        mx = logits.max(-1).values
        loss = ce + 0.5e-4 * (mx * mx).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        tokens += B * T
        if step % 50 == 0 or step == args.steps - 1:
            cel = ce.item()
            loss_ema = cel if loss_ema is None else 0.9 * loss_ema + 0.1 * cel
            el = time.time() - t_start
            print(f"step {step:6d}  loss {cel:.4f} ({cel / math.log(2):.3f} bpb)  lr {lr_at(step):.2e}  "
                  f"gnorm {gnorm.item():.2f}  {tokens / el / 1e3:.0f} ktok/s  {el:.0f}s", flush=True)
        last = step == args.steps - 1 or (args.time_limit and time.time() - t_start > args.time_limit)
        if (step + 1) % args.eval_every == 0 or last:
            dbpb, _ = evaluate(model, dev, device)
            mark = ""
            if dbpb < best[0]:
                best = (dbpb, {k: v.detach().clone() for k, v in model.state_dict().items()}, step + 1)
                mark = " *"
            print(f"eval step {step + 1}: dev {dbpb:.4f} bpb{mark}", flush=True)
        if last:
            break
    train_time = time.time() - t_start
    steps_done = step + 1
    print(f"trained {steps_done} steps, {tokens} tokens ({tokens / len(train):.2f} epochs) in {train_time:.1f}s; "
          f"best dev {best[0]:.4f} bpb at step {best[2]}")

    # final weights: the best on dev, rounded to float16
    model.load_state_dict(best[1])
    model.eval()
    sd16 = official_state_dict(model, torch.float16)
    with torch.no_grad():
        for n, prm in model.named_parameters():
            prm.copy_(sd16[n].float().to(device))
    val_bpb, val_n = evaluate(model, val, device, autocast=False)
    dev_bpb16, _ = evaluate(model, dev, device, autocast=False)
    train_sub = train[: len(val)]
    train_bpb, _ = evaluate(model, train_sub, device, autocast=False)
    print(f"float16 weights, float32 maths: val {val_bpb:.4f} bpb over {val_n} predicted bytes; dev {dev_bpb16:.4f}; "
          f"train (first {len(train_sub)} B) {train_bpb:.4f}")
    summary = {"n_layer": args.n_layer, "n_embd": args.n_embd, "params": n_params, "steps": steps_done,
               "tokens": tokens, "epochs": tokens / len(train), "train_seconds": train_time,
               "final_train_loss_ema_nats": loss_ema, "best_dev_step": best[2], "dev_bpb": dev_bpb16,
               "val_bpb": val_bpb, "train_subset_bpb": train_bpb,
               "sha256": {"train": h_train, "dev": h_dev, "val": h_val}, "args": vars(args),
               "torch": torch.__version__,
               "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"}
    if args.no_export:
        print(json.dumps(summary))
        return
    path = os.path.join(args.out, args.name + ".pth")
    torch.save(sd16, path)
    print(f"saved {path}: {os.path.getsize(path)} bytes")

    ref = export_reference(sd16, val, args.out)
    # GPT mode (CUDA kernel, float32) against RNN mode on the same sample
    with torch.no_grad():
        sample = torch.tensor(list(val[:ref.shape[0]]), device=device)[None]
        gpt, _ = model(sample, model.zero_state(1, device, with_wkv=True))
    gdiff = (gpt[0].double().cpu() - ref).abs().max().item()
    print(f"GPT mode vs RNN mode on the sample: max abs diff {gdiff:.2e}")
    summary["gpt_vs_rnn_max_abs_diff"] = gdiff
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary))

########################################################################################################
# Checks
########################################################################################################


def self_test():
    torch.manual_seed(0)
    m = RWKV7(3, 128).double()
    with torch.no_grad():   # perturb the zero-initialised matrices so every path matters
        for n, prm in m.named_parameters():
            prm.add_(torch.randn_like(prm) * 0.05)
    idx = torch.randint(0, 256, (1, 40))
    with torch.no_grad():
        gpt, _ = m(idx)
        st = m.zero_state(1, "cpu", with_wkv=True)
        st = [tuple(z.double() for z in s) for s in st]
        a, st = m(idx[:, :17], st)           # stateful GPT mode in two pieces
        b, _ = m(idx[:, 17:], st)
        sd = official_state_dict(m)
        rnn = rnn_forward(sd, idx[0].tolist())
    print("GPT vs RNN  max abs diff", (gpt[0] - rnn).abs().max().item())
    print("GPT split   max abs diff", (torch.cat([a, b], 1)[0] - rnn).abs().max().item())
    assert (gpt[0] - rnn).abs().max() < 1e-9 and (torch.cat([a, b], 1)[0] - rnn).abs().max() < 1e-9
    for n, t in sd.items():
        print(f"  {n:32s} {tuple(t.shape)}")
    # a few training steps on random bytes
    m = RWKV7(2, 128)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    data = torch.randint(97, 100, (4, 33))
    for i in range(30):
        logits, _ = m(data[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), data[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i % 10 == 0 or i == 29:
            print(f"  step {i} loss {loss.item():.3f}")
    print("self-test ok")


if __name__ == "__main__":
    main()
