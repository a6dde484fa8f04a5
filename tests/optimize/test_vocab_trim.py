"""Vocabulary trimming on a tiny real model whose vocabulary holds pieces outside English."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gguf
import pytest

from slmdesk.common.errors import SlmdeskError
from slmdesk.llama.scoring import ModelRunner
from slmdesk.models.synth import TinyModelSpec, write_tiny_llama
from slmdesk.optimize.vocab import (
    LANGUAGE_SETS,
    charset_for,
    gate_failure,
    heldout_texts,
    trim_vocabulary,
    verify_trim,
)
from slmdesk.optimize.vocab.step import trim_in_place
from tests.gguf_copy import copy_gguf_with

# Pieces with characters outside "english-code" (é, ü, å, CJK), with merge paths to them.
FOREIGN = ("é", "▁été", "▁café", "ü", "▁über", "日", "本", "▁日本", "<tåble>")
ENGLISH_EXTRA = (
    "▁ca",
    "▁caf",
    "ll",
    "llo",
    "▁hel",
    "▁hell",
    "▁hello",
    "▁code",
    "()",
    "):",
    "<table>",
    "\n\n",
)
SPEC = TinyModelSpec(
    name="Tiny Mixed Vocab",
    extra_pieces=tuple(p for p in FOREIGN + ENGLISH_EXTRA if not p.startswith("<") and p != "\n\n"),
    user_defined=("<table>", "<tåble>", "\n\n"),
)
ENGLISH = (
    "hello world, the small model can chat. what is the water of the sea?\n\n"
    "def hello(self):\n    return print('hello')  # <table> is a tag\n"
)


def _tokens(path: Path) -> tuple[list[str], list[int], dict[str, Any]]:
    reader = gguf.GGUFReader(str(path), "r")
    ids = {f.name: f.contents() for f in reader.fields.values() if f.name.endswith("_token_id")}
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = [int(t) for t in reader.fields["tokenizer.ggml.token_type"].contents()]
    return tokens, types, ids


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with foreign pieces; its padding id names a token after some of them."""
    folder = tmp_path_factory.mktemp("vocab")
    plain = write_tiny_llama(folder / "plain.gguf", SPEC)
    tokens, _, _ = _tokens(plain)
    return copy_gguf_with(
        plain,
        folder / "mixed-F16.gguf",
        {"tokenizer.ggml.padding_token_id": tokens.index("\n\n")},
    )


@pytest.fixture(scope="module")
def trimmed(mixed_model: Path) -> Path:
    result = trim_vocabulary(mixed_model, mixed_model.with_name("trimmed.gguf"), "english-code")
    assert result.kept_tokens < result.original_tokens
    assert result.size_bytes == result.dest.stat().st_size < result.source_size_bytes
    return result.dest


def _text_of(pieces: list[str], types: list[int]) -> str:
    """Detokenize token texts as SentencePiece does (bytes joined, ▁ as space, no control)."""
    out = bytearray()
    for piece, kind in zip(pieces, types, strict=True):
        if kind == 6:
            out.append(int(piece[3:5], 16))
        elif kind != 3:
            out += piece.replace("▁", " ").encode()
    return out.decode("utf-8")


def test_kept_ids_are_every_token_over_the_charset(mixed_model: Path, trimmed: Path) -> None:
    tokens, types, _ = _tokens(mixed_model)
    kept, kept_types, _ = _tokens(trimmed)
    dropped = [t for t in tokens if t not in set(kept)]
    assert sorted(dropped) == sorted(FOREIGN)
    assert kept == [t for t in tokens if t not in FOREIGN]  # order kept, so ids stay ascending
    assert sum(1 for k in kept_types if k == 6) == 256  # every byte token
    assert [t for t, k in zip(tokens, types, strict=True) if k == 3] == [
        t for t, k in zip(kept, kept_types, strict=True) if k == 3
    ]
    for piece in ENGLISH_EXTRA:
        assert piece in kept


def test_special_ids_are_remapped(mixed_model: Path, trimmed: Path) -> None:
    tokens, _, ids = _tokens(mixed_model)
    kept, _, new_ids = _tokens(trimmed)
    assert set(new_ids) == set(ids)
    for key, old in ids.items():
        assert kept[new_ids[key]] == tokens[old], key
    pad = "tokenizer.ggml.padding_token_id"
    assert new_ids[pad] < ids[pad]  # it really moved: foreign tokens came before it


def test_tensors_have_the_kept_rows(mixed_model: Path, trimmed: Path) -> None:
    before = {t.name: t for t in gguf.GGUFReader(str(mixed_model), "r").tensors}
    after = {t.name: t for t in gguf.GGUFReader(str(trimmed), "r").tensors}
    assert set(before) == set(after)
    tokens, _, _ = _tokens(mixed_model)
    kept, _, _ = _tokens(trimmed)
    rows = [tokens.index(t) for t in kept]
    for name in ("token_embd.weight", "output.weight"):
        assert (after[name].data == before[name].data[rows]).all()
    assert (after["blk.0.ffn_up.weight"].data == before["blk.0.ffn_up.weight"].data).all()


def test_tokenization_is_identical_on_text_over_the_charset(
    mixed_model: Path, trimmed: Path
) -> None:
    assert set(ENGLISH) <= charset_for("english-code")
    check = verify_trim(mixed_model, trimmed, [ENGLISH, *heldout_texts("english-code")])
    assert check.identical_texts == check.texts == 3, check.first_difference
    assert check.positions_scored > 100
    assert check.kld_mean <= 0.05 and check.top1_agreement > 0.95
    assert check.passed and gate_failure(check) is None


def test_corpus_tokens_and_their_merges_are_kept(mixed_model: Path, trimmed: Path) -> None:
    tokens, _, _ = _tokens(mixed_model)
    kept = set(_tokens(trimmed)[0])
    corpus = (Path(__file__).parents[2] / "resources" / "vocab" / "english.txt").read_text()
    with ModelRunner(mixed_model, 64) as runner:
        seen = {tokens[i] for i in runner.tokenize(corpus[:50_000] + " hello")}
    assert "▁hello" in seen and seen <= kept


def test_text_outside_the_charset_round_trips_through_bytes(
    mixed_model: Path, trimmed: Path
) -> None:
    text = "un café en été, über 日本"
    kept, kept_types, _ = _tokens(trimmed)
    with ModelRunner(trimmed, 64) as runner:
        ids = runner.tokenize(text)
    pieces = [kept[i] for i in ids]
    assert "<0xC3>" in pieces  # é spelled as bytes
    assert _text_of(pieces, [kept_types[i] for i in ids]).strip() == text
    check = verify_trim(mixed_model, trimmed, [text])
    assert check.identical_texts == 0 and not check.passed
    message = gate_failure(check)
    assert message is not None and "1 of 1 held-out texts" in message and "▁café" in message


def test_trimmed_model_loads_and_chats(trimmed: Path) -> None:
    args = ["--prompt", "hello", "--max-tokens", "6", "--seed", "1", "--json"]
    out = subprocess.run(
        [sys.executable, "-m", "slmdesk", "chat", str(trimmed), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert isinstance(data["reply"], str) and data["timings"]["generated_tokens"] >= 1


def test_token_arrays_of_different_lengths_are_refused(mixed_model: Path, tmp_path: Path) -> None:
    reader = gguf.GGUFReader(str(mixed_model), "r")
    scores = list(reader.fields["tokenizer.ggml.scores"].contents())[:-3]
    bad = copy_gguf_with(mixed_model, tmp_path / "bad.gguf", {"tokenizer.ggml.scores": scores})
    with pytest.raises(SlmdeskError) as caught:
        trim_vocabulary(bad, tmp_path / "out.gguf", "english-code")
    message = str(caught.value)
    assert "\n" not in message and message.endswith(".")
    assert not (tmp_path / "out.gguf").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.gguf")]
    assert "scores" in message and "different lengths" in message, message


def test_other_bad_requests_are_sentences(mixed_model: Path, tmp_path: Path) -> None:
    with pytest.raises(SlmdeskError, match="choose one of english-code"):
        trim_vocabulary(mixed_model, tmp_path / "x.gguf", "klingon")
    with pytest.raises(SlmdeskError, match="other than its source"):
        trim_vocabulary(mixed_model, mixed_model, "english-code")
    bpe = copy_gguf_with(mixed_model, tmp_path / "bpe.gguf", {"tokenizer.ggml.model": "gpt2"})
    with pytest.raises(SlmdeskError, match="SentencePiece"):
        trim_vocabulary(bpe, tmp_path / "y.gguf", "english-code")
    not_gguf = tmp_path / "text.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(SlmdeskError):
        trim_vocabulary(not_gguf, tmp_path / "z.gguf", "english-code")


def test_language_sets_are_described() -> None:
    assert {"english-code", "western-european"} <= set(LANGUAGE_SETS)
    for name, spec in LANGUAGE_SETS.items():
        assert spec.name == name and spec.description.endswith(".")
        assert charset_for("english-code") <= charset_for(name)
        for text in heldout_texts(name):
            assert set(text) <= charset_for(name)
    assert "é" not in charset_for("english-code") and "é" in charset_for("western-european")


def test_trim_in_place_refuses_a_failing_trim_and_leaves_the_model(
    mixed_model: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(mixed_model.read_bytes())
    with pytest.raises(SlmdeskError) as caught:
        trim_in_place(model, "english-code", texts=["un café, s'il vous plaît"])
    message = str(caught.value)
    assert "0 of 1 texts tokenized alike" in message and "not kept" in message, message
    assert model.read_bytes() == mixed_model.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf", "slmdesk-home"]


def test_optimize_cli_with_vocabulary(mixed_model: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "slmdesk", "optimize", str(mixed_model), *args],
            capture_output=True,
            text=True,
            timeout=600,
            env=dict(os.environ),
        )

    out = run("--quant", "Q8_0", "--vocabulary", "english-code", "--no-eval", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout)
    vocabulary = data["vocabulary"]
    assert vocabulary["set"] == "english-code"
    assert vocabulary["original_tokens"] - vocabulary["kept_tokens"] == len(FOREIGN)
    assert vocabulary["check"]["passed"] is True
    path = Path(data["path"])
    assert path.name.endswith("-english-code-Q8_0.gguf")
    assert data["report"]["size_after"] == path.stat().st_size
    assert len(_tokens(path)[0]) == vocabulary["kept_tokens"]

    bad = run("--quant", "Q8_0", "--vocabulary", "klingon")
    assert bad.returncode == 1 and bad.stderr.startswith("error: Unknown vocabulary 'klingon'")


def test_optimize_with_vocabulary_evaluates_the_trimmed_file(mixed_model: Path) -> None:
    from slmdesk.optimize import pipeline as opt

    result = opt.optimize(
        opt.OptimizeRequest(mixed_model, "Q8_0", name="mixed-en", vocabulary="english-code")
    )
    report = result.report
    kept = report["vocabulary"]["kept_tokens"]
    assert kept == len(_tokens(result.path)[0]) < report["vocabulary"]["original_tokens"]
    evaluation = report["eval"]
    assert evaluation["extra"]["kept_tokens"] == kept  # scored over the tokens the file has
    assert evaluation["n_tokens_scored"] > 0 and 0.0 <= evaluation["kld_mean"] < 1.0
    assert report["size_after"] == result.path.stat().st_size
