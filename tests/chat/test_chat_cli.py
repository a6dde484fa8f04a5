"""``slmdesk chat`` run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slmdesk", "chat", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        env={**os.environ},
    )


def test_prompt_json(tiny_model: Path) -> None:
    out = _run(str(tiny_model), "--prompt", "hello", "--max-tokens", "6", "--seed", "1", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) == {"reply", "timings", "format", "mode", "system_prompt", "load"}
    assert data["timings"]["generated_tokens"] <= 6
    assert data["format"]["source"] == "template"
    assert "<|im_end|>" in data["format"]["stop_strings"]


def test_prompt_streams_text_and_timings(tiny_model: Path) -> None:
    args = (str(tiny_model), "--prompt", "hello", "--max-tokens", "8", "--seed", "1")
    out = _run(*args, "--system", "be short", "--temperature", "0.5", "--ctx", "512")
    assert out.returncode == 0, out.stderr
    assert "tokens/s" in out.stderr and "format: the model's own chat template" in out.stderr
    again = _run(*args, "--system", "be short", "--temperature", "0.5", "--ctx", "512")
    assert again.stdout == out.stdout  # same seed, same reply


def test_interactive_session_with_reset_and_exit(tiny_model: Path) -> None:
    script = "hello\n\n/reset\nwhat is the water\n/exit\n"
    out = _run(str(tiny_model), "--max-tokens", "5", "--seed", "2", stdin=script)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("tokens/s") == 2
    assert "[conversation cleared]" in out.stderr


def test_model_by_library_name(tiny_model: Path) -> None:
    imported = subprocess.run(
        [sys.executable, "-m", "slmdesk", "models", "import", str(tiny_model), "--name", "tiny"],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert imported.returncode == 0, imported.stderr
    out = _run("tiny", "--prompt", "hi", "--max-tokens", "3", "--json")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", "   "], "The message is empty"),
        (["--json"], "--json needs --prompt"),
        (["--prompt", "hi", "--temperature", "-2"], "temperature"),
        (["--prompt", "hi", "--ctx", "10"], "context length must be at least"),
        (["--prompt", "hi", "--format", "klingon"], "Unknown chat format"),
    ],
)
def test_bad_input_is_one_clear_line(tiny_model: Path, args: list[str], message: str) -> None:
    out = _run(str(tiny_model), *args)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and message in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_and_non_gguf_models(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_text("nope")
    for target, message in [
        (str(junk), "not a GGUF model file"),
        ("no-such-model", "No model named"),
        (str(tmp_path / "gone.gguf"), "does not exist"),
    ]:
        out = _run(target, "--prompt", "hi")
        assert out.returncode == 1, out.stderr
        assert message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.integration
def test_gemma_starter_answers_from_the_command_line(gemma_model: Path) -> None:
    out = _run(
        str(gemma_model),
        "--prompt",
        "What is the capital of France?",
        "--temperature",
        "0",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert "Paris" in data["reply"]
    assert "User:" not in data["reply"]
    assert data["format"]["description"].startswith("question-and-answer format for base models")
    assert data["format"]["base_model"] is True and data["mode"] == "chat"
    assert "Question:" not in data["reply"] and "Answer:" not in data["reply"]
