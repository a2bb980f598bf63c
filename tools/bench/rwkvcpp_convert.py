#!/usr/bin/env python3
"""Converts a torch.save RWKV-7 checkpoint to an rwkv.cpp file with rwkv.cpp's own
converter (python/convert_pytorch_to_ggml.py, loaded from the given rwkv.cpp checkout and
called as its main() would), after giving the per-channel vectors the shape the official
checkpoints have.

  rwkvcpp_convert.py RWKV_CPP_DIR IN.pth OUT.bin [FP16|FP32]

Why: rwkv-gen-model writes att.x_r ... x_g, w0, a0, v0, k_k, k_a and ffn.x_k as (C,); the
official RWKV-7 checkpoints store them as (1, 1, C), and rwkv.cpp's converter keeps
whatever shape it reads: its x_rwkvag concatenation then has the wrong shape and
rwkv_init_from_file aborts (GGML_ASSERT(ggml_can_repeat(b, a))). Reshaping changes no
value. Needs torch.
"""

import importlib.util
import os
import re
import sys

import torch

# Official RWKV-7 per-channel parameters, shaped (1, 1, C) in the released checkpoints.
_CHANNEL_VECTOR = re.compile(r"blocks\.\d+\.(att\.(x_[rwkvag]|w0|a0|v0|k_k|k_a)|ffn\.x_k)")


def load_rwkvcpp_converter(rwkvcpp_dir):
    path = os.path.join(rwkvcpp_dir, "python", "convert_pytorch_to_ggml.py")
    spec = importlib.util.spec_from_file_location("convert_pytorch_to_ggml", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv):
    if len(argv) not in (4, 5):
        sys.stderr.write(__doc__)
        return 2
    rwkvcpp_dir, src, dest = argv[1:4]
    data_type = argv[4] if len(argv) == 5 else "FP16"
    converter = load_rwkvcpp_converter(rwkvcpp_dir)
    state_dict = torch.load(src, map_location="cpu", weights_only=True)
    reshaped = 0
    for name, tensor in state_dict.items():
        if tensor.dim() == 1 and _CHANNEL_VECTOR.fullmatch(name):
            state_dict[name] = tensor.reshape(1, 1, -1)
            reshaped += 1
    print(f"rwkvcpp_convert.py: {src}: {reshaped} per-channel vectors reshaped to (1, 1, C)")
    converter.write_state_dict(state_dict, dest, data_type)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
