"""Run short blocking jobs (scans, file copies, header reads, Hub queries) off the GUI thread.

Rules, as for every background operation in slmdesk:

- ``job`` runs on a worker thread of a `TaskRunner` pool. It must not touch any widget or Qt model;
  it only calls core code and returns a value (or raises).
- ``on_done(result)`` and ``on_error(exception)`` always run on the GUI thread, delivered through a
  queued connection to a relay object that lives there. They may update the UI freely.
- `TaskRunner.shutdown` waits for running jobs so no thread outlives the window (or a test).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal, Slot

log = logging.getLogger("slmdesk.ui.runtime.tasks")


class _Relay(QObject):
    """Lives on the GUI thread; receives results from workers and calls the callbacks there."""

    finished = Signal(object, object, object)  # callback, value, is_error

    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self.finished.connect(self._deliver)

    @Slot(object, object, object)
    def _deliver(self, callback: Callable[[Any], None] | None, value: Any, is_error: bool) -> None:
        if self.closed:
            return  # results that arrive after shutdown have no window left to update
        if callback is not None:
            callback(value)
        elif is_error:
            log.error("background task failed: %r", value)


class _Job(QRunnable):
    def __init__(
        self,
        relay: _Relay,
        job: Callable[[], Any],
        on_done: Callable[[Any], None] | None,
        on_error: Callable[[BaseException], None] | None,
        name: str,
    ) -> None:
        super().__init__()
        self._relay, self._job, self._on_done, self._on_error, self._name = (
            relay,
            job,
            on_done,
            on_error,
            name,
        )

    def run(self) -> None:
        QThread.currentThread().setObjectName(f"slmdesk-task-{self._name}")
        try:
            value = self._job()
        except BaseException as exc:  # delivered to the GUI thread, never lost
            if not _is_user_error(exc):
                log.exception("task %s failed", self._name)
            self._relay.finished.emit(self._on_error, exc, True)
            return
        self._relay.finished.emit(self._on_done, value, False)


def _is_user_error(exc: BaseException) -> bool:
    from slmdesk.common.errors import SlmdeskError

    return isinstance(exc, SlmdeskError)


class TaskRunner:
    """A small thread pool for the UI's blocking jobs. Create it on the GUI thread."""

    def __init__(self, max_threads: int = 4) -> None:
        self._pool = QThreadPool()
        self._pool.setMaxThreadCount(max_threads)
        self._relay = _Relay()
        self._closed = False

    def run(
        self,
        job: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "job",
    ) -> None:
        """Run ``job`` in the background; see the module docstring for where callbacks run.

        After `shutdown` new jobs are ignored: the window they would report to is gone.
        """
        if self._closed:
            log.debug("task %s ignored: the task runner is shut down", name)
            return
        self._pool.start(_Job(self._relay, job, on_done, on_error, name))

    def active(self) -> int:
        """Jobs running right now."""
        return self._pool.activeThreadCount()

    def wait(self, msecs: int = -1) -> bool:
        """Block until all jobs are done (tests and shutdown); True when they are."""
        return bool(self._pool.waitForDone(msecs))

    def shutdown(self) -> None:
        """Drop queued jobs, wait for running ones and accept no more."""
        self._closed = True
        self._relay.closed = True
        self._pool.clear()
        self._pool.waitForDone()
