"""``kill -9`` during an optimize run: the worker child follows its parent, no partial file stays
behind, and a model still being evaluated is never listed in the library."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from slmdesk.optimize.leftovers import remove_stale

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _hidden(folder: Path, marker: str) -> list[Path]:
    return [p for p in folder.glob(".*") if marker in p.name] if folder.exists() else []


def test_killed_parent_takes_its_worker_and_partial_output_with_it(
    gemma_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    script = (
        "import sys\n"
        "from slmdesk.optimize.pipeline import quantize\n"
        "quantize(sys.argv[1], sys.argv[2], 'F16')\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script, str(gemma_model), str(out / "g.gguf")])
    try:
        _wait_for(lambda: _hidden(out, ".partial-"), 180, "the conversion to start writing")
        workers = psutil.Process(parent.pid).children(recursive=True)
        assert workers, "the conversion runs in a child process"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        _gone, alive = psutil.wait_procs(workers, timeout=30)
        assert alive == [], "the worker outlived its parent"
        _wait_for(lambda: not _hidden(out, ".partial-"), 10, "the partial output to be removed")
    finally:
        if parent.poll() is None:
            parent.kill()
    assert list(out.iterdir()) == []


def test_killed_during_evaluation_lists_no_half_made_model(
    gemma_model: Path, slmdesk_home: Path
) -> None:
    cmd = [sys.executable, "-m", "slmdesk"]
    subprocess.run([*cmd, "models", "import", str(gemma_model)], check=True, capture_output=True)
    models = slmdesk_home / "models"
    run = subprocess.Popen(
        [*cmd, "optimize", "gemma-3-270m-Q4_K_M", "--quant", "Q8_0", "--name", "half"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # The converted model exists under its hidden name while it is being evaluated.
        staged = _wait_for(
            lambda: [p for p in _hidden(models, ".optimizing-") if ".partial-" not in p.name],
            600,
            "the evaluation to start",
        )
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    listed = subprocess.run(
        [*cmd, "models", "list", "--json"], check=True, capture_output=True, text=True
    )
    names = {m["name"] for m in json.loads(listed.stdout)["models"]}
    assert "half" not in names
    assert not (models / "half.gguf").exists()
    assert set(remove_stale(models)) >= set(staged)  # type: ignore[arg-type]
    assert not _hidden(models, ".optimizing-")
