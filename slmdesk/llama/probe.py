"""Proves that a model file does not crash llama.cpp before the app's own process loads it.

llama.cpp aborts the whole process on some damaged files (a duplicated token string, a bad rope
setting, a corrupt byte token met during generation). The window must never vanish because of a
file, so the first load of every new file happens in a child process: it loads the model exactly
as the chat does, renders the prompt format, converts every vocabulary token to text and
generates a few tokens. A child that dies by a signal marks the file unsafe, and the user gets a
sentence instead of a crash. Verdicts are remembered per file (by fingerprint), so each file is
proved once.

A load in the app's own process is recorded as pending while it runs: if the app dies during it,
the next load of that file is proved in a child again (and automatic reloads never crash twice).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from slmdesk.common import paths
from slmdesk.common.errors import InvalidModelError, SlmdeskError
from slmdesk.common.fileio import atomic_write_json, read_json

PROBE_MODULE = "slmdesk.llama.probe_child"
FROZEN_FLAG = "--slmdesk-probe-model"
PROBE_TIMEOUT_S = 300.0
_LOCK = threading.Lock()
log = logging.getLogger("slmdesk.llama.probe")


def _verdicts_path() -> Path:
    return paths.data_dir() / "load-verdicts.json"


def _key(path: Path) -> str:
    from slmdesk.models.library import fingerprint

    return fingerprint(path)


def _read() -> dict[str, Any]:
    data = read_json(_verdicts_path(), {})
    return data if isinstance(data, dict) else {}


def _update(key: str, value: dict[str, Any] | None) -> None:
    with _LOCK:
        data = _read()
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
        with contextlib.suppress(OSError):  # a read-only data folder only costs a re-probe
            atomic_write_json(_verdicts_path(), data)


def probe_command(model: Path) -> list[str]:
    """The argv of the probe child, in development and in a frozen app."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_FLAG, str(model)]
    return [sys.executable, "-m", PROBE_MODULE, str(model)]


class ProbeCancelled(SlmdeskError):
    """The load check was cancelled (its child was killed)."""


def _run_probe(model: Path, timeout: float, cancel: threading.Event | None) -> tuple[int, str, str]:
    """Run the check's child; returns its exit code, stdout and stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            probe_command(model), stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    code = proc.wait(timeout=0.1)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if cancel is not None and cancel.is_set():
                    raise ProbeCancelled("Loading the model was cancelled.")
                if time.monotonic() > deadline:
                    raise SlmdeskError(
                        f"Checking {model.name} took longer than {timeout:.0f} s; try again."
                    )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        return (
            code,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def _describe_death(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"llama.cpp crashed on it ({signal.Signals(-code).name})"
        return f"llama.cpp crashed on it (signal {-code})"
    return f"the check ended with exit code {code}"


def ensure_loadable(
    model: Path, timeout: float = PROBE_TIMEOUT_S, cancel: threading.Event | None = None
) -> None:
    """Prove ``model`` in a child process unless it already was; raise if it is unsafe.

    ``cancel`` (set from any thread) kills the check's child and raises `ProbeCancelled`.

    Raises:
        InvalidModelError: the file crashes llama.cpp (now or when it was proved before).
        ProbeCancelled: ``cancel`` was set.
    """
    key = _key(model)
    verdict = _read().get(key)
    if isinstance(verdict, dict) and verdict.get("state") == "ok":
        return
    if isinstance(verdict, dict) and verdict.get("state") == "unsafe":
        raise InvalidModelError(f"{model.name} crashes llama.cpp: {verdict.get('reason')}.")
    returncode, stdout, stderr = _run_probe(model, timeout, cancel)
    answer: dict[str, Any] = {}
    for line in reversed(stdout.splitlines()):
        with contextlib.suppress(ValueError):
            answer = json.loads(line)
            break
    if returncode < 0 or (returncode != 0 and not answer):
        reason = _describe_death(returncode)
        log.error("%s crashed the load check: %s\n%s", model, reason, stderr[-4000:])
        _update(key, {"state": "unsafe", "reason": reason, "path": str(model)})
        raise InvalidModelError(f"{model.name} crashes llama.cpp: {reason}.")
    if answer.get("ok"):
        _update(key, {"state": "ok", "path": str(model)})
        return
    # A clean refusal (damaged, unsupported, too big): not remembered, the load says why.
    message = str(answer.get("error") or f"{model.name} could not be checked.")
    raise InvalidModelError(message[:300])


def loading_started(model: Path) -> str:
    """Record that the app's process is loading ``model``; returns the key for `loading_done`."""
    key = _key(model)
    verdict = _read().get(key)
    if not (isinstance(verdict, dict) and verdict.get("state") == "ok"):
        return key
    _update(key, {"state": "pending", "path": str(model)})
    return key


def loading_done(key: str, model: Path) -> None:
    """The load that `loading_started` recorded finished (either way) without killing us."""
    _update(key, {"state": "ok", "path": str(model)})


def forget(model: Path) -> None:
    """Drop the remembered verdict of ``model`` (it will be proved again)."""
    with contextlib.suppress(OSError):
        _update(_key(model), None)
