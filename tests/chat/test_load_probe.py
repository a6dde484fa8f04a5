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

# llama.cpp loading a file with no slmdesk check in between (the last argument is the file).
RAW_LOAD = [
    sys.executable,
    "-c",
    "import sys, llama_cpp; llama_cpp.Llama(sys.argv[-1], verbose=False)",
]


@pytest.fixture
def crashing_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny model whose vocabulary holds one token string twice (llama.cpp aborts on it)."""
    original = synth._vocab

    def duplicated(*args: object) -> tuple[list[str], list[float], list[int]]:
        tokens, scores, types = original(*args)
        tokens = list(tokens)
        tokens[300] = tokens[301]
        return tokens, scores, types

    monkeypatch.setattr(synth, "_vocab", duplicated)
    return synth.write_tiny_llama(tmp_path / "crashing.gguf")


@pytest.fixture
def probe_runs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records every load check started (the real check still runs)."""
    started: list[Path] = []
    real_run = probe._run_probe

    def run(model: Path, *args: object) -> tuple[int, str, str]:
        started.append(model)
        return real_run(model, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(probe, "_run_probe", run)
    return started


def test_a_file_that_crashes_llama_cpp_is_refused_before_it_is_loaded(
    crashing_model: Path,
) -> None:
    # The file really kills a process that hands it to llama.cpp unchecked...
    direct = subprocess.run([*RAW_LOAD, str(crashing_model)], capture_output=True)
    assert direct.returncode < 0
    # ...and the engine refuses it with a sentence before llama.cpp sees it.
    engine = ChatEngine()
    with pytest.raises(InvalidModelError, match=r"tokens 300 and 301 are the same"):
        engine.load(crashing_model)
    assert not engine.is_loaded


def test_a_crash_in_the_load_check_marks_the_file_unsafe(
    crashing_model: Path, monkeypatch: pytest.MonkeyPatch, probe_runs: list[Path]
) -> None:
    # A file that crashes llama.cpp in a way no check foresaw: the load check's child is the
    # one that dies. Here it is llama.cpp itself, unchecked, on a file that aborts it.
    monkeypatch.setattr(
        probe, "probe_command", lambda model: [*RAW_LOAD, probe.PROBE_MODULE, str(model)]
    )
    with pytest.raises(InvalidModelError, match=r"crashes llama\.cpp: .*SIG"):
        probe.ensure_loadable(crashing_model)
    with pytest.raises(InvalidModelError, match=r"crashes llama\.cpp"):
        probe.ensure_loadable(crashing_model)
    assert len(probe_runs) == 1  # the verdict is remembered, the file is not tried again


def test_a_good_file_is_proved_once(tiny_model: Path, probe_runs: list[Path]) -> None:
    engine = ChatEngine()
    try:
        engine.load(tiny_model)
        engine.load(tiny_model)
    finally:
        engine.unload()
    assert len(probe_runs) == 1


def test_a_load_that_never_finished_is_proved_again(
    tiny_model: Path, probe_runs: list[Path]
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


@pytest.mark.integration
def test_cancelling_a_load_during_its_check_kills_the_check(gemma_model: Path) -> None:
    import threading
    import time

    import psutil

    from slmdesk.llama.engine import LoadCancelled

    def checks() -> list[psutil.Process]:
        return [
            p
            for p in psutil.Process().children(recursive=True)
            if probe.PROBE_MODULE in " ".join(p.cmdline())
        ]

    cancel = threading.Event()
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            ChatEngine().load(gemma_model, cancel=cancel)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=load)
    worker.start()
    deadline = time.monotonic() + 120
    while not checks() and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    running = checks()
    assert running, "the first load of a file runs its check in a child"
    cancel.set()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert outcome and isinstance(outcome[0], LoadCancelled)
    _gone, alive = psutil.wait_procs(running, timeout=10)
    assert alive == []
