#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_gguf and fuzz_safetensors (tests/fuzz/corpus/gguf and
tests/fuzz/corpus/safetensors): small valid files of each kind the readers accept, a few
near-misses, and the head of a real llama.cpp GGUF fixture when tests/fixtures has one.
Every seed stays under 4 KB. Standard library only.

    tests/fuzz/make_import_seeds.py
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# ggml types
T_F32, T_F16, T_Q4_0, T_Q4_1, T_Q5_0, T_Q5_1, T_Q8_0 = 0, 1, 2, 3, 6, 7, 8
T_Q2_K, T_Q3_K, T_Q4_K, T_Q5_K, T_Q6_K, T_BF16 = 10, 11, 12, 13, 14, 30
BLOCK = {T_F32: (1, 4), T_F16: (1, 2), T_BF16: (1, 2), T_Q4_0: (32, 18), T_Q4_1: (32, 20), T_Q5_0: (32, 22),
         T_Q5_1: (32, 24), T_Q8_0: (32, 34), T_Q2_K: (256, 84), T_Q3_K: (256, 110), T_Q4_K: (256, 144),
         T_Q5_K: (256, 176), T_Q6_K: (256, 210)}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload


def gguf(kvs, tensors, version=3, alignment=32):
    """tensors: (name, dims, ggml type); data is a byte pattern, offsets aligned."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    data = b""
    infos = b""
    for i, (name, dims, t) in enumerate(tensors):
        n = 1
        for d in dims:
            n *= d
        per, size = BLOCK[t]
        nbytes = n // per * size
        while len(data) % alignment:
            data += b"\0"
        infos += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", t, len(data))
        data += bytes((17 * i + 3 * j + 1) % 251 for j in range(nbytes))
    out += infos
    while len(out) % alignment:
        out += b"\0"
    return out + data


def write(directory, name, data):
    assert len(data) < 4096, (name, len(data))
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def gguf_seeds(out):
    meta = [
        kv("general.architecture", STRING, gstr("rwkv7")),
        kv("general.alignment", U32, struct.pack("<I", 32)),
        kv("rwkv7.block_count", U32, struct.pack("<I", 1)),
        kv("rwkv7.wkv.head_size", U64, struct.pack("<Q", 64)),
        kv("test.i8", I8, struct.pack("<b", -3)),
        kv("test.f32", F32, struct.pack("<f", 1e-5)),
        kv("test.f64", F64, struct.pack("<d", -2.5)),
        kv("test.bool", BOOL, b"\x01"),
        kv("tokenizer.ggml.model", STRING, gstr("rwkv")),
        kv("tokenizer.ggml.tokens", ARRAY, struct.pack("<IQ", STRING, 3) + gstr("<s>") + gstr("a") + gstr("\\x00")),
        kv("tokenizer.ggml.token_type", ARRAY, struct.pack("<IQ", I32, 3) + struct.pack("<3i", 3, 1, 1)),
        kv("test.nested", ARRAY, struct.pack("<IQ", ARRAY, 2) + struct.pack("<IQ", U16, 1) + b"\x07\x00"
           + struct.pack("<IQ", F32, 0)),
    ]
    write(out, "small-types.gguf", gguf(meta, [
        ("token_embd.weight", [32, 2], T_Q8_0),
        ("blk.0.attn_norm.weight", [4], T_F32),
        ("blk.0.attn_norm.bias", [4], T_F16),
        ("output_norm.weight", [4], T_BF16),
        ("blk.0.q4_0", [32], T_Q4_0),
        ("blk.0.q4_1", [32], T_Q4_1),
        ("blk.0.q5_0", [32], T_Q5_0),
        ("blk.0.q5_1", [32], T_Q5_1),
    ]))
    write(out, "k-quants.gguf", gguf(meta[:3], [
        ("q2_k", [256], T_Q2_K), ("q3_k", [256], T_Q3_K), ("q4_k", [256], T_Q4_K),
        ("q5_k", [256], T_Q5_K), ("q6_k", [256], T_Q6_K)]))
    write(out, "version2-align64.gguf", gguf([kv("general.alignment", U32, struct.pack("<I", 64))],
                                             [("a", [2, 2, 1, 1], T_F32), ("b", [64], T_Q8_0)],
                                             version=2, alignment=64))
    write(out, "empty.gguf", gguf([], []))
    whole = gguf(meta, [("x", [8], T_F32)])
    write(out, "truncated.gguf", whole[: len(whole) - 5])
    fixture = os.path.join(ROOT, "tests", "fixtures", "tiny-v7.0.Q4_0.gguf")
    if os.path.exists(fixture):
        with open(fixture, "rb") as f:
            write(out, "llama-cpp-head.gguf", f.read(4000))


def safetensors(header, data):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds(out):
    data = struct.pack("<4f", 1, -2, 0.5, 3) + struct.pack("<3H", 0x3C00, 0xC000, 1) + struct.pack("<H", 0x4049)
    data += struct.pack("<q", 7) + struct.pack("<d", 0.25)
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "b": {"dtype": "F16", "shape": [3], "data_offsets": [16, 22]},
        "c": {"dtype": "BF16", "shape": [1], "data_offsets": [22, 24]},
        "ids": {"dtype": "I64", "shape": [1], "data_offsets": [24, 32]},
        "d": {"dtype": "F64", "shape": [], "data_offsets": [32, 40]},
    }
    write(out, "small-types.safetensors", safetensors(header, data))
    write(out, "empty-tensor.safetensors", safetensors(
        {"e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]}}, b""))
    write(out, "empty.safetensors", safetensors({}, b""))
    rwkv = {}
    blob = b""
    for name, shape in [("emb.weight", [4, 8]), ("blocks.0.ln1.weight", [8]), ("head.weight", [4, 8])]:
        n = 1
        for d in shape:
            n *= d
        rwkv[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [len(blob), len(blob) + 2 * n]}
        blob += bytes((i * 7 + 1) % 256 for i in range(2 * n))
    write(out, "rwkv-like.safetensors", safetensors(rwkv, blob))
    whole = safetensors(header, data)
    write(out, "truncated.safetensors", whole[:-3])


def main():
    for name, make in [("gguf", gguf_seeds), ("safetensors", safetensors_seeds)]:
        out = os.path.join(HERE, "corpus", name)
        os.makedirs(out, exist_ok=True)
        make(out)
    print("make_import_seeds.py: wrote the gguf and safetensors seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
