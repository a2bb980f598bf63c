"""Errors raise RwkvError with the library's message, and leave states unchanged."""

import os
import subprocess
import sys

import pytest

from conftest import FIXTURES_DIR, PYTHON_DIR


def test_missing_model_names_the_file(engine, tmp_path):
    path = tmp_path / "no-such-model.rwkv"
    with pytest.raises(engine.RwkvError, match="no-such-model.rwkv"):
        engine.Model(path)


def test_not_a_model(engine):
    with pytest.raises(engine.RwkvError, match="fixtures.json"):
        engine.Model(FIXTURES_DIR / "fixtures.json")


def test_bad_tokens_leave_the_state_unchanged(engine, tiny_v7):
    _, state = tiny_v7.forward([72, 105], None)
    before = state.to_bytes()
    with pytest.raises(engine.RwkvError, match="256.*out of range|out of range.*256"):
        tiny_v7.forward([72, 256], state)
    with pytest.raises(engine.RwkvError, match="-1"):
        tiny_v7.forward(-1, state)
    with pytest.raises(engine.RwkvError, match="no tokens"):
        tiny_v7.forward([], state)
    with pytest.raises(engine.RwkvError, match="int32"):
        tiny_v7.forward([2**40], state)
    for text in ("abc", b"abc", bytearray(b"abc")):
        with pytest.raises(TypeError, match="Tokenizer"):
            tiny_v7.forward(text, state)
    with pytest.raises(TypeError):
        tiny_v7.forward([1.5], state)
    assert state.to_bytes() == before


def test_state_of_another_model(engine, tiny_v7, tiny_v4):
    with pytest.raises(engine.RwkvError):
        tiny_v7.forward([1], tiny_v4.new_state())
    with pytest.raises(engine.RwkvError):
        tiny_v7.new_state().assign(tiny_v4.new_state())
    with pytest.raises(TypeError):
        tiny_v7.forward([1], [0.0] * tiny_v7.state_size)


def test_bad_state_bytes_and_files(engine, tiny_v7, tiny_v4, tmp_path):
    with pytest.raises(engine.RwkvError):
        engine.State.from_bytes(tiny_v7, b"not a state")
    with pytest.raises(engine.RwkvError):
        engine.State.from_bytes(tiny_v7, tiny_v4.new_state().to_bytes())
    with pytest.raises(engine.RwkvError, match="missing.state"):
        engine.State.load(tiny_v7, tmp_path / "missing.state")
    with pytest.raises(engine.RwkvError, match="no-dir"):
        tiny_v7.new_state().save(tmp_path / "no-dir" / "s.state")
    with pytest.raises(engine.RwkvError):
        tiny_v7.new_state().set_data([0.0])


def test_batch_errors_change_nothing(engine, tiny_v7):
    a, b = tiny_v7.new_state(), tiny_v7.new_state()
    with pytest.raises(engine.RwkvError, match="share"):
        tiny_v7.forward_batch([([1], a), ([2], a)])
    with pytest.raises(engine.RwkvError, match="out of range"):
        tiny_v7.forward_batch([([1], a), ([999], b)])
    assert not a.numpy().any() and not b.numpy().any()
    with pytest.raises(TypeError):
        tiny_v7.forward_batch([[1]])


def test_sampler_errors(engine, tiny_v7):
    with pytest.raises(engine.RwkvError, match="temperature"):
        engine.Sampler(tiny_v7, temperature=-1)
    with pytest.raises(engine.RwkvError, match="top-p"):
        engine.Sampler(tiny_v7, top_p=0)
    with pytest.raises(engine.RwkvError, match="300"):
        engine.Sampler(tiny_v7, banned_tokens=[300])
    with pytest.raises(engine.RwkvError, match="order"):
        engine.Sampler(tiny_v7, order="random")
    sampler = engine.Sampler(tiny_v7)
    with pytest.raises(engine.RwkvError, match="logits"):
        sampler.sample([0.0] * 10)
    with pytest.raises(engine.RwkvError, match="NaN"):
        sampler.sample([float("nan")] * tiny_v7.n_vocab)
    with pytest.raises(engine.RwkvError, match="256"):
        sampler.accept(256)


def test_threads_fixed_once_a_model_is_loaded(engine, tiny_v7):
    n = engine.get_threads()
    assert n >= 1
    engine.set_threads(n)  # the count in use is accepted
    with pytest.raises(engine.RwkvError):
        engine.set_threads(n + 1)
    assert engine.get_threads() == n


def test_convert_errors(engine, tmp_path):
    with pytest.raises(engine.RwkvError, match="q3_x"):
        engine.convert(FIXTURES_DIR / "tiny-v7.0.pth", tmp_path / "out.rwkv", "q3_x")
    with pytest.raises(engine.RwkvError, match="missing.pth"):
        engine.convert(tmp_path / "missing.pth", tmp_path / "out.rwkv")


def test_convert_and_quantize(engine, tmp_path):
    engine.convert(FIXTURES_DIR / "tiny-v7.0.pth", tmp_path / "f32.rwkv")
    engine.quantize(tmp_path / "f32.rwkv", tmp_path / "q8.rwkv", "q8_0")
    original = engine.Model(FIXTURES_DIR / "tiny-v7.0.pth")
    converted = engine.Model(tmp_path / "f32.rwkv")
    quantized = engine.Model(tmp_path / "q8.rwkv")
    assert original.forward([1, 2, 3])[0].tolist() == converted.forward([1, 2, 3])[0].tolist()
    assert quantized.n_vocab == original.n_vocab


def run_python(code, env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("RWKV_LIBRARY", "PYTHONPATH")}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def test_bad_rwkv_library_is_reported(tmp_path):
    code = "import rwkv_engine\ntry:\n  rwkv_engine.version()\nexcept rwkv_engine.RwkvError as e:\n  print(e)\n"
    proc = run_python(code, {"RWKV_LIBRARY": str(tmp_path / "nope.so"), "PYTHONPATH": str(PYTHON_DIR)})
    assert proc.returncode == 0, proc.stderr
    assert "RWKV_LIBRARY=" in proc.stdout and "nope.so" in proc.stdout
