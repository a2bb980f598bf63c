"""The ctypes declarations follow include/rwkv.h: every function, and the structs' layout."""

import ctypes
import re
import shutil
import subprocess

import pytest

from conftest import REPO_DIR

from rwkv_engine import _lib

HEADER = REPO_DIR / "include" / "rwkv.h"


def test_every_function_of_the_header_is_declared(engine):
    text = HEADER.read_text()
    declared = set(re.findall(r"RWKV_EXPORT [^;]*?\b(rwkv_\w+)\(", text))
    assert declared == set(_lib._FUNCTIONS)
    assert int(re.search(r"#define RWKV_API_VERSION (\d+)", text).group(1)) == _lib.API_VERSION
    assert engine._lib.lib().rwkv_api_version() == _lib.API_VERSION


def test_struct_layouts_match_the_c_compiler(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to measure the structs with")
    fields = [(name, struct) for struct, cls in (("rwkv_sampler_params", _lib.SamplerParams),
                                                  ("rwkv_batch_item", _lib.BatchItem))
              for name, _ in cls._fields_]
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "rwkv.h"', "int main(void) {"]
    lines += [f'  printf("{s} %zu\\n", sizeof({s}));' for s in ("rwkv_sampler_params", "rwkv_batch_item")]
    lines += [f'  printf("{s}.{f} %zu\\n", offsetof({s}, {f}));' for f, s in fields]
    lines += ["  return 0;", "}"]
    source = tmp_path / "layout.c"
    source.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c99", "-I", str(HEADER.parent), str(source), "-o", str(exe)], check=True)
    measured = dict(line.split() for line in subprocess.run([str(exe)], check=True, stdout=subprocess.PIPE,
                                                            text=True).stdout.splitlines())
    ours = {"rwkv_sampler_params": ctypes.sizeof(_lib.SamplerParams), "rwkv_batch_item": ctypes.sizeof(_lib.BatchItem)}
    for f, s in fields:
        cls = _lib.SamplerParams if s == "rwkv_sampler_params" else _lib.BatchItem
        ours[f"{s}.{f}"] = getattr(cls, f).offset
    assert {k: int(v) for k, v in measured.items()} == ours


def test_library_defaults_read_through_the_struct(engine):
    p = _lib.lib().rwkv_sampler_default_params()
    assert (p.temperature, p.top_k, p.top_p, p.min_p, p.repetition_penalty, p.presence_penalty, p.frequency_penalty,
            p.seed, p.order, p.n_bias, p.n_banned) == (1.0, 0, 1.0, 0.0, 1.0, 0.0, 0.0, 0, 0, 0, 0)
    assert abs(p.penalty_decay - 0.996) < 1e-6
