"""Tokenizers and the streaming decoder, against `rwkv-cli tokenize`."""

import json

import pytest

TEXT = "Hello, world! 中文 naïve — 🐍 code:\n\tx = 1"


def cli_tokenize(cli, kind, vocab, text):
    return json.loads(cli.run("tokenize", "--tokenizer", kind, "--vocab", vocab, "--text", text, threads=False).stdout)


def test_world_tokenizer(engine, cli, shared):
    vocab = shared / "tokenizers" / "rwkv_vocab_v20230424.txt"
    tok = engine.Tokenizer("world", vocab)
    assert tok.kind == "world" and tok.vocab_size == 65536
    assert tok.encode("Hello, world!") == [33155, 45, 40213, 34]
    ids = tok.encode(TEXT)
    assert ids == cli_tokenize(cli, "world", vocab, TEXT)
    assert tok.decode(ids) == TEXT
    assert tok.decode_bytes(ids) == TEXT.encode()
    assert tok.encode(TEXT.encode()) == ids


def test_neox_tokenizer(engine, cli, shared):
    vocab = shared / "tokenizers" / "20B_tokenizer.json"
    tok = engine.Tokenizer("neox", str(vocab))
    ids = tok.encode(TEXT)
    assert ids == cli_tokenize(cli, "neox", vocab, TEXT)
    assert tok.decode(ids) == TEXT


def test_bytes_tokenizer_and_model_tokenizer(engine, default_model):
    tok = engine.Tokenizer("bytes")
    data = TEXT.encode()
    assert tok.encode(TEXT) == list(data) and tok.vocab_size == 256
    assert tok.encode("") == [] and tok.decode([]) == ""
    own = engine.Tokenizer.for_model(default_model)
    assert own.kind == "bytes" and own.encode(TEXT) == list(data)


def test_decode_replaces_invalid_utf8(engine):
    tok = engine.Tokenizer("bytes")
    assert tok.decode([0xE4, 0xB8]) == "\ufffd"
    assert tok.decode_bytes([0xE4, 0xB8]) == b"\xe4\xb8"
    assert tok.token_bytes(0xFF) == b"\xff"


def test_stream_decoder_holds_back_partial_characters(engine):
    tok = engine.Tokenizer("bytes")
    decoder = tok.decoder()
    assert [decoder.push(b) for b in "中".encode()] == ["", "", "中"]
    assert decoder.push(ord("a")) == "a"
    assert decoder.push(0xFF) == "\ufffd"  # never valid
    assert decoder.push(0xE4) == ""
    assert decoder.flush() == "\ufffd"  # incomplete at the end
    assert decoder.push(0) == "\x00"  # NUL is text for the bytes tokenizer
    pieces = [decoder.push(b) for b in TEXT.encode()] + [decoder.flush()]
    assert "".join(pieces) == TEXT


def test_tokenizer_errors(engine, tmp_path):
    with pytest.raises(engine.RwkvError, match="missing-vocab.txt"):
        engine.Tokenizer("world", tmp_path / "missing-vocab.txt")
    with pytest.raises(engine.RwkvError, match="klingon"):
        engine.Tokenizer("klingon")
    with pytest.raises(engine.RwkvError, match="256"):
        engine.Tokenizer("bytes").decode([256])
