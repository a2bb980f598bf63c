#!/usr/bin/env bash
# Runs one fuzz target for SECONDS and prints how many inputs it executed.
#
#   tests/fuzz/run.sh TARGET SECONDS [more libFuzzer flags, e.g. -jobs=2 -workers=2]
#
# TARGET: world_vocab, neox_json, state_file, native_model, cli_args, pth, rwkvcpp, gguf,
# safetensors or server_request. The binaries are built by the main build (RWKV_FUZZ, on
# by default when clang++ is found) into build-test/fuzz; set RWKV_FUZZ_BIN to use another
# directory. New inputs go to a writable corpus in the build tree ($RWKV_FUZZ_WORK, default
# build-test/fuzz/work/TARGET), which is kept between runs so that long runs build on each
# other (RWKV_FUZZ_FRESH=1 empties it first, as the ctest runs do); the committed seeds in
# tests/fuzz/corpus are only read. A crash, leak, sanitizer report or timeout leaves its
# input in $RWKV_FUZZ_WORK/artifacts/ and makes the script fail; reproduce it with
#   build-test/fuzz/fuzz_TARGET path/to/crash-file
set -euo pipefail

if [ $# -lt 2 ]; then
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
target="$1"
seconds="$2"
shift 2

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin_dir="${RWKV_FUZZ_BIN:-$root/build-test/fuzz}"
work="${RWKV_FUZZ_WORK:-$bin_dir/work/$target}"
binary="$bin_dir/fuzz_$target"
seeds="$here/corpus/$target"

case "$target" in
  world_vocab | neox_json | native_model) max_len=65536 ;;
  state_file) max_len=8192 ;;
  cli_args) max_len=4096 ;;
  server_request) max_len=16384 ;;
  gguf | safetensors) max_len=8192 ;;
  pth | rwkvcpp) max_len=131072 ;;
  *) echo "run.sh: unknown target '$target'" >&2; exit 2 ;;
esac
if [ ! -x "$binary" ]; then
  echo "run.sh: $binary not found: build with clang++ installed (RWKV_FUZZ=ON), or set RWKV_FUZZ_BIN" >&2
  exit 2
fi

if [ "${RWKV_FUZZ_FRESH:-0}" = 1 ]; then rm -rf "$work/corpus"; fi
mkdir -p "$work/corpus" "$work/artifacts"
work="$(cd "$work" && pwd)"
binary="$(cd "$(dirname "$binary")" && pwd)/fuzz_$target"
log="$work/fuzz.log"
# libFuzzer writes the logs of -jobs=N workers (fuzz-N.log) into the working directory.
cd "$work"
rm -f fuzz-[0-9]*.log

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
# Reports with function, file and line (Debian's llvm-14 names the tool with a suffix).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
  for s in llvm-symbolizer llvm-symbolizer-14; do
    if command -v "$s" >/dev/null; then export ASAN_SYMBOLIZER_PATH="$(command -v "$s")"; break; fi
  done
fi
flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len"
  -print_final_stats=1 -artifact_prefix="$work/artifacts/")
# A dictionary where the target has one (binary formats without keywords have none).
if [ -s "$here/dict/$target.dict" ]; then flags+=(-dict="$here/dict/$target.dict"); fi

# Live output on a terminal; otherwise (ctest) only the end of the log when it fails.
status=0
if [ -t 2 ]; then
  "$binary" "${flags[@]}" "$@" "$work/corpus" "$seeds" 2>&1 | tee "$log" >&2 || status=${PIPESTATUS[0]}
else
  "$binary" "${flags[@]}" "$@" "$work/corpus" "$seeds" >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then tail -n 80 "$log" >&2; fi
fi

shopt -s nullglob
executed="$(cat "$log" fuzz-[0-9]*.log | sed -n 's/^stat::number_of_executed_units: *//p' | awk '{s += $1} END {print s + 0}')"
per_second=$((executed / (seconds > 0 ? seconds : 1)))
echo "fuzz_$target: $executed inputs executed in $seconds s ($per_second per second), exit status $status; log: $log"
if [ "$status" -ne 0 ]; then
  echo "fuzz_$target: failed; inputs that crashed or hung are in $work/artifacts/" >&2
fi
exit "$status"
