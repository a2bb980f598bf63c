#!/usr/bin/env python3
"""Helpers of tools/bench/device_scaling.sh (standard library only).

  scaling_table.py annotate KEY=VALUE... < one JSON object   -> the object with the keys added
  scaling_table.py table RESULTS.jsonl                       -> a markdown table on stdout

`annotate` reads a benchmark's JSON line (rwkv-cli bench --json, rwkvcpp_bench bench) and
prints it with the run's labels added (values that parse as JSON numbers stay numbers); with
no input it prints just the labels, which is how a failed or skipped run is recorded.
`table` pairs our rows with rwkv.cpp's of the same model size, type and thread count.
"""

import json
import sys


def parse_value(text):
    try:
        return json.loads(text) if text[:1] in "-0123456789" else text
    except ValueError:
        return text


def annotate(pairs):
    raw = sys.stdin.read().strip()
    record = {}
    if raw:
        # The last line that is a JSON object: a tool may print notes before it.
        for line in reversed(raw.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                record = json.loads(line)
                break
    for pair in pairs:
        key, _, value = pair.partition("=")
        record[key] = parse_value(value)
    print(json.dumps(record, sort_keys=False))


def cell(value, digits):
    return "—" if value is None else f"{value:.{digits}f}"


def table(path):
    rows = {}
    order = []
    isa = set()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            key = (r.get("size"), r.get("type"), r.get("threads_requested"))
            if key not in rows:
                rows[key] = {}
                order.append(key)
            rows[key][r.get("engine")] = r
            if r.get("engine") == "ours" and r.get("isa"):
                isa.add(r["isa"])

    def metric(r, name):
        return r.get(name) if r and r.get("status") == "ok" else None

    out = []
    out.append("| model | type (ours / rwkv.cpp) | threads | our decode ms/token | rwkv.cpp decode ms/token "
               "| our prefill tok/s | rwkv.cpp prefill tok/s | our decode bandwidth fraction |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    notes = []
    for key in order:
        size, weight_type, threads = key
        ours = rows[key].get("ours")
        theirs = rows[key].get("rwkv.cpp")
        their_type = (theirs or {}).get("engine_type", "—")
        fraction = metric(ours, "decode_bandwidth_fraction")
        out.append(
            f"| {size} | {weight_type} / {their_type} | {threads} "
            f"| {cell(metric(ours, 'decode_ms_per_token'), 3)} | {cell(metric(theirs, 'decode_ms_per_token'), 3)} "
            f"| {cell(metric(ours, 'prefill_tokens_per_second'), 1)} "
            f"| {cell(metric(theirs, 'prefill_tokens_per_second'), 1)} "
            f"| {'—' if fraction is None else f'{fraction * 100:.0f}%'} |")
        for name, r in (("ours", ours), ("rwkv.cpp", theirs)):
            if r and r.get("status") != "ok":
                notes.append(f"- {size} {weight_type} {threads} threads, {name}: {r.get('status')}")
    if isa:
        out.append("")
        out.append(f"Our kernels' ISA (bench 'isa'): {', '.join(sorted(isa))}.")
    if notes:
        out.append("")
        out.extend(notes)
    print("\n".join(out))


def main(argv):
    if len(argv) >= 2 and argv[1] == "annotate":
        annotate(argv[2:])
    elif len(argv) == 3 and argv[1] == "table":
        table(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
