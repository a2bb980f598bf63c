#!/usr/bin/env bash
# Regenerates the seed corpora under tests/fuzz/corpus/ (all of them: the files are
# made here, none by hand). Needs a built rwkv-cli (default build-test/rwkv-cli) and
# the shared World and NeoX vocabularies (../shared/tokenizers, or $RWKV_SHARED_DIR).
#
#   tests/fuzz/make_corpus.sh [path/to/rwkv-cli]
#
# Every seed stays well under 64 KB so that the fuzzers mutate them quickly.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cli="${1:-$root/build-test/rwkv-cli}"
shared="${RWKV_SHARED_DIR:-$root/../shared}"
world_vocab="$shared/tokenizers/rwkv_vocab_v20230424.txt"
neox_json="$shared/tokenizers/20B_tokenizer.json"
fixtures="$root/tests/fixtures"
corpus="$here/corpus"

for f in "$cli" "$world_vocab" "$neox_json"; do
  [ -e "$f" ] || { echo "make_corpus.sh: $f not found" >&2; exit 1; }
done
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

rm -rf "$corpus"
mkdir -p "$corpus"/{world_vocab,neox_json,state_file,native_model,cli_args,pth,rwkvcpp}

# World vocabulary: slices of the real file (single bytes and escapes, box drawing,
# words, the longest tokens), the test fixture, and near-misses.
out="$corpus/world_vocab"
cp "$fixtures/tokenizer/world_small.txt" "$out/fixture-small.txt"
sed -n '1,300p' "$world_vocab" >"$out/bytes-and-escapes.txt"
sed -n '10000,10150p' "$world_vocab" >"$out/multibyte.txt"
sed -n '40000,40200p' "$world_vocab" >"$out/words.txt"
tail -n 40 "$world_vocab" >"$out/longest.txt"
sed -n '250,270p' "$world_vocab" | sed 's/$/\r/' >"$out/crlf.txt"
printf "1 'a' 1\n2 'b' 1\n3 'ab' 2" >"$out/no-final-newline.txt"
printf "1 'a' 1\n1 'b' 1\n" >"$out/duplicate-id.txt"
printf "1 'a' 1\n2 'a' 1\n" >"$out/duplicate-bytes.txt"
printf "1 'abc' 2\n" >"$out/wrong-length.txt"
printf "65535 'a' 1\n" >"$out/id-too-large.txt"
cat >"$out/literals.txt" <<'VOCAB'
1 '\x00' 1
2 "'" 1
3 '\'\'' 2
4 b'\xff\xfe' 2
5 '\u00e9' 2
6 '\U0001F600' 4
7 b'\\N{x}' 5
8 '\\' 1
9 '\n\t\r' 3
10 'è' 2
11 '中文' 6
12 b"\"" 1
VOCAB

# NeoX tokenizer.json: the test fixture, a cut of 20B_tokenizer.json that keeps its
# structure (ids below 700, the merges among them, all added tokens), and near-misses.
out="$corpus/neox_json"
cp "$fixtures/tokenizer/neox_small.json" "$out/fixture-small.json"
python3 - "$neox_json" "$out/20b-cut.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
vocab = {t: i for t, i in d["model"]["vocab"].items() if i < 700}
merges = [m for m in d["model"]["merges"] if all(p in vocab for p in m.split(" ") + [m.replace(" ", "")])]
d["model"]["vocab"] = vocab
d["model"]["merges"] = merges[:400]
json.dump(d, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False, separators=(",", ":"))
PY
cat >"$out/minimal.json" <<'JSON'
{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}
JSON
cat >"$out/pair-merges.json" <<'JSON'
{"normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":false},
 "decoder":{"type":"ByteLevel"},"post_processor":null,
 "added_tokens":[{"id":5,"content":"<|x|>","special":true,"normalized":false},{"id":6,"content":"  ","normalized":true}],
 "model":{"type":"BPE","dropout":null,"unk_token":null,"ignore_merges":true,
   "vocab":{"\u0120":0,"h":1,"i":2,"hi":3,"\u0120hi":4},"merges":[["h","i"],["\u0120","hi"]]}}
JSON
cat >"$out/merge-not-in-vocab.json" <<'JSON'
{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}}
JSON
cat >"$out/nested.json" <<'JSON'
{"pre_tokenizer":{"type":"ByteLevel"},"extra":[[[[[[[[{"a":[[[[]]]]}]]]]]]]],"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}
JSON

# State files for the tiny RWKV 5.2 model that fuzz_state_file loads (from the same
# checkpoint), one for another architecture, and damaged copies.
out="$corpus/state_file"
"$cli" convert "$fixtures/tiny-v5.2.pth" "$scratch/v5.2.rwkv" >/dev/null 2>&1
"$cli" convert "$fixtures/tiny-v4.pth" "$scratch/v4.rwkv" >/dev/null 2>&1
"$cli" generate --model "$scratch/v5.2.rwkv" --prompt "The state" --max-tokens 4 --seed 1 \
  --state-out "$out/tiny-v5.2.state" >/dev/null 2>&1
"$cli" generate --model "$scratch/v4.rwkv" --prompt "The state" --max-tokens 4 --seed 1 \
  --state-out "$out/tiny-v4.state" >/dev/null 2>&1
head -c 64 "$out/tiny-v5.2.state" >"$out/header-only.state"
cp "$out/tiny-v5.2.state" "$out/bad-checksum.state"
printf '\x7f' | dd of="$out/bad-checksum.state" bs=1 seek=100 conv=notrunc status=none

# Native models: the tiny RWKV 4 and 5.2 checkpoints, all matrices q8_0 (the smallest
# type for rows of 32 values), and a truncated copy. RWKV 6 and 7 do not fit in 64 KB.
out="$corpus/native_model"
for v in v4 v5.2; do
  "$cli" convert "$fixtures/tiny-$v.pth" "$out/tiny-$v-q8_0.rwkv" --type q8_0 --embedding-type q8_0 >/dev/null 2>&1
done
head -c 4096 "$out/tiny-v4-q8_0.rwkv" >"$out/truncated.rwkv"

# Command lines, NUL-separated as fuzz_cli_args splits them.
out="$corpus/cli_args"
args() { local name="$1"; shift; printf '%s\0' "$@" | head -c -1 >"$out/$name"; }
args plain "hello world"
args full --model m.rwkv --max-tokens 50 --temperature 0.7 --top-p 0.9 --seed 42 --tokens 1,2,3 \
  --stop x --stop y --verbose prompt suffix
args inline --max-tokens=7 "--temperature=1e-3" --tokens=65535,0 --no-stream p
args help --help
args bad-int --max-tokens 1e3 p
args out-of-range --max-tokens 9223372036854775808 --top-p 2 --temperature nan p
args missing-value p --seed
args unknown-flag --nope p
args twice --seed 1 --seed 2 p
args list-spaces "--tokens= 1 , 2 ,3" p
args empty-items --tokens 1,,2 p

# Official checkpoints: a whole small one (bf16 storages), and the zip's head alone.
out="$corpus/pth"
cp "$fixtures/tiny-v4-bf16.pth" "$out/tiny-v4-bf16.pth"
head -c 4096 "$fixtures/tiny-v7.0.pth" >"$out/truncated-v7.pth"

# rwkv.cpp files as its converter and quantizer wrote them, cut after their first
# tensors (whole files are megabytes): FP16, Q5_0, Q5_1 and v7's x_rwkvag.
out="$corpus/rwkvcpp"
rwkvcpp="$shared/models/rwkvcpp"
head -c 40000 "$rwkvcpp/tiny-rwkv-5v1-730K-FP16.bin" >"$out/v5-fp16-head.bin"
head -c 40000 "$rwkvcpp/tiny-rwkv-4v0-660K-Q5_0.bin" >"$out/v4-q5_0-head.bin"
head -c 60000 "$rwkvcpp/tiny-rwkv-6v0-1m-Q5_1.bin" >"$out/v6-q5_1-head.bin"
head -c 30000 "$rwkvcpp/tiny-rwkv-7v0-834K-FP32.bin" >"$out/v7-fp32-head.bin"

# GGUF and safetensors seeds, and rwkv-server request bodies: written by scripts of their own.
python3 "$here/make_import_seeds.py"
python3 "$here/make_server_seeds.py"

echo "make_corpus.sh: wrote $(find "$corpus" -type f | wc -l) seeds under $corpus" >&2
