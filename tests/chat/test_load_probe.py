"""The first load of a file is proved in a child process, so a file that crashes llama.cpp gives a
sentence instead of taking the app down (and is never loaded in the app's process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slmdesk.common.errors import InvalidModelError
from slmdesk.llama import probe
from slmdesk.llama.engine import ChatEngine
from slmdesk.models import synth


@pytest.fixture
def crashing_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny model whose vocabulary holds one token string twice (llama.cpp aborts on it)."""
    original = synth._vocab

    def duplicated() -> tuple[list[str], list[float], list[int]]:
        tokens, scores, types = original()
        tokens = list(tokens)
        tokens[300] = tokens[301]
        return tokens, scores, types

    monkeypatch.setattr(synth, "_vocab", duplicated)
    return synth.write_tiny_llama(tmp_path / "crashing.gguf")


@pytest.fixture
def probe_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Records every probe child started (the real child still runs)."""
    started: list[list[str]] = []
    real_run = subprocess.run

    def run(cmd: list[str], *args: object, **kwargs: object) -> object:
        if probe.PROBE_MODULE in cmd:
            started.append(cmd)
        return real_run(cmd, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(probe.subprocess, "run", run)
    return started


def test_a_file_that_crashes_llama_cpp_is_refused_not_loaded(
    crashing_model: Path, probe_runs: list[list[str]]
) -> None:
    # The same file crashes a process that loads it directly.
    direct = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, llama_cpp; llama_cpp.Llama(sys.argv[1], verbose=False)",
            str(crashing_model),
        ],
        capture_output=True,
    )
    assert direct.returncode < 0
    engine = ChatEngine()
    with pytest.raises(InvalidModelError, match=r"crashes llama\.cpp: .*SIG"):
        engine.load(crashing_model)
    assert not engine.is_loaded
    with pytest.raises(InvalidModelError, match=r"crashes llama\.cpp"):
        engine.load(crashing_model)
    assert len(probe_runs) == 1  # the verdict is remembered


def test_a_good_file_is_proved_once(tiny_model: Path, probe_runs: list[list[str]]) -> None:
    engine = ChatEngine()
    try:
        engine.load(tiny_model)
        engine.load(tiny_model)
    finally:
        engine.unload()
    assert len(probe_runs) == 1


def test_a_load_that_never_finished_is_proved_again(
    tiny_model: Path, probe_runs: list[list[str]]
) -> None:
    engine = ChatEngine()
    try:
        engine.load(tiny_model)
    finally:
        engine.unload()
    # The app dies while it loads the file in its own process.
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from slmdesk.llama import probe\n"
        "probe.loading_started(Path(sys.argv[1]))\n"
        "os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tiny_model)], check=False)
    try:
        engine.load(tiny_model)
    finally:
        engine.unload()
    assert len(probe_runs) == 2
