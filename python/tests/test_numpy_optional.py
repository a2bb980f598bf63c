"""Without NumPy, logits and states are lists of floats with the same values."""

import os
import subprocess
import sys

import pytest

from conftest import FIXTURES_DIR, PYTHON_DIR

np = pytest.importorskip("numpy")

TOKENS = [72, 101, 108, 108, 111]


@pytest.fixture
def no_numpy(engine, monkeypatch):
    monkeypatch.setattr(engine._lib, "np", None)


def test_forward_gives_lists(engine, tiny_v7, no_numpy):
    logits, state = tiny_v7.forward(TOKENS, None)
    assert type(logits) is list and len(logits) == tiny_v7.n_vocab and type(logits[0]) is float
    full, _ = tiny_v7.forward(TOKENS, None, full_output=True)
    assert type(full) is list and len(full) == len(TOKENS) and all(len(row) == tiny_v7.n_vocab for row in full)
    batch = tiny_v7.forward_batch([(TOKENS, tiny_v7.new_state())])
    assert type(batch[0]) is list
    assert type(state.data) is list and len(state.data) == len(state)
    with pytest.raises(engine.RwkvError, match="NumPy"):
        state.numpy()


def test_lists_equal_the_numpy_arrays(engine, tiny_v7, monkeypatch):
    with_numpy, state_np = tiny_v7.forward(TOKENS, None)
    state_values = state_np.numpy().tolist()
    full_np, _ = tiny_v7.forward(TOKENS, None, full_output=True)
    monkeypatch.setattr(engine._lib, "np", None)
    as_list, state_list = tiny_v7.forward(TOKENS, None)
    full_list, _ = tiny_v7.forward(TOKENS, None, full_output=True)
    assert as_list == with_numpy.tolist()
    assert full_list == full_np.tolist()
    assert state_list.tolist() == state_values


def test_sampling_and_generation_without_numpy(engine, default_model, monkeypatch):
    expected = engine.Pipeline(default_model).generate("def ", max_tokens=16, temperature=0.7, seed=9).text
    logits, _ = default_model.forward(list(b"def "), None)
    greedy = int(np.argmax(logits))
    monkeypatch.setattr(engine._lib, "np", None)
    assert engine.Pipeline(default_model).generate("def ", max_tokens=16, temperature=0.7, seed=9).text == expected
    list_logits, _ = default_model.forward(list(b"def "), None)
    assert engine.Sampler(default_model, temperature=0).sample(list_logits) == greedy


def test_import_without_numpy_installed():
    """A fresh interpreter where `import numpy` fails."""
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "import rwkv_engine\n"
        f"m = rwkv_engine.Model({str(FIXTURES_DIR / 'tiny-v7.0.pth')!r})\n"
        "logits, state = m.forward([72, 105], None)\n"
        "assert type(logits) is list and len(logits) == m.n_vocab, type(logits)\n"
        "assert type(state.data) is list\n"
        "print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
    proc = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
