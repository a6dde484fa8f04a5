"""The `models` and `inspect` commands, run as a user would: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fault_tools


def run_cli(*args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    kwargs: dict = {}
    if user is not None:
        kwargs["user"] = user
    return subprocess.run(
        [sys.executable, "-m", "slmdesk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        **kwargs,
    )


def test_version() -> None:
    out = run_cli("--version")
    assert out.returncode == 0
    assert out.stdout.startswith("slmdesk ")


def test_bad_usage_exits_2() -> None:
    out = run_cli("models", "frobnicate")
    assert out.returncode == 2


def test_import_list_inspect_remove(tiny_model: Path) -> None:
    out = run_cli("models", "import", str(tiny_model), "--json")
    assert out.returncode == 0, out.stderr
    imported = json.loads(out.stdout)
    assert imported["name"] == "tiny-llama-F16"

    listing = json.loads(run_cli("models", "list", "--json").stdout)
    (model,) = listing["models"]
    for key in ("name", "path", "size_bytes", "architecture", "quantization"):
        assert key in model
    assert model["size_bytes"] == tiny_model.stat().st_size

    facts = json.loads(run_cli("inspect", "tiny-llama-F16", "--json").stdout)
    for key in (
        "path",
        "architecture",
        "parameters",
        "block_count",
        "context_length",
        "quantization",
        "size_bytes",
        "has_chat_template",
        "memory",
    ):
        assert key in facts
    assert facts["block_count"] == 4
    assert facts["memory"]["verdict"] == "fits"

    text = run_cli("models", "list")
    assert "tiny-llama-F16" in text.stdout and "llama" in text.stdout

    removed = run_cli("models", "remove", "tiny-llama-F16")
    assert removed.returncode == 0
    assert "deleted" in removed.stdout
    assert json.loads(run_cli("models", "list", "--json").stdout)["models"] == []


def _bad_target(kind: str, folder: Path) -> Path:
    if kind == "text":
        (folder / "notes.gguf").write_text("hello, these are notes\n")
        return folder / "notes.gguf"
    if kind == "empty":
        (folder / "zero.gguf").touch()
        return folder / "zero.gguf"
    if kind == "folder":
        return folder
    return folder / "missing.gguf"


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("text", "not a GGUF model"),
        ("empty", "empty"),
        ("folder", "folder"),
        ("missing", "does not exist"),
    ],
)
def test_bad_input_gives_one_line_errors(tmp_path: Path, kind: str, message: str) -> None:
    target = _bad_target(kind, tmp_path)
    for args in (("models", "import", str(target)), ("inspect", str(target))):
        out = run_cli(*args)
        assert out.returncode == 1
        assert out.stderr.startswith("error: ")
        assert message in out.stderr
        assert "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    assert json.loads(run_cli("models", "list", "--json").stdout)["models"] == []


def test_truncated_model(tiny_model: Path) -> None:
    os.truncate(tiny_model, tiny_model.stat().st_size // 3)
    out = run_cli("inspect", str(tiny_model))
    assert out.returncode == 1
    assert "truncated" in out.stderr


def test_duplicate_import(tiny_model: Path) -> None:
    assert run_cli("models", "import", str(tiny_model)).returncode == 0
    out = run_cli("models", "import", str(tiny_model))
    assert out.returncode == 1
    assert "already in the library" in out.stderr


def test_unknown_model_name() -> None:
    out = run_cli("inspect", "no-such-model")
    assert out.returncode == 1
    assert "No model named 'no-such-model'" in out.stderr


def test_file_without_read_permission(tiny_model: Path) -> None:
    tiny_model.chmod(0)
    out = subprocess.run(
        [
            *fault_tools.unprivileged_prefix(),
            sys.executable,
            "-m",
            "slmdesk",
            "inspect",
            str(tiny_model),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    assert "permission denied" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.integration
def test_inspect_the_starter_model(gemma_model: Path) -> None:
    facts = json.loads(run_cli("inspect", str(gemma_model), "--json").stdout)
    assert facts["architecture"] == "gemma3"
    assert facts["block_count"] == 18
    assert facts["quantization"] == "Q4_K_M"
    assert facts["has_chat_template"] is False


def test_gui_without_a_display_explains_itself() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    out = subprocess.run(
        [sys.executable, "-m", "slmdesk"], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 1
    assert out.stderr.startswith("error: No display")
