"""``slmdesk chat --complete`` (text completion) and what the command says about base models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slmdesk", "chat", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )


def test_complete_sends_the_text_alone(tiny_model: Path) -> None:
    common = ("--prompt", "once upon a time", "--max-tokens", "4", "--seed", "1", "--json")
    chat = _run(str(tiny_model), *common)
    done = _run(str(tiny_model), *common, "--complete")
    assert chat.returncode == 0 and done.returncode == 0, done.stderr
    chat_data, data = json.loads(chat.stdout), json.loads(done.stdout)
    assert (chat_data["mode"], data["mode"]) == ("chat", "complete")
    assert data["format"]["source"] == "completion"
    assert "continued as written" in data["format"]["description"]
    # no chat template around it: fewer tokens than the same text as a chat turn
    assert data["timings"]["prompt_tokens"] < chat_data["timings"]["prompt_tokens"]


def test_complete_refuses_a_system_prompt(tiny_model: Path) -> None:
    out = _run(str(tiny_model), "--prompt", "hi", "--complete", "--system", "be nice")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "error: --system cannot be used with --complete: only your text is continued."
    )


def test_a_base_model_is_named_as_such_with_the_way_out(tiny_model_no_template: Path) -> None:
    out = _run(str(tiny_model_no_template), "--prompt", "hello", "--max-tokens", "3")
    assert out.returncode == 0, out.stderr
    assert "format: question-and-answer format for base models" in out.stderr
    assert "looks like a base model" in out.stderr and "--complete" in out.stderr
    completing = _run(
        str(tiny_model_no_template), "--prompt", "hi", "--complete", "--max-tokens", "3"
    )
    assert completing.returncode == 0, completing.stderr
    assert "mode: text completion" in completing.stderr
    assert "looks like a base model" not in completing.stderr


@pytest.mark.integration
def test_gemma_continues_a_sentence_with_complete(gemma_model: Path) -> None:
    out = _run(
        str(gemma_model),
        "--prompt",
        "The capital of France is",
        "--complete",
        "--temperature",
        "0",
        "--max-tokens",
        "12",
        "--threads",
        "2",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    assert "Question:" not in out.stdout and "Answer:" not in out.stdout
    assert "mode: text completion" in out.stderr
