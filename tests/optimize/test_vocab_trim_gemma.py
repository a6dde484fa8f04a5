"""Integration: the real Gemma 3 270M trimmed to English and code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gguf
import pytest

from slmdesk.optimize.vocab import gate_failure, heldout_texts, trim_vocabulary, verify_trim

pytestmark = pytest.mark.integration


@pytest.mark.timeout(3600)  # two readings of a 262,144-token vocabulary on a loaded machine
def test_gemma3_trimmed_to_english_code(gemma_model: Path, tmp_path: Path) -> None:
    result = trim_vocabulary(gemma_model, tmp_path / "gemma-en.gguf", "english-code")
    assert result.original_tokens == 262_144
    assert 100_000 < result.kept_tokens < 200_000
    assert result.size_bytes < result.source_size_bytes * 0.8
    reader = gguf.GGUFReader(str(result.dest), "r")
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    for key, text in (
        ("bos", "<bos>"),
        ("eos", "<eos>"),
        ("unknown", "<unk>"),
        ("padding", "<pad>"),
    ):
        assert tokens[int(reader.fields[f"tokenizer.ggml.{key}_token_id"].contents())] == text
    assert "<end_of_turn>" in tokens and "<start_of_turn>" in tokens
    embd = next(t for t in reader.tensors if t.name == "token_embd.weight")
    assert embd.tensor_type.name == "Q8_0" and embd.shape[-1] == result.kept_tokens

    # Same type on both sides: any difference in the predictions is the trim's alone.
    check = verify_trim(gemma_model, result.dest, heldout_texts("english-code"), kld_tokens=200)
    assert check.identical_texts == check.texts == 2, check.first_difference
    assert check.tokens_compared > 1500 and check.positions_scored > 300
    assert check.kld_mean <= 0.05 and gate_failure(check) is None

    args = ["--prompt", "What is the capital of France?", "--max-tokens", "12", "--seed", "1"]
    out = subprocess.run(
        [sys.executable, "-m", "slmdesk", "chat", str(result.dest), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    reply = json.loads(out.stdout)["reply"]
    assert reply.strip(), out.stdout
