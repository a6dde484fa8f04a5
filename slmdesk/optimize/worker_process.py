"""Run heavy llama.cpp work (quantize, evaluate, plan) in a child process.

Why a child: llama.cpp's quantizer cannot be interrupted, and a native crash in it would take
the window down with it. In a child, Cancel is ``kill()`` and a crash is an exit code.

Protocol: the parent starts ``python -m slmdesk.optimize.child.main`` (see `worker_command`) and
writes one JSON job on its stdin. The child writes JSON lines on stdout — ``{"event": "progress",
...}``, ``{"event": "result", ...}`` or ``{"event": "error", "message": ...}`` — and llama.cpp
writes its log on stderr (kept for the crash message); a conversion's progress, weighted by tensor
size, comes from the child's own reading of that log (`slmdesk.optimize.child.quantize_progress`).

Threads: `run_worker` blocks the calling thread; it starts two reader threads named
``slmdesk-worker-out`` / ``slmdesk-worker-err`` and joins them before it returns. Callbacks run on
the calling thread.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from slmdesk.common.errors import SlmdeskError

WORKER_MODULE = "slmdesk.optimize.child.main"
# When frozen (PyInstaller), the app executable itself must dispatch to the worker when it is
# started with this first argument (see slmdesk.optimize.child.main.frozen_dispatch).
FROZEN_FLAG = "--slmdesk-optimize-worker"


class OptimizeCancelled(SlmdeskError):
    """The user cancelled; partial output was removed."""


class WorkerCrashed(SlmdeskError):
    """The child process died (killed, out of memory, native crash)."""


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` units in the current ``stage``."""

    stage: str
    done: int
    total: int
    detail: str = ""
    # Share of the stage's work done (0..1) when it is known better than ``done / total``: a
    # conversion weighs each tensor by its size.
    fraction: float | None = None
    # Planning: the set of blocks just measured and its mean KL divergence (a single block's is
    # its importance).
    blocks: tuple[int, ...] = ()
    kld_mean: float | None = None


ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]


def worker_command() -> list[str]:
    """The argv that starts the worker child, in development and in a frozen app."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_FLAG]
    return [sys.executable, "-m", WORKER_MODULE]


def _pump(stream: IO[bytes], name: str, out: queue.Queue[tuple[str, str | None]]) -> None:
    for raw in iter(stream.readline, b""):
        out.put((name, raw.decode("utf-8", errors="replace").rstrip("\r\n")))
    out.put((name, None))


def run_worker(
    job: dict[str, Any],
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    stage: str = "working",
    cleanup: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run ``job`` in a child process and return its result.

    Args:
        job: JSON-ready job (``{"kind": "quantize" | "evaluate" | "plan" | "dry_run", ...}``).
        progress: called on the calling thread with each `Progress`.
        cancel: polled about ten times a second; when it returns True the child is killed.
        stage: stage name for tensor-count progress from llama.cpp's log.
        cleanup: called after a cancel or a crash, to remove partial output.

    Raises:
        OptimizeCancelled: ``cancel`` returned True.
        WorkerCrashed: the child died without a result.
        SlmdeskError: the child reported a user error (its message).
    """
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(
        worker_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    readers = [
        threading.Thread(
            target=_pump, args=(proc.stdout, "out", lines), name="slmdesk-worker-out", daemon=True
        ),
        threading.Thread(
            target=_pump, args=(proc.stderr, "err", lines), name="slmdesk-worker-err", daemon=True
        ),
    ]
    for reader in readers:
        reader.start()
    result: dict[str, Any] | None = None
    error: str | None = None
    tail: list[str] = []
    cancelled = False
    open_streams = 2
    try:
        proc.stdin.write(json.dumps(job).encode("utf-8"))
        proc.stdin.close()
    except OSError:
        pass  # the child died at once; reported below from its exit code
    try:
        while open_streams:
            if cancel is not None and cancel():
                cancelled = True
                proc.kill()
            try:
                name, line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                open_streams -= 1
                continue
            if name == "err":
                tail = [*tail[-19:], line]
                continue
            try:
                message = json.loads(line)
            except ValueError:
                tail = [*tail[-19:], line]
                continue
            event = message.get("event")
            if event == "progress" and progress is not None:
                fraction = message.get("fraction")
                kld_mean = message.get("kld_mean")
                progress(
                    Progress(
                        str(message.get("stage", stage)),
                        int(message.get("done", 0)),
                        int(message.get("total", 0)),
                        str(message.get("detail", "")),
                        float(fraction) if fraction is not None else None,
                        tuple(int(b) for b in message.get("blocks") or ()),
                        float(kld_mean) if kld_mean is not None else None,
                    )
                )
            elif event == "result":
                result = message.get("result") or {}
            elif event == "error":
                error = str(message.get("message"))
    finally:
        if proc.poll() is None and (cancelled or result is None):
            proc.kill()
        code = proc.wait()
        for reader in readers:
            reader.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    if cancelled:
        if cleanup:
            cleanup()
        raise OptimizeCancelled("Cancelled; the partial output was removed.")
    if error is not None:
        if cleanup:
            cleanup()
        raise SlmdeskError(error)
    if result is None or code != 0:
        if cleanup:
            cleanup()
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        last = next((t for t in reversed(tail) if t.strip()), "")
        hint = f" Last message: {last.strip()[:200]}" if last else ""
        raise WorkerCrashed(
            f"The optimizer process {how} before finishing; nothing was written.{hint}"
        )
    return result
