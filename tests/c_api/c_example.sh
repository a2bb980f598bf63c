#!/usr/bin/env bash
# Installs the build into a scratch prefix, compiles examples/c/generate.c as C99
# against it through pkg-config, and checks that its greedy output equals rwkv-cli's.
# Usage: c_example.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS...]
set -euo pipefail
build=$(cd "$1" && pwd)
source=$(cd "$2" && pwd)
shift 2
work=$build/c-example-test
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
pc=$(find "$work/prefix" -name rwkv.pc)
[ -n "$pc" ] || { echo "c_example: no rwkv.pc installed under $work/prefix" >&2; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir rwkv)
# shellcheck disable=SC2046
gcc -std=c99 -Wall -Wextra -Werror -pedantic "$@" "$source/examples/c/generate.c" $(pkg-config --cflags --libs rwkv) \
  -Wl,-rpath,"$libdir" -o "$work/generate"
if readelf -d "$work/generate" | grep -q 'librwkv.so.1'; then :; else
  echo "c_example: the example is not linked against librwkv.so.1" >&2
  exit 1
fi

# The default model is found beside the installed library, with no environment help.
unset RWKV_DEFAULT_MODEL
prompt="The Python interpreter"
RWKV_GREEDY=1 "$work/generate" "$prompt" 60 >"$work/c.txt"
"$work/prefix/bin/rwkv-cli" generate --prompt "$prompt" --max-tokens 60 --temperature 0 \
  --presence-penalty 0 --frequency-penalty 0 >"$work/cli.txt" 2>/dev/null
printf '\n' >>"$work/cli.txt"  # the example ends its output with a newline
if ! cmp -s "$work/c.txt" "$work/cli.txt"; then
  echo "c_example: the C example's greedy output differs from rwkv-cli generate's:" >&2
  diff "$work/c.txt" "$work/cli.txt" >&2 || true
  exit 1
fi
[ "$(wc -c <"$work/c.txt")" -gt 60 ] || { echo "c_example: output too short" >&2; exit 1; }
"$work/generate" >/dev/null 2>&1 && { echo "c_example: no arguments should be a usage error" >&2; exit 1; }
"$work/generate" "x" 5 /nonexistent.rwkv 2>"$work/err.txt" && { echo "c_example: a missing model should fail" >&2; exit 1; }
grep -q "/nonexistent.rwkv" "$work/err.txt" || { echo "c_example: error does not name the file" >&2; cat "$work/err.txt" >&2; exit 1; }
echo "c_example: built as C99 through pkg-config; greedy output equals rwkv-cli's"
rm -rf "$work"
