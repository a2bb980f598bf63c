#!/usr/bin/env python3
"""Plot and tabulate a batched-decode sweep (tools/bench/batch_sweep.sh output).

    python3 tools/bench/plot_batch.py results.jsonl --png docs/batch-decode.png --machine "..." > table.md

For each model (one row of panels): aggregate decode tokens/s and ms per step against
the batch size, with the two limits measured in the same runs: the memory bandwidth
(a step reads every weight once, so B x bandwidth / bytes per step) and the FP32 FMA
peak (2 FLOPs per matrix weight per token), and the batch where they cross; for q8_0 and
q4_s also the int8 dot-product peak (bench's int8_peak_gops), which their batches beyond
the exact limit use where the machine has it. Prints the
Markdown table of the README. Needs matplotlib (Debian: python3-matplotlib) for --png.
"""
import argparse
import json
import os
import statistics
import sys
from collections import OrderedDict


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                runs.append(json.loads(line))
    if not runs:
        sys.exit(f"{path}: no bench --json lines")
    return runs


def shape_name(run):
    base = os.path.basename(run["model"])
    for suffix in (".rwkv", ".pth"):
        base = base.removesuffix(suffix)
    for t in ("-f16", "-q8_0", "-q4_s", "-bf16", "-f32"):
        base = base.removesuffix(t)
    return base


def weight_type(run):
    # The file name's suffix (-f16, -q8_0, ...): matrix_types lists every type present
    # (the embedding, head and LoRA matrices keep their own), not the one chosen.
    base = os.path.basename(run["model"]).removesuffix(".rwkv")
    for t in ("f16", "q8_0", "q4_s", "bf16", "f32"):
        if base.endswith("-" + t):
            return t
    return run["matrix_types"]


def limits(run, batch):
    bandwidth_tps = batch * run["bandwidth_gb_per_s"] * 1e9 / run["weight_bytes_per_token"]
    fma_tps = run["fma_peak_gflops"] * 1e9 / (2.0 * run["matrix_params"])
    crossing = run["fma_peak_gflops"] * run["weight_bytes_per_token"] / (
        2.0 * run["matrix_params"] * run["bandwidth_gb_per_s"])
    return bandwidth_tps, fma_tps, crossing


def int8_fraction(run):
    """The share of the int8 dot-product peak (bench's int8_peak_gops) a step of q8_0 or
    q4_s weights used, or None: their batches beyond the exact limit run on int8 dot
    products where the machine has them, so the FMA peak is not their limit."""
    if weight_type(run) not in ("q8_0", "q4_s") or not run.get("int8_peak_gops"):
        return None
    return 2.0 * run["matrix_params"] * run["decode_tokens_per_second"] / (run["int8_peak_gops"] * 1e9)


def group(runs):
    groups = OrderedDict()
    for r in runs:
        groups.setdefault((shape_name(r), weight_type(r)), []).append(r)
    for key in groups:
        groups[key].sort(key=lambda r: r["batch"])
    return groups


def table(groups):
    lines = ["| model | weights | batch | ms/step | tokens/s (all) | x batch 1 | bandwidth used | FMA peak used | "
             "int8 peak used |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (shape, wtype), rs in groups.items():
        base = next((r["decode_tokens_per_second"] for r in rs if r["batch"] == 1), None)
        for r in rs:
            speedup = f"{r['decode_tokens_per_second'] / base:.2f}" if base else "-"
            int8 = int8_fraction(r)
            int8_cell = f"{100 * int8:.0f}%" if int8 is not None else "-"
            lines.append(f"| {shape} | {wtype} | {r['batch']} | {r['decode_ms_per_step']:.2f} | "
                         f"{r['decode_tokens_per_second']:.1f} | {speedup} | "
                         f"{100 * r['decode_bandwidth_fraction']:.0f}% | {100 * r['decode_fma_fraction']:.0f}% | "
                         f"{int8_cell} |")
    return "\n".join(lines)


def plot(groups, png, machine):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(OrderedDict.fromkeys(shape for shape, _ in groups))
    fig, axes = plt.subplots(len(shapes), 2, figsize=(11, 4.2 * len(shapes)), squeeze=False)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for row, shape in enumerate(shapes):
        ax_tps, ax_ms = axes[row]
        keys = [k for k in groups if k[0] == shape]
        for i, key in enumerate(keys):
            rs = groups[key]
            color = colors[i % len(colors)]
            batches = [r["batch"] for r in rs]
            ax_tps.plot(batches, [r["decode_tokens_per_second"] for r in rs], "o-", color=color,
                        label=f"{key[1]} measured")
            ax_ms.plot(batches, [r["decode_ms_per_step"] for r in rs], "o-", color=color, label=key[1])
            # The limits measured with this type's runs (medians over its batch sizes).
            bw = statistics.median(r["bandwidth_gb_per_s"] for r in rs)
            fma = statistics.median(r["fma_peak_gflops"] for r in rs)
            ref = dict(rs[0], bandwidth_gb_per_s=bw, fma_peak_gflops=fma)
            xs = [1, 2, 4, 8, 16, 32, 64]
            ax_tps.plot(xs, [limits(ref, b)[0] for b in xs], "--", color=color, alpha=0.6,
                        label=f"{key[1]} bandwidth limit")
            fma_tps, crossing = limits(ref, 1)[1], limits(ref, 1)[2]
            if i == 0:
                ax_tps.axhline(fma_tps, color="black", linestyle=":", label="FP32 FMA peak")
            if int8_fraction(rs[0]) is not None:
                int8_tps = statistics.median(r["int8_peak_gops"] for r in rs) * 1e9 / (2.0 * rs[0]["matrix_params"])
                ax_tps.axhline(int8_tps, color=color, linestyle="-.", alpha=0.6, label=f"{key[1]} int8 peak")
            ax_tps.axvline(crossing, color=color, linestyle=":", alpha=0.6)
            ax_tps.annotate(f"limits cross\nat B = {crossing:.0f}", (crossing, fma_tps), color=color,
                            fontsize=8, textcoords="offset points", xytext=(4, -28 - 22 * i))
        for ax in (ax_tps, ax_ms):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("batch (sequences per step)")
            ax.grid(True, which="both", alpha=0.3)
        ax_tps.set_yscale("log")
        ax_tps.set_ylabel("decode tokens/s, all sequences")
        ax_tps.set_title(f"{shape}: aggregate throughput")
        ax_tps.legend(fontsize=7)
        ax_ms.set_ylabel("ms per step")
        ax_ms.set_title(f"{shape}: latency of one step")
        ax_ms.legend(fontsize=8)
    first = next(iter(groups.values()))[0]
    where = f", {machine}" if machine else ""
    fig.suptitle(f"Batched decode, {first['threads']} threads{where} (rwkv-cli bench --batch B)")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="JSON lines from tools/bench/batch_sweep.sh")
    parser.add_argument("--png", help="write the plot here")
    parser.add_argument("--machine", default="", help="the machine, for the title")
    args = parser.parse_args()
    groups = group(load(args.results))
    print(table(groups))
    if args.png:
        plot(groups, args.png, args.machine)


if __name__ == "__main__":
    main()
