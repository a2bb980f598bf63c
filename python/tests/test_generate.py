"""Generation through the binding against `rwkv-cli generate`: the same model, sampler and
seed give the same text."""

import json
import os

import pytest

from conftest import FIXTURES_DIR

PROMPT = "The Python interpreter"
N_TOKENS = 64


def cli_generate(cli, model, *flags, prompt=PROMPT):
    """rwkv-cli generate's stdout (the streamed text, nothing else when not a terminal)."""
    return cli.run("generate", "--model", model.path, "--prompt", prompt, *flags).stdout.decode("utf-8")


def cli_generate_json(cli, model, *flags, prompt=PROMPT):
    return json.loads(cli.run("generate", "--model", model.path, "--prompt", prompt, "--json", *flags).stdout)


def test_greedy_equals_cli(engine, cli, default_model):
    expected = cli_generate(cli, default_model, "--temperature", 0, "--max-tokens", N_TOKENS)
    result = engine.Pipeline(default_model).generate(PROMPT, max_tokens=N_TOKENS, temperature=0)
    assert result.text == expected
    assert result.stop_reason == "max_tokens"
    assert result.prompt_tokens == list(PROMPT.encode())  # the default model reads bytes
    cli_json = cli_generate_json(cli, default_model, "--temperature", 0, "--max-tokens", N_TOKENS)
    assert result.tokens == cli_json["tokens"] and result.prompt_tokens == cli_json["prompt_tokens"]


@pytest.mark.parametrize("flags, options", [
    (["--seed", 42], dict(seed=42)),
    (["--seed", 7, "--temperature", 0.8, "--top-k", 20, "--top-p", 0.95, "--presence-penalty", 0.3,
      "--frequency-penalty", 0.2, "--penalty-decay", 0.99],
     dict(seed=7, temperature=0.8, top_k=20, top_p=0.95, presence_penalty=0.3, frequency_penalty=0.2,
          penalty_decay=0.99)),
    (["--seed", 3, "--sampling-order", "llama", "--min-p", 0.05, "--repetition-penalty", 1.1],
     dict(seed=3, order="llama", min_p=0.05, repetition_penalty=1.1)),
], ids=["defaults", "official-order", "llama-order"])
def test_seeded_sampling_equals_cli(engine, cli, default_model, flags, options):
    expected = cli_generate(cli, default_model, "--max-tokens", N_TOKENS, *flags)
    result = engine.Pipeline(default_model).generate(PROMPT, max_tokens=N_TOKENS, **options)
    assert result.text == expected


def test_stop_string_equals_cli(engine, cli, default_model):
    pipe = engine.Pipeline(default_model)
    full = pipe.generate(PROMPT, max_tokens=N_TOKENS, temperature=0).text
    stop = full[N_TOKENS // 2:N_TOKENS // 2 + 3]
    expected = cli_generate(cli, default_model, "--temperature", 0, "--max-tokens", N_TOKENS, "--stop", stop)
    pieces = []
    result = pipe.generate(PROMPT, max_tokens=N_TOKENS, temperature=0, stop=[stop], callback=pieces.append)
    assert result.text == expected == full[:full.find(stop)]
    assert result.stop_reason == "stop_string"
    assert "".join(pieces) == result.text


def test_state_after_generation_equals_cli_state_out(engine, cli, default_model, tmp_path):
    path = tmp_path / "out.state"
    cli_generate(cli, default_model, "--temperature", 0, "--max-tokens", 8, "--state-out", path)
    result = engine.Pipeline(default_model).generate(PROMPT, max_tokens=8, temperature=0)
    assert result.state.to_bytes() == default_model.load_state(path).to_bytes()


def test_generation_continues_a_given_state(engine, default_model):
    pipe = engine.Pipeline(default_model)
    state = default_model.new_state()
    first = pipe.generate("def", max_tokens=4, temperature=0, state=state)
    assert first.state is state
    second = pipe.generate(" x", max_tokens=4, temperature=0, state=state)
    _, expected_state = default_model.forward(list(b"def") + first.tokens, None)
    default_model.forward(list(b" x") + second.tokens, expected_state)
    # Fed here in sequence mode, there token by token: equal within float32 rounding.
    assert max(abs(a - b) for a, b in zip(state.tolist(), expected_state.tolist())) <= 1e-4


def test_callback_streams_and_cancels(engine, default_model):
    pipe = engine.Pipeline(default_model)
    pieces = []
    result = pipe.generate(PROMPT, max_tokens=N_TOKENS, temperature=0, callback=pieces.append)
    assert "".join(pieces) == result.text and len(pieces) > 3
    seen = []

    def stop_after_three(piece):
        seen.append(piece)
        return len(seen) < 3

    cancelled = pipe.generate(PROMPT, max_tokens=N_TOKENS, temperature=0, callback=stop_after_three)
    assert cancelled.stop_reason == "cancelled"
    assert len(seen) == 3 and cancelled.text == "".join(seen) == "".join(pieces[:3])


def test_world_model_end_of_text(engine):
    """A World model (GGUF with its vocabulary inside) uses that vocabulary, and generation
    ends at the end-of-text token 0 unless told otherwise. (rwkv-cli refuses this tiny
    model: its 256 logits are fewer than the World vocabulary's 65536 ids.)"""
    model = engine.Model(FIXTURES_DIR / "tiny-v7.0.F32.gguf")
    assert model.tokenizer_kind == "world"
    pipe = engine.Pipeline(model)
    assert pipe.tokenizer.kind == "world" and pipe.encode("Hello") == [73, 102, 109, 109, 112]
    ended = pipe.generate("Hello", max_tokens=16, temperature=0, logit_bias={0: 1000.0})
    assert (ended.stop_reason, ended.tokens, ended.text) == ("end_of_text", [], "")
    fed = pipe.generate("Hello", max_tokens=2, temperature=0, logit_bias={0: 1000.0}, stop_at_end_of_text=False)
    assert (fed.stop_reason, fed.tokens, fed.text) == ("max_tokens", [0, 0], "")


def test_world_model_greedy_equals_cli(engine, cli, shared):
    """On a real-size World model named by $RWKV_WORLD_MODEL (e.g. the 0.1B benchmark model)."""
    path = os.environ.get("RWKV_WORLD_MODEL")
    if not path:
        pytest.skip("RWKV_WORLD_MODEL is not set")
    vocab = shared / "tokenizers" / "rwkv_vocab_v20230424.txt"
    model = engine.Model(path)
    prompt = "User: Tell me about Python.\n\nAssistant:"
    expected = cli.run("generate", "--model", path, "--tokenizer-vocab", vocab, "--prompt", prompt,
                       "--temperature", 0, "--max-tokens", 24).stdout.decode()
    result = engine.Pipeline(model, str(vocab)).generate(prompt, max_tokens=24, temperature=0)
    assert result.text == expected


def test_penalty_exemption_follows_chatrwkv(engine, default_model):
    pipe = engine.Pipeline(default_model)
    assert [pipe.is_penalty_exempt(b) for b in b" \t07a\n"] == [True, True, True, True, False, False]
    assert not pipe.is_penalty_exempt(0xE4)  # part of a UTF-8 character


def test_bad_generate_arguments(engine, default_model):
    pipe = engine.Pipeline(default_model)
    with pytest.raises(engine.RwkvError, match="prompt is empty"):
        pipe.generate("", max_tokens=4)
    with pytest.raises(engine.RwkvError, match="stop string is empty"):
        pipe.generate("a", stop=[""])
    with pytest.raises(engine.RwkvError, match="temperature"):
        pipe.generate("a", temperature=-1)
