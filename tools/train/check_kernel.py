#!/usr/bin/env python3
"""GPU check of wkv7_cuda.cu against the step-by-step recurrence (train.wkv_loop) in float64:
forward output and all six input gradients, on random inputs shaped like the model's; then timing."""
import time

import torch
import torch.nn.functional as F

import train


def inputs(B, T, H, N, dev, dtype):
    g = lambda: torch.randn(B, T, H, N, device=dev, dtype=dtype)
    r, k, v = g(), g(), g()
    w = torch.exp(-train.DECAY_SCALE * torch.sigmoid(g() * 2))
    kk = F.normalize(g(), dim=-1)
    a = torch.sigmoid(g())
    return [r, w, k, v, -kk, kk * a]


def main():
    train.load_kernel()
    torch.manual_seed(0)
    dev = "cuda"
    for (B, T, H) in [(2, 64, 2), (3, 256, 4)]:
        xs = inputs(B, T, H, 64, dev, torch.float64)
        xs32 = [x.float().detach().requires_grad_() for x in xs]
        xs64 = [x.detach().requires_grad_() for x in xs]
        y32 = train.WKV7Function.apply(*xs32)
        y64, _ = train.wkv_loop(*xs64)
        dy = torch.randn_like(y64)
        (y32 * dy.float()).sum().backward()
        (y64 * dy).sum().backward()
        rel = lambda a, b: ((a.double() - b).norm() / b.norm()).item()
        print(f"B{B} T{T} H{H}: y rel err {rel(y32, y64):.2e}; grads " +
              " ".join(f"{n} {rel(a.grad, b.grad):.2e}" for n, a, b in zip("rwkvab", xs32, xs64)))
        # stateful forward equals the training forward, and a split run equals a whole run
        with torch.no_grad():
            ya, s = train.wkv(*[x[:, : T // 2] for x in xs32], None, want_state=True)
            yb, _ = train.wkv(*[x[:, T // 2:] for x in xs32], s, want_state=True)
        print(f"   split-with-state vs whole: {(torch.cat([ya, yb], 1) - y32).abs().max().item():.2e}")

    B, T, H = 64, 512, 6
    xs = [x.float().requires_grad_() for x in inputs(B, T, H, 64, dev, torch.float32)]
    dy = torch.randn(B, T, H, 64, device=dev)
    for i in range(13):
        if i == 3:
            torch.cuda.synchronize()
            t0 = time.time()
        y = train.WKV7Function.apply(*xs)
        y.backward(dy)
    torch.cuda.synchronize()
    print(f"kernel fwd+bwd B{B} T{T} H{H}: {(time.time() - t0) / 10 * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
