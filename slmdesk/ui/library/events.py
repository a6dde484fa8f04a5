"""The library's change events as a Qt signal on the GUI thread.

`slmdesk.models.library` calls its listeners on whatever thread made the change (a task-pool job,
a download thread, the optimizer's thread). This bridge lives on the GUI thread and re-emits each
change as `LibraryEvents.changed`; Qt queues the signal across threads, so connected slots of
GUI-thread objects run on the GUI thread and may update widgets.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from slmdesk.models.library import Library, LibraryChange


class LibraryEvents(QObject):
    """Create on the GUI thread; call `close` before the library outlives the window."""

    changed = Signal(object)  # LibraryChange

    def __init__(self, library: Library) -> None:
        super().__init__()
        self._unsubscribe = library.subscribe(self._relay)

    def _relay(self, change: LibraryChange) -> None:
        self.changed.emit(change)  # any thread: emitting is thread-safe, delivery is queued

    def close(self) -> None:
        """Stop listening (idempotent): nothing is delivered after the window is gone."""
        self._unsubscribe()
