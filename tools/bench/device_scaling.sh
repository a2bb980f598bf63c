#!/usr/bin/env bash
# Thread-scaling benchmark of rwkv-cli against rwkv.cpp on synthetic RWKV-7 models of the
# released 0.1B and 1.5B shapes, for a machine without network access (the `device`).
#
#   tools/bench/device_scaling.sh [--quick] [--threads-list 1,2,4,8,16] [--models 0.1b,1.5b]
#       [--types f16,q8_0,q4_s] [--rwkvcpp-q4 Q5_1] [--rwkvcpp-chunk 0] [--deadline-s 560]
#       [--deps auto|system|carried] [--src auto|tree|head] [--jobs N] [--out DIR] [--work DIR]
#       [--rwkvcpp-fp16 SIZE=FILE] [--quiet-only]
#
# It builds this checkout (rwkv-cli, rwkv-gen-model) and rwkv.cpp (.device-carry/rwkv.cpp,
# with tools/bench/rwkvcpp_bench.c over its rwkv.h), generates each model with
# rwkv-gen-model, converts it with `rwkv-cli convert` (f16, q8_0, q4_s) and with rwkv.cpp's
# python/convert_pytorch_to_ggml.py (FP16, through tools/bench/rwkvcpp_convert.py; needs
# torch) and quantizer (Q8_0 and, beside our q4_s, --rwkvcpp-q4), then runs both at each
# thread count. Results under --out ($OUT when
# set, else WORK/out): results.jsonl (one object per run), results.md (the table),
# environment.txt (lscpu, compilers, `rwkv-cli info`, sources), log.txt.
#
# --quick: 0.1b only, threads 1,16 (a later --threads-list or --models overrides).
# --deps: auto (default) unpacks each carried Debian package (.device-carry/debs, from
#   tools/bench/prepare_device_carry.sh) whose package is not installed; carried: all of
#   them; system: none.
# --src: auto (default) builds the working tree and, if that fails, HEAD's sources
#   (.device-carry/head-src.tar.gz, else `git archive HEAD` where .git exists).
# --deadline-s: runs that would start after this many seconds from the start are
#   skipped (recorded as skipped), and each run is cut at it.
# --rwkvcpp-chunk: 0 feeds the prompt in one rwkv_eval_sequence; C > 0 uses
#   rwkv_eval_sequence_in_chunks with chunks of C tokens.
# --rwkvcpp-fp16 SIZE=FILE: use an existing rwkv.cpp FP16 file for SIZE instead of
#   converting (for machines without torch).
# --quiet-only: stop before building when the machine is shared with other work: its
#   units, measured first on 1, 4 and 16 threads by tools/bench/cpu_scaling_probe.cpp
#   (probe.jsonl), must reach 3.5x one thread's rate on 4 threads and 12.5x on 16.
#
# Token counts: 0.1b prefill 128 / decode 32; 1.5b prefill 64 / decode 16, and at one
# thread prefill 32 / decode 8. Both engines get the same counts and the same prompt ids.
#
# On the device (the `run` tool), after tools/bench/prepare_device_carry.sh here:
#   full:  command "bash tools/bench/device_scaling.sh --deadline-s 550", carry [".device-carry"],
#          timeout_s 600 (measured parts suggest about 7.5 minutes on its 16-core Xeons)
#   quick: command "bash tools/bench/device_scaling.sh --quick", same carry, timeout_s 300
# The device's Xeon model differs between machines (Sapphire and Emerald Rapids were
# seen): compare numbers from one call only; environment.txt records its lscpu.
set -uo pipefail

start_seconds=$SECONDS
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
carry="$repo/.device-carry"
out_dir=""
work="/tmp/rwkv-device-bench"
threads_list="1,2,4,8,16"
models="0.1b,1.5b"
types="f16,q8_0,q4_s"
rwkvcpp_q4="Q5_1"
rwkvcpp_chunk=0
deadline=560
deps_mode=auto
src_mode=auto
jobs="$(nproc)"
quick=0
quiet_only=0
threads_given=0
models_given=0
declare -A fp16_override=()

usage() { sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --quiet-only) quiet_only=1; shift ;;
    --threads-list) threads_list="$2"; threads_given=1; shift 2 ;;
    --models) models="$2"; models_given=1; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    --rwkvcpp-q4) rwkvcpp_q4="$2"; shift 2 ;;
    --rwkvcpp-chunk) rwkvcpp_chunk="$2"; shift 2 ;;
    --deadline-s) deadline="$2"; shift 2 ;;
    --deps) deps_mode="$2"; shift 2 ;;
    --src) src_mode="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --out) out_dir="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --rwkvcpp-fp16) fp16_override["${2%%=*}"]="${2#*=}"; shift 2 ;;
    --help | -h) usage; exit 0 ;;
    *) echo "device_scaling.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ -n "$out_dir" ] || out_dir="${OUT:-$work/out}"
if [ "$quick" = 1 ]; then
  [ "$threads_given" = 1 ] || threads_list="1,16"
  [ "$models_given" = 1 ] || models="0.1b"
fi
case "$deps_mode" in auto | system | carried) ;; *) echo "device_scaling.sh: --deps auto|system|carried" >&2; exit 2 ;; esac
case "$src_mode" in auto | tree | head) ;; *) echo "device_scaling.sh: --src auto|tree|head" >&2; exit 2 ;; esac
IFS=, read -r -a thread_counts <<< "$threads_list"
IFS=, read -r -a model_sizes <<< "$models"
IFS=, read -r -a weight_types <<< "$types"

mkdir -p "$out_dir" "$work/models"
results="$out_dir/results.jsonl"
table_md="$out_dir/results.md"
env_txt="$out_dir/environment.txt"
log="$out_dir/log.txt"
: > "$results"
: > "$log"
table_py="$here/scaling_table.py"

progress() { printf '[%4ds] %s\n' "$((SECONDS - start_seconds))" "$*" | tee -a "$log" >&2; }
# Runs a command with its output in the log; on failure shows the log's last lines.
logged() {
  local what="$1" began=$SECONDS; shift
  echo "### $what: $*" >> "$log"
  if "$@" >> "$log" 2>&1; then
    progress "$what: $((SECONDS - began)) s"
    return 0
  fi
  local rc=$?
  progress "FAILED ($rc): $what; the end of its output:"
  tail -n 25 "$log" >&2
  return $rc
}

progress "device_scaling.sh: models $models, types $types, threads $threads_list, out $out_dir, work $work"

# --- the machine --------------------------------------------------------------------
{
  echo "## date"; date -u
  echo "## lscpu"; lscpu
  echo "## uname"; uname -a
  echo "## os"; grep PRETTY_NAME /etc/os-release 2>/dev/null
  echo "## memory"; free -g
  echo "## compilers"; gcc --version | head -1; g++ --version | head -1; cmake --version | head -1
  echo "## python"; python3 -c 'import sys; print(sys.version)' 2>&1
  python3 -c 'import torch; print("torch", torch.__version__)' 2>&1 | tail -1
} > "$env_txt" 2>&1
progress "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs"

# How the machine's own units scale with threads (a shared machine's do not, and then
# every A/B here varies by tens of percent between processes).
probe="$work/cpu_scaling_probe"
if g++ -O2 -std=c++20 -pthread "$here/cpu_scaling_probe.cpp" -o "$probe" >> "$log" 2>&1 &&
  "$probe" --seconds 0.25 --threads "$(if [ "$(nproc)" -gt 4 ]; then echo "1,4,$(nproc)"; else echo "1,$(nproc)"; fi)" > "$out_dir/probe.jsonl" 2>> "$log"; then
  quiet="$(python3 - "$out_dir/probe.jsonl" "$(nproc)" <<'PY'
import json, sys
rates = {(d["unit"], d["threads"]): d["rate"] for d in map(json.loads, open(sys.argv[1]))}
n = int(sys.argv[2])
ok, shown = bool(rates), []
for unit in sorted({u for u, _ in rates}):
    for threads, wanted in ((4, 3.5), (n, 12.5 * n / 16)):
        if threads <= n and (unit, threads) in rates and (unit, 1) in rates:
            ratio = rates[(unit, threads)] / rates[(unit, 1)]
            ok = ok and ratio >= wanted
            shown.append(f"{unit} x{ratio:.1f} on {threads}")
print(int(ok), "; ".join(shown))
PY
)"
  progress "unit scaling: ${quiet#* }"
  echo "## unit scaling (tools/bench/cpu_scaling_probe.cpp): ${quiet#* }" >> "$env_txt"
  if [ "$quiet_only" = 1 ] && [ "${quiet%% *}" != 1 ]; then
    progress "the machine is not quiet (--quiet-only): stopping"
    exit 3
  fi
else
  progress "cpu_scaling_probe did not build or run (see log.txt)"
  [ "$quiet_only" = 1 ] && { progress "--quiet-only needs the probe: stopping"; exit 3; }
fi

# --- build dependencies ---------------------------------------------------------------
prefix="$work/deps"
if [ "$deps_mode" != system ] && [ -d "$carry/debs" ]; then
  rm -rf "$prefix"
  mkdir -p "$prefix"
  unpacked=()
  for deb in "$carry"/debs/*.deb; do
    package="$(dpkg-deb -f "$deb" Package 2>/dev/null || basename "$deb" | sed 's/_.*//')"
    if [ "$deps_mode" = auto ] && dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      continue
    fi
    # pkg-config: the machine's own when it has one, whatever its package is called.
    case "$package" in pkg-config | pkgconf | pkgconf-bin | libpkgconf3)
      [ "$deps_mode" = auto ] && command -v pkg-config > /dev/null && continue ;;
    esac
    dpkg-deb -x "$deb" "$prefix"
    unpacked+=("$package")
  done
  progress "unpacked into $prefix: ${unpacked[*]:-(nothing: all installed)}"
  # The .pc files name /usr; point them at the prefix.
  for pc in "$prefix"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc "$prefix"/usr/share/pkgconfig/*.pc "$prefix"/usr/lib/pkgconfig/*.pc; do
    [ -f "$pc" ] && sed -i -E "s@^([A-Za-z_]+)=/usr(/|\$)@\\1=$prefix/usr\\2@" "$pc"
  done
  export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export PKG_CONFIG_PATH="$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if ! command -v pkg-config > /dev/null && [ -x "$prefix/usr/bin/pkgconf" ]; then
    export PKG_CONFIG="$prefix/usr/bin/pkgconf"
  fi
  echo "## carried packages unpacked: ${unpacked[*]:-none}" >> "$env_txt"
fi

# --- rwkv.cpp (in the background while ours builds) -----------------------------------
rwkvcpp_src="$carry/rwkv.cpp"
rwkvcpp_build="$work/build-rwkvcpp"
rwkvcpp_bench="$rwkvcpp_build/rwkvcpp_bench"
build_rwkvcpp() {
  cmake -S "$rwkvcpp_src" -B "$rwkvcpp_build" -DCMAKE_BUILD_TYPE=Release -DRWKV_STANDALONE=ON \
    -DRWKV_AVX512=ON -DRWKV_NATIVE=ON -DGGML_NATIVE=ON -DGGML_CCACHE=OFF &&
    cmake --build "$rwkvcpp_build" --target rwkv -j "$jobs" &&
    gcc -std=c11 -O2 -Wall -Wextra -I"$rwkvcpp_src" "$here/rwkvcpp_bench.c" -o "$rwkvcpp_bench" \
      -L"$rwkvcpp_build" -lrwkv -Wl,-rpath,"$rwkvcpp_build"
}
rwkvcpp_ok=0
if [ -f "$rwkvcpp_src/rwkv.h" ]; then
  progress "building rwkv.cpp ($(head -1 "$rwkvcpp_src/SOURCE_COMMITS" 2>/dev/null))"
  build_rwkvcpp > "$work/build-rwkvcpp.log" 2>&1 &
  rwkvcpp_build_pid=$!
else
  progress "no $rwkvcpp_src: rwkv.cpp is skipped (run tools/bench/prepare_device_carry.sh and carry .device-carry)"
  rwkvcpp_build_pid=
fi

# --- our build ------------------------------------------------------------------------
build_ours() {  # source dir, build dir
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DRWKV_BUILD_TESTS=OFF &&
    cmake --build "$2" --target rwkv-cli rwkv-gen-model -j "$jobs"
}
# A build directory per source (kept between runs for incremental builds).
ours_build="$work/build-tree"
ours_source=""
if [ "$src_mode" != head ]; then
  progress "building rwkv-cli from the working tree"
  if logged "build (working tree)" build_ours "$repo" "$ours_build"; then
    ours_source="working tree"
    if git -C "$repo" rev-parse HEAD > /dev/null 2>&1; then
      ours_source="working tree (HEAD $(git -C "$repo" rev-parse --short HEAD), $(git -C "$repo" status --porcelain 2>/dev/null | wc -l) changed paths)"
    fi
  fi
fi
if [ -z "$ours_source" ] && [ "$src_mode" != tree ]; then
  head_src="$work/head-src"
  ours_build="$work/build-head"
  # Unpacked again only for another commit, so that a rerun builds incrementally.
  unpack_head() {  # label, then the command that writes a tar stream
    local label="$1"; shift
    if [ "$(cat "$head_src/.source" 2>/dev/null)" != "$label" ]; then
      rm -rf "$head_src"
      mkdir -p "$head_src"
      "$@" | tar -x -C "$head_src" && echo "$label" > "$head_src/.source"
    fi
    ours_source="$label"
  }
  # The carried tarball first: it is HEAD as prepare_device_carry.sh saw it, while a
  # copied .git may hold an older HEAD.
  if [ -f "$carry/head-src.tar.gz" ]; then
    unpack_head "HEAD $(cat "$carry/head-src.commit" 2>/dev/null) (.device-carry/head-src.tar.gz)" \
      gzip -dc "$carry/head-src.tar.gz"
  elif git -C "$repo" rev-parse HEAD > /dev/null 2>&1; then
    unpack_head "HEAD $(git -C "$repo" rev-parse --short HEAD) (git archive)" \
      git -C "$repo" archive HEAD -- CMakeLists.txt cmake include src tools
  fi
  if [ -n "$ours_source" ]; then
    progress "building rwkv-cli from $ours_source"
    logged "build ($ours_source)" build_ours "$head_src" "$ours_build" || ours_source=""
  fi
fi
cli="$ours_build/rwkv-cli"
gen="$ours_build/rwkv-gen-model"
if [ -z "$ours_source" ]; then
  progress "our build failed (see log.txt); only rwkv.cpp runs"
else
  progress "built rwkv-cli from $ours_source"
  echo "## our source: $ours_source" >> "$env_txt"
fi

if [ -n "$rwkvcpp_build_pid" ]; then
  if wait "$rwkvcpp_build_pid"; then
    rwkvcpp_ok=1
    progress "built rwkv.cpp"
    { echo "## rwkv.cpp"; cat "$rwkvcpp_src/SOURCE_COMMITS"; } >> "$env_txt"
  else
    progress "rwkv.cpp build failed; the end of its log:"
    tail -n 25 "$work/build-rwkvcpp.log" >&2
  fi
  cat "$work/build-rwkvcpp.log" >> "$log"
fi
has_torch=0
python3 -c 'import torch' > /dev/null 2>&1 && has_torch=1

rwkvcpp_type() {  # our type -> rwkv.cpp's
  case "$1" in f16) echo FP16 ;; q8_0) echo Q8_0 ;; q4_s) echo "$rwkvcpp_q4" ;; *) echo "" ;; esac
}

# --- models ---------------------------------------------------------------------------
# rwkv.cpp's files for one size: FP16 from the .pth (or the --rwkvcpp-fp16 file), then
# quantized from FP16. Runs beside our conversions; its output goes to its own log.
prepare_rwkvcpp() {  # size
  local size="$1" fp16="$work/models/$1-FP16.bin" type their began=$SECONDS
  if [ -n "${fp16_override[$size]:-}" ]; then
    cp "${fp16_override[$size]}" "$fp16" || return 1
  else
    python3 "$here/rwkvcpp_convert.py" "$rwkvcpp_src" "$work/models/$size.pth" "$fp16" FP16 || return 1
  fi
  echo "### FP16 ready after $((SECONDS - began)) s"
  for type in "${weight_types[@]}"; do
    their="$(rwkvcpp_type "$type")"
    if [ "$their" = FP16 ] || [ -z "$their" ]; then continue; fi
    "$rwkvcpp_bench" quantize "$fp16" "$work/models/$size-$their.bin" "$their" || return 1
  done
}

# Records one run: the tool's JSON plus labels, or a status line when it did not finish.
run_one() {  # engine size type engine_type threads prefill decode command...
  local engine="$1" size="$2" type="$3" engine_type="$4" threads="$5" prefill="$6" decode="$7"
  shift 7
  local labels=("engine=$engine" "size=$size" "type=$type" "engine_type=$engine_type" "threads_requested=$threads")
  local remaining=$((deadline - (SECONDS - start_seconds)))
  if [ "$remaining" -lt 5 ]; then
    progress "skip $engine $size $type t=$threads: past the deadline"
    python3 "$table_py" annotate "${labels[@]}" "status=skipped (deadline)" < /dev/null >> "$results"
    return
  fi
  local limit=$((remaining < 240 ? remaining : 240)) json rc
  echo "### $engine $size $type t=$threads: $*" >> "$log"
  json="$(timeout -k 5 "$limit" "$@" 2>> "$log")"
  rc=$?
  if [ $rc -eq 0 ] && [ -n "$json" ]; then
    printf '%s\n' "$json" | python3 "$table_py" annotate "${labels[@]}" status=ok >> "$results"
    progress "$(printf '%-8s %-4s %-5s t=%-2s decode %8s ms/token  prefill %9s tok/s' "$engine" "$size" "$type" "$threads" \
      "$(printf '%s' "$json" | python3 -c 'import json,sys; print("%.3f" % json.loads(sys.stdin.read().strip().splitlines()[-1])["decode_ms_per_token"])')" \
      "$(printf '%s' "$json" | python3 -c 'import json,sys; print("%.1f" % json.loads(sys.stdin.read().strip().splitlines()[-1])["prefill_tokens_per_second"])')")"
  else
    local status="failed (exit $rc)"
    [ $rc -eq 124 ] && status="timed out after ${limit}s"
    progress "$engine $size $type t=$threads: $status"
    tail -n 5 "$log" >&2
    python3 "$table_py" annotate "${labels[@]}" "status=$status" < /dev/null >> "$results"
  fi
}

info_done=0
for size in "${model_sizes[@]}"; do
  pth_ok=0
  ours_models_ok=0
  rwkvcpp_models_ok=0
  progress "generating and converting the $size models"
  if [ -n "$ours_source" ]; then
    logged "rwkv-gen-model $size" "$gen" --preset "rwkv7-$size" --out "$work/models/$size.pth" && pth_ok=1
  fi
  rwkvcpp_prep_pid=
  if [ "$rwkvcpp_ok" = 1 ]; then
    if [ -n "${fp16_override[$size]:-}" ] || { [ "$pth_ok" = 1 ] && [ "$has_torch" = 1 ]; }; then
      prepare_rwkvcpp "$size" > "$work/prepare-rwkvcpp-$size.log" 2>&1 &
      rwkvcpp_prep_pid=$!
      rwkvcpp_prep_began=$SECONDS
    elif [ "$has_torch" = 0 ]; then
      progress "no torch in python3: no rwkv.cpp model for $size (see --rwkvcpp-fp16)"
    else
      progress "no .pth for $size: no rwkv.cpp model"
    fi
  fi
  if [ "$pth_ok" = 1 ]; then
    ours_models_ok=1
    for type in "${weight_types[@]}"; do
      logged "rwkv-cli convert $size $type" "$cli" convert "$work/models/$size.pth" "$work/models/$size-$type.rwkv" \
        --type "$type" || { ours_models_ok=0; break; }
    done
  fi
  if [ "$ours_models_ok" = 1 ] && [ "$info_done" = 0 ]; then
    { echo "## rwkv-cli info ($size ${weight_types[0]})"; "$cli" info --model "$work/models/$size-${weight_types[0]}.rwkv"; } >> "$env_txt" 2>&1
    info_done=1
  fi
  if [ -n "$rwkvcpp_prep_pid" ]; then
    if wait "$rwkvcpp_prep_pid"; then
      rwkvcpp_models_ok=1
      progress "rwkv.cpp models $size (rwkvcpp_convert.py, quantize): $((SECONDS - rwkvcpp_prep_began)) s"
    else
      progress "rwkv.cpp models $size failed; the end of its log:"
      tail -n 15 "$work/prepare-rwkvcpp-$size.log" >&2
    fi
    { echo "### rwkv.cpp models $size"; cat "$work/prepare-rwkvcpp-$size.log"; } >> "$log"
  fi
  progress "$size models: ours $([ $ours_models_ok = 1 ] && echo ready || echo missing), rwkv.cpp $([ $rwkvcpp_models_ok = 1 ] && echo ready || echo missing)"
  ls -la "$work/models" >> "$log"

  for type in "${weight_types[@]}"; do
    their="$(rwkvcpp_type "$type")"
    for threads in "${thread_counts[@]}"; do
      prefill=128 decode=32
      if [ "$size" = 1.5b ]; then
        prefill=64 decode=16
        [ "$threads" = 1 ] && prefill=32 decode=8
      fi
      if [ "$ours_models_ok" = 1 ]; then
        run_one ours "$size" "$type" "$type" "$threads" "$prefill" "$decode" \
          "$cli" bench --model "$work/models/$size-$type.rwkv" --threads "$threads" \
          --prefill "$prefill" --decode "$decode" --json
      fi
      if [ "$rwkvcpp_models_ok" = 1 ] && [ -n "$their" ]; then
        run_one rwkv.cpp "$size" "$type" "$their" "$threads" "$prefill" "$decode" \
          "$rwkvcpp_bench" bench --model "$work/models/$size-$their.bin" --threads "$threads" \
          --prefill "$prefill" --decode "$decode" --chunk "$rwkvcpp_chunk"
      fi
    done
  done
done

{
  echo "# Thread scaling: rwkv-cli vs rwkv.cpp"
  echo
  echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs. Ours: ${ours_source:-not built}."
  echo "rwkv.cpp: $(head -1 "$rwkvcpp_src/SOURCE_COMMITS" 2>/dev/null | cut -d' ' -f1,2); prefill chunk ${rwkvcpp_chunk} (0: one rwkv_eval_sequence)."
  echo "Synthetic RWKV-7 models of the released shapes (rwkv-gen-model). Decode: median ms/token;"
  echo "prefill: 128 tokens (1.5b: 64, at 1 thread 32). Bandwidth fraction: weight bytes per token / decode time / measured read bandwidth."
  echo
  python3 "$table_py" table "$results"
} > "$table_md"
cat "$table_md"
progress "done: $results, $table_md, $env_txt"
