"""Run heavy llama.cpp work (quantize, evaluate, plan) in a child process.

Why a child: llama.cpp's quantizer cannot be interrupted, and a native crash in it would take
the window down with it. In a child, Cancel is ``kill()`` and a crash is an exit code.

Protocol: the parent starts ``python -m slmdesk.optimize.child.main`` (see `worker_command`) and
writes jobs on its stdin, one JSON line each, the next only after the previous one's answer. For
each job the child writes JSON lines on stdout — ``{"event": "progress", ...}``, then
``{"event": "result", ...}`` or ``{"event": "error", "message": ...}`` — and llama.cpp writes its
log on stderr (kept for the crash message); a conversion's progress, weighted by tensor size,
comes from the child's own reading of that log (`slmdesk.optimize.child.quantize_progress`). The
child exits when its stdin closes.

One child per run: inside ``with worker_session():`` every `run_worker` call of the same thread
goes to one child (`WorkerSession`), so a run pays Python's and llama.cpp's start-up once, not
once per step. Outside a session each call starts and ends its own child. A cancel or a crash ends
the session's child; the next job starts a new one.

Threads: `run_worker` blocks the calling thread; a child has two reader threads named
``slmdesk-worker-out`` / ``slmdesk-worker-err``, joined when it ends. Callbacks run on the calling
thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
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


def _progress_from(message: dict[str, Any], stage: str) -> Progress:
    fraction = message.get("fraction")
    kld_mean = message.get("kld_mean")
    return Progress(
        str(message.get("stage", stage)),
        int(message.get("done", 0)),
        int(message.get("total", 0)),
        str(message.get("detail", "")),
        float(fraction) if fraction is not None else None,
        tuple(int(b) for b in message.get("blocks") or ()),
        float(kld_mean) if kld_mean is not None else None,
    )


class WorkerSession:
    """One optimizer child that runs jobs one after another (see the module docstring)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self._readers: list[threading.Thread] = []
        self._open_streams = 0
        self.started = 0  # children started so far (a test and the benchmark look at it)

    @property
    def pid(self) -> int | None:
        """The running child's process id, if one runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        proc = subprocess.Popen(
            worker_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout and proc.stderr
        self._lines = queue.Queue()
        self._readers = [
            threading.Thread(
                target=_pump,
                args=(stream, name, self._lines),
                name=f"slmdesk-worker-{name}",
                daemon=True,
            )
            for stream, name in ((proc.stdout, "out"), (proc.stderr, "err"))
        ]
        for reader in self._readers:
            reader.start()
        self._open_streams = 2
        self._proc = proc
        self.started += 1
        return proc

    def _end(self, kill: bool) -> int:
        """Stop the child (closing its stdin lets it exit by itself) and return its exit code."""
        proc = self._proc
        if proc is None:
            return 0
        self._proc = None
        if kill and proc.poll() is None:
            proc.kill()
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            code = proc.wait(timeout=None if kill else 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        assert proc.stdout and proc.stderr
        proc.stdout.close()
        proc.stderr.close()
        return code

    def close(self) -> None:
        """End the child (it finishes no job: call between jobs)."""
        self._end(kill=False)

    def run(
        self,
        job: dict[str, Any],
        progress: ProgressCallback | None = None,
        cancel: CancelCheck | None = None,
        stage: str = "working",
        cleanup: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Run one job in this session's child (started when none runs); see `run_worker`."""
        proc = self._proc if self._proc is not None and self._proc.poll() is None else None
        if proc is None:
            if self._proc is not None:
                self._end(kill=True)
            proc = self._start()
        assert proc.stdin
        result: dict[str, Any] | None = None
        error: str | None = None
        tail: list[str] = []
        cancelled = False
        try:
            proc.stdin.write(json.dumps(job).encode("utf-8") + b"\n")
            proc.stdin.flush()
        except OSError:
            pass  # the child died; reported below from its exit code
        try:
            while self._open_streams and result is None and error is None:
                if cancel is not None and cancel():
                    cancelled = True
                    proc.kill()
                try:
                    name, line = self._lines.get(timeout=0.1)
                except queue.Empty:
                    continue
                if line is None:
                    self._open_streams -= 1
                    if name == "out":
                        break  # no answer can come any more
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
                    progress(_progress_from(message, stage))
                elif event == "result":
                    result = message.get("result") or {}
                elif event == "error":
                    error = str(message.get("message"))
        except BaseException:
            self._end(kill=True)  # an exception in a callback: the job's outcome is unknown
            if cleanup:
                cleanup()
            raise
        if cancelled:
            self._end(kill=True)
            if cleanup:
                cleanup()
            raise OptimizeCancelled("Cancelled; the partial output was removed.")
        if error is not None:
            if cleanup:
                cleanup()
            raise SlmdeskError(error)
        if result is None:
            code = self._end(kill=True)
            if cleanup:
                cleanup()
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            last = next((t for t in reversed(tail) if t.strip()), "")
            hint = f" Last message: {last.strip()[:200]}" if last else ""
            raise WorkerCrashed(
                f"The optimizer process {how} before finishing; nothing was written.{hint}"
            )
        return result


_local = threading.local()


def active_session() -> WorkerSession | None:
    """The session `run_worker` uses on this thread, if one is open."""
    return getattr(_local, "session", None)


@contextlib.contextmanager
def worker_session() -> Iterator[WorkerSession]:
    """Send this thread's `run_worker` jobs to one child until the block ends (nested: the
    outer session is kept)."""
    outer = active_session()
    if outer is not None:
        yield outer
        return
    session = WorkerSession()
    _local.session = session
    try:
        yield session
    finally:
        _local.session = None
        session.close()


def run_worker(
    job: dict[str, Any],
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    stage: str = "working",
    cleanup: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run ``job`` in a child process and return its result.

    Inside `worker_session` the job goes to the session's child; otherwise a child is started
    for this job alone.

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
    session = active_session()
    if session is not None:
        return session.run(job, progress, cancel, stage, cleanup)
    single = WorkerSession()
    try:
        return single.run(job, progress, cancel, stage, cleanup)
    finally:
        single.close()
