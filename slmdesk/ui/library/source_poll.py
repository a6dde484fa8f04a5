"""Notices models added, changed or removed in other apps' folders while the window is open.

Every few seconds a timer on the GUI thread starts one task-pool job that calls
`Library.sync_sources` (directory listings and a stat per model: no header is read, nothing is
written unless something changed). What changed is announced by the library itself, so the
Library page re-lists through its usual change events. A job still running when the timer fires
again is not doubled. Polling is used rather than file-system watchers: it works the same on every
OS, for network and removable drives, and for a drive that is unplugged and plugged back.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer

from slmdesk.models.library import Library
from slmdesk.ui.runtime.tasks import TaskRunner

log = logging.getLogger("slmdesk.ui.library")

POLL_INTERVAL_MS = 3000


class SourcePoller(QObject):
    """Create on the GUI thread; `stop` before the window goes away."""

    def __init__(
        self, library: Library, tasks: TaskRunner, interval_ms: int = POLL_INTERVAL_MS
    ) -> None:
        super().__init__()
        self._library = library
        self._tasks = tasks
        self._running = False
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_tick)

    def start(self) -> None:
        """Poll from now on (the first poll after one interval)."""
        self._timer.start()

    def set_interval(self, interval_ms: int) -> None:
        """Poll this often from now on."""
        self._timer.setInterval(interval_ms)

    def stop(self) -> None:
        """Stop polling (idempotent)."""
        self._timer.stop()

    def poll_now(self) -> None:
        """Poll once now, unless a poll is running."""
        self._on_tick()

    def _on_tick(self) -> None:
        if self._running:
            return
        self._running = True
        self._tasks.run(
            self._library.sync_sources, self._on_done, self._on_failed, name="library-sources"
        )

    def _on_done(self, _changes: object) -> None:
        self._running = False

    def _on_failed(self, exc: BaseException) -> None:
        self._running = False
        log.info("polling other apps' folders failed: %s", exc)
