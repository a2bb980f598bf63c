#!/usr/bin/env python3
"""Markdown table of batch 16 against batch 1 from the lines of tools/bench/batch_sweep.sh --ratio:
per model the aggregate tokens/s of each round, the ratio of the medians, and the ratio
within each round (the two runs of a round are minutes apart at most)."""
import json
import os
import statistics
import sys


def main(path):
    by_model = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                run = json.loads(line)
                by_model.setdefault(os.path.basename(run["model"]), {}).setdefault(run["batch"], []).append(run)
    print("| model | batch 1 tok/s (each round) | batch 16 tok/s (each round) | ratio of medians | per-round ratios |")
    print("|---|---|---|---:|---|")
    for model, batches in by_model.items():
        one = [r["decode_tokens_per_second"] for r in sorted(batches.get(1, []), key=lambda r: r["round"])]
        sixteen = [r["decode_tokens_per_second"] for r in sorted(batches.get(16, []), key=lambda r: r["round"])]
        if not one or not sixteen:
            continue
        ratio = statistics.median(sixteen) / statistics.median(one)
        print(f"| {model} | {', '.join(f'{x:.1f}' for x in one)} | {', '.join(f'{x:.1f}' for x in sixteen)} | "
              f"{ratio:.2f} | {', '.join(f'{b / a:.2f}' for a, b in zip(one, sixteen))} |")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__ + "\n\nusage: ratio_table.py RESULTS.jsonl")
        sys.exit(0 if len(sys.argv) == 2 else 2)
    main(sys.argv[1])
