"""Logits through the binding against `rwkv-cli logits` (the same engine and kernels:
bit for bit) and against the reference logits of the fixtures and official models."""

import json

import pytest

from conftest import FIXTURES_DIR, fixture_models

np = pytest.importorskip("numpy")

# The bound the C++ tests (test_fixture_models.cpp, test_reference_logits.cpp) hold our
# float32 logits to against float64 / official references; README's table measures
# at most 3.6e-5.
REFERENCE_TOLERANCE = 2e-4


def cli_logits(cli, tmp_path, model_path, tokens, n_vocab, sequence=False):
    out = tmp_path / "cli.f32"
    args = ["logits", "--model", model_path, "--tokens", ",".join(map(str, tokens)), "--out", out]
    cli.run(*args, *(["--sequence"] if sequence else []))
    return np.fromfile(out, dtype="<f4").reshape(len(tokens), n_vocab)


def serial_logits(model, tokens):
    state = None
    rows = []
    for t in tokens:
        logits, state = model.forward([t], state)
        rows.append(logits)
    return np.stack(rows), state


@pytest.mark.parametrize("fx", fixture_models(), ids=lambda fx: fx["name"])
def test_fixture_logits_equal_cli_and_reference(engine, cli, tmp_path, fx):
    path = FIXTURES_DIR / fx["file"]
    model = engine.Model(path)
    assert model.arch == fx["arch_version"]
    assert (model.n_vocab, model.n_layer, model.n_embd) == (fx["n_vocab"], fx["n_layer"], fx["n_embd"])
    tokens = fx["tokens"]
    ours, _ = serial_logits(model, tokens)
    assert ours.dtype == np.float32 and ours.shape == (len(tokens), model.n_vocab)
    expected = cli_logits(cli, tmp_path, path, tokens, model.n_vocab)
    assert np.array_equal(ours, expected), f"max abs difference {np.max(np.abs(ours - expected))}"
    reference = np.fromfile(FIXTURES_DIR / fx["logits"], dtype="<f4").reshape(fx["logits_shape"])
    assert np.max(np.abs(ours - reference)) <= REFERENCE_TOLERANCE


@pytest.mark.parametrize("name", ["tiny-v4", "tiny-v5.2", "tiny-v6.0", "tiny-v7.0"])
def test_full_output_equals_cli_sequence_mode(engine, cli, tmp_path, name):
    path = FIXTURES_DIR / f"{name}.pth"
    model = engine.Model(path)
    tokens = json.loads((FIXTURES_DIR / f"{name}.tokens.json").read_text())
    all_logits, state = model.forward(tokens, None, full_output=True)
    assert all_logits.shape == (len(tokens), model.n_vocab)
    assert np.array_equal(all_logits, cli_logits(cli, tmp_path, path, tokens, model.n_vocab, sequence=True))
    # Sequence mode equals serial mode within float32 rounding, and leaves the same state.
    serial, serial_state = serial_logits(model, tokens)
    assert np.max(np.abs(all_logits - serial)) <= 1e-4
    assert np.max(np.abs(state.numpy() - serial_state.numpy())) <= 1e-4
    last, _ = model.forward(tokens, None)
    assert np.max(np.abs(last - all_logits[-1])) <= 1e-4


def test_token_forms(tiny_v7):
    """An int, a list, a tuple, a NumPy array and NumPy integers all work alike."""
    reference, _ = tiny_v7.forward([72, 105], None)
    for tokens in ([72, 105], (72, 105), np.array([72, 105], dtype=np.int64), np.array([72, 105], dtype=np.int32),
                   [np.int64(72), np.int32(105)]):
        logits, _ = tiny_v7.forward(tokens, None)
        assert np.array_equal(logits, reference)
    one, state = tiny_v7.forward(72, None)
    two, _ = tiny_v7.forward(np.int64(105), state)
    assert np.array_equal(one, tiny_v7.forward([72], None)[0])
    assert np.max(np.abs(two - reference)) <= 1e-4


def test_forward_batch_equals_forward(tiny_v7):
    model = tiny_v7
    prompts = [[72, 101, 108, 108, 111], [84, 104, 101], [33]]
    states = [model.new_state() for _ in prompts]
    batch = model.forward_batch(list(zip(prompts, states)))
    assert len(batch) == 3
    for prompt, state, logits in zip(prompts, states, batch):
        alone, alone_state = model.forward(prompt, None)
        assert logits.shape == (model.n_vocab,)
        assert np.max(np.abs(logits - alone)) <= 1e-5
        assert np.max(np.abs(state.numpy() - alone_state.numpy())) <= 1e-5
    # A decode step for all three, every token's logits.
    full = model.forward_batch([([10], states[0]), ([11, 12], states[1]), ([13], states[2])], full_output=True)
    assert [f.shape for f in full] == [(1, 256), (2, 256), (1, 256)]
    assert model.forward_batch([]) == []


@pytest.mark.parametrize("name", ["4v0-660K", "5v1-730K", "5v2-730K", "6v0-1m", "6v0-3m", "7v0-834K"])
def test_official_models_match_official_logits_and_cli(engine, cli, shared, tmp_path, name):
    manifest = json.loads((shared / "reference" / "logits" / name / "manifest.json").read_text())
    model_path = shared / manifest["model_pth"]
    model = engine.Model(model_path)
    for case in manifest["cases"]:
        tokens = case["tokens"]
        ours, _ = serial_logits(model, tokens)
        official = np.fromfile(shared / "reference" / "logits" / name / case["logits"], dtype="<f4")
        official = official.reshape(case["shape"])
        assert np.max(np.abs(ours - official)) <= REFERENCE_TOLERANCE, case["name"]
        if case["name"].startswith("a_"):
            assert np.array_equal(ours, cli_logits(cli, tmp_path, model_path, tokens, model.n_vocab))
