"""Run one long optimize job (importance measurement or the whole pipeline) off the GUI thread.

The job runs on a plain Python thread named ``slmdesk-optimize``; it calls core code that blocks
(``optimize.pipeline``), which itself runs the heavy work in child processes. The job must not touch
widgets. Progress, the result and errors cross to the GUI thread through queued signals of a
`JobRunner` that lives there. Cancel is a `threading.Event` the core polls about ten times a
second: the core kills its child and removes partial files, then raises `OptimizeCancelled`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from slmdesk.optimize.worker_process import Progress

log = logging.getLogger("slmdesk.ui.optimize")

THREAD_NAME = "slmdesk-optimize"
# At most this many progress updates a second reach the GUI (stage changes always do).
PROGRESS_INTERVAL = 1 / 20

Job = Callable[[Callable[[Progress], None], Callable[[], bool]], Any]


class JobRunner(QObject):
    """One background job at a time; create on the GUI thread."""

    progress = Signal(object)  # Progress
    finished = Signal(object)  # the job's return value
    failed = Signal(object)  # the exception (SlmdeskError for user errors and cancels)

    def __init__(self) -> None:
        super().__init__()
        self._threads: list[threading.Thread] = []
        self._cancel = threading.Event()
        self._active = False  # cleared by the job's thread just before it reports its end
        self._closed = False

    @property
    def running(self) -> bool:
        """Whether a job is in progress (False once its result or error is on its way)."""
        return self._active

    def start(self, job: Job) -> None:
        """Run ``job(progress, cancel)`` on the ``slmdesk-optimize`` thread."""
        if self.running:
            raise RuntimeError("an optimize job is already running")
        if self._closed:
            return
        self._cancel = threading.Event()
        cancel = self._cancel
        thread = threading.Thread(
            target=self._run, args=(job, cancel), name=THREAD_NAME, daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        self._active = True
        thread.start()

    def _run(self, job: Job, cancel: threading.Event) -> None:
        last = 0.0
        last_stage = ""

        def report(p: Progress) -> None:
            nonlocal last, last_stage
            now = time.monotonic()
            if p.stage != last_stage or p.done >= p.total or now - last >= PROGRESS_INTERVAL:
                last, last_stage = now, p.stage
                self.progress.emit(p)

        try:
            value = job(report, cancel.is_set)
        except BaseException as exc:  # delivered to the GUI thread, never lost
            from slmdesk.common.errors import SlmdeskError

            if not isinstance(exc, SlmdeskError):
                log.exception("optimize job failed")
            self._active = False
            self.failed.emit(exc)
            return
        self._active = False
        self.finished.emit(value)

    def cancel(self) -> None:
        """Ask the running job to stop (it reports `failed` with `OptimizeCancelled`)."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the jobs' threads end (tests and shutdown); True when they have."""
        for thread in self._threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel and join: the thread does not outlive the window. Idempotent."""
        self._closed = True
        self._cancel.set()
        if not self.wait(timeout):
            log.error("the optimize thread did not stop in time")
