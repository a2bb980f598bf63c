#!/usr/bin/env bash
# Batched-decode sweep: rwkv-cli bench --json at batch 1, 2, 4, 8, 16, 32 for each model,
# one JSON object per line on stdout (input of tools/bench/plot_batch.py).
#
#   tools/bench/batch_sweep.sh [--threads N] [--decode N] MODEL... > results.jsonl
#   tools/bench/batch_sweep.sh --ratio [--rounds N] MODEL... > results.jsonl
#
# --ratio: batch 16 against batch 1 in the same run, as issue #12 asks: B = 1 and 16
# alternating, --rounds rounds (3), --decode 16 --prefill 8, each line with its "round";
# tools/bench/ratio_table.py turns them into the README's table.
#
# The README's table came from the synthetic released shapes:
#   build/rwkv-gen-model --preset rwkv7-0.1b --out 0.1b.pth   (likewise rwkv7-1.5b)
#   build/rwkv-cli convert 0.1b.pth 0.1b-f16.rwkv --type f16   (likewise q8_0, q4_s)
# RWKV_CLI names the rwkv-cli to run (default: build/rwkv-cli beside this checkout).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cli="${RWKV_CLI:-$here/../../build/rwkv-cli}"
threads=2
decode=32
ratio=0
rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --decode) decode="$2"; shift 2 ;;
    --ratio) ratio=1; shift ;;
    --rounds) rounds="$2"; shift 2 ;;
    --help | -h) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "batch_sweep.sh: unknown flag $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -eq 0 ]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
if [ "$ratio" = 1 ]; then
  for model in "$@"; do
    for round in $(seq "$rounds"); do
      for batch in 1 16; do
        echo "batch_sweep.sh: $model, round $round, batch $batch" >&2
        "$cli" bench --model "$model" --threads "$threads" --batch "$batch" --decode 16 --prefill 8 --json |
          python3 -c 'import json, sys; d = json.loads(sys.stdin.read().strip().splitlines()[-1]); d["round"] = int(sys.argv[1]); print(json.dumps(d))' "$round"
      done
    done
  done
  exit 0
fi
for model in "$@"; do
  for batch in 1 2 4 8 16 32; do
    echo "batch_sweep.sh: $model, batch $batch" >&2
    "$cli" bench --model "$model" --threads "$threads" --batch "$batch" --decode "$decode" --prefill 64 --json
  done
done
