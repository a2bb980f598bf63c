"""The surface of the official `rwkv` package: RWKV, PIPELINE, PIPELINE_ARGS."""

import random

import pytest

from conftest import FIXTURES_DIR
from test_generate import N_TOKENS, PROMPT, cli_generate

np = pytest.importorskip("numpy")


@pytest.fixture(scope="module")
def official(engine, default_model):
    from rwkv_engine.model import RWKV
    from rwkv_engine.utils import PIPELINE, PIPELINE_ARGS

    model = RWKV(model=default_model.path, strategy="cuda fp16i8 *10 -> cpu fp32", verbose=False)
    return model, PIPELINE, PIPELINE_ARGS


def test_rwkv_constructor_and_forward(official, default_model):
    model, _, _ = official
    assert model.args.n_layer == default_model.n_layer and model.args.n_embd == default_model.n_embd
    assert model.args.vocab_size == default_model.n_vocab and model.version == 7.0
    out, state = model.forward([84, 104, 101], None)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (model.args.vocab_size,)
    out[0] = -float("inf")  # the returned logits are the caller's to change
    again, state2 = model.forward([32], state)
    assert state2 is state
    full, _ = model.forward([84, 104, 101], None, full_output=True)
    assert full.shape == (3, model.args.vocab_size)


def test_rwkv_adds_pth_like_the_official_code(engine, capsys):
    from rwkv_engine.model import RWKV

    model = RWKV(str(FIXTURES_DIR / "tiny-v7.0"), strategy="cpu fp32")
    assert model.path.endswith("tiny-v7.0.pth")
    assert "strategy" in capsys.readouterr().err


def test_pipeline_args_defaults_are_chatrwkv(official):
    _, _, PIPELINE_ARGS = official
    a = PIPELINE_ARGS()
    assert (a.temperature, a.top_p, a.top_k, a.alpha_frequency, a.alpha_presence, a.alpha_decay, a.token_ban,
            a.token_stop, a.chunk_len) == (1.0, 0.85, 0, 0.2, 0.2, 0.996, [], [], 256)
    b = PIPELINE_ARGS()
    b.token_ban.append(5)
    assert PIPELINE_ARGS().token_ban == []


@pytest.mark.parametrize("alphas, flags", [
    (dict(alpha_frequency=0, alpha_presence=0), []),
    ({}, ["--presence-penalty", 0.2, "--frequency-penalty", 0.2, "--penalty-decay", 0.996]),
], ids=["no-penalties", "chatrwkv-penalties"])
def test_official_generate_greedy_equals_cli(official, cli, default_model, alphas, flags):
    model, PIPELINE, PIPELINE_ARGS = official
    expected = cli_generate(cli, default_model, "--temperature", 0, "--max-tokens", N_TOKENS, *flags)
    pipeline = PIPELINE(model, None)
    pieces = []
    text = pipeline.generate(PROMPT, token_count=N_TOKENS, args=PIPELINE_ARGS(temperature=0, **alphas),
                             callback=pieces.append)
    # ChatRWKV emits text only once it is valid UTF-8: equal to the CLI's, which emits the
    # same bytes (and would replace a final incomplete character by U+FFFD).
    assert text == expected.rstrip("\ufffd")
    assert "".join(pieces) == text


def test_official_generate_chunks_the_prompt_and_keeps_the_state(official):
    model, PIPELINE, PIPELINE_ARGS = official
    pipeline = PIPELINE(model, None)
    state = model.new_state()
    text = pipeline.generate(PROMPT, token_count=5, args=PIPELINE_ARGS(temperature=0, chunk_len=4), state=state)
    # The official loop feeds every sampled token but the last.
    tokens = pipeline.encode(PROMPT) + pipeline.encode(text)[:-1]
    _, expected = model.forward(tokens, None)
    assert np.max(np.abs(state.numpy() - expected.numpy())) <= 1e-4


def test_token_stop_and_token_ban(official):
    model, PIPELINE, PIPELINE_ARGS = official
    pipeline = PIPELINE(model, None)
    greedy = pipeline.generate(PROMPT, token_count=4, args=PIPELINE_ARGS(temperature=0))
    first = pipeline.encode(greedy)[0]
    assert pipeline.generate(PROMPT, token_count=4, args=PIPELINE_ARGS(temperature=0, token_stop=[first])) == ""
    banned = pipeline.generate(PROMPT, token_count=4, args=PIPELINE_ARGS(temperature=0, token_ban=[first]))
    assert pipeline.encode(banned)[0] != first


def test_sample_logits_and_seeding(official):
    model, PIPELINE, _ = official
    pipeline = PIPELINE(model, None)
    logits, _ = model.forward(pipeline.encode(PROMPT), None)
    assert pipeline.sample_logits(logits, temperature=0) == int(np.argmax(logits))
    assert pipeline.sample_logits(logits, top_p=0) == int(np.argmax(logits))
    random.seed(1)
    a = [pipeline.sample_logits(logits, temperature=1.5, top_p=1.0) for _ in range(8)]
    random.seed(1)
    assert a == [pipeline.sample_logits(logits, temperature=1.5, top_p=1.0) for _ in range(8)]
    assert pipeline.sample_logits(logits, temperature=1.0, top_k=1) == int(np.argmax(logits))


def test_world_vocabulary_names(engine, shared):
    from rwkv_engine.model import RWKV
    from rwkv_engine.utils import PIPELINE

    model = RWKV(str(FIXTURES_DIR / "tiny-v7.0.F32.gguf"), "cpu fp32", verbose=False)
    world = PIPELINE(model, "rwkv_vocab_v20230424")  # the vocabulary inside the model file
    assert world.decode(world.encode("Hello")) == "Hello"
    full = PIPELINE(model, str(shared / "tokenizers" / "rwkv_vocab_v20230424.txt"))
    assert full.encode("Hello, world!") == [33155, 45, 40213, 34]
    neox = PIPELINE(model, str(shared / "tokenizers" / "20B_tokenizer.json"))
    assert neox.decode(neox.encode("Hello, world!")) == "Hello, world!"


def test_refine_context(official):
    model, PIPELINE, _ = official
    pipeline = PIPELINE(model, None)
    assert pipeline.refine_context("  a \n\n\u3000b\r\n  ") == "\na\nb"
    assert pipeline.refine_context("   ") == "\n"


def test_penalties_change_the_greedy_text(official):
    """So that the comparison with the CLI above exercises them."""
    model, PIPELINE, PIPELINE_ARGS = official
    pipeline = PIPELINE(model, None)
    plain = pipeline.generate(PROMPT, token_count=N_TOKENS, args=PIPELINE_ARGS(temperature=0, alpha_frequency=0,
                                                                                 alpha_presence=0))
    assert pipeline.generate(PROMPT, token_count=N_TOKENS, args=PIPELINE_ARGS(temperature=0)) != plain
