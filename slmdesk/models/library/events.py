"""Change events of the library: a small observer API with no Qt in it.

Every operation that changes the library (import, link, add, remove, rename) announces the changed
entry to the listeners of its index, in this process. Listeners are called on the thread that made
the change (a task-pool thread, a download thread, the optimizer's thread), after the index lock is
released. A listener must be quick and must not touch a GUI: the window adapts these events to a
Qt signal delivered on its GUI thread (`slmdesk.ui.library.events`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from slmdesk.models.library.entry import ModelEntry

log = logging.getLogger("slmdesk.models.library")

ADDED = "added"
UPDATED = "updated"
REMOVED = "removed"
RENAMED = "renamed"


@dataclass(frozen=True)
class LibraryChange:
    """One change: what happened to which entry.

    Attributes:
        kind: ``added``, ``updated`` (new provenance or facts), ``removed`` or ``renamed``.
        entry: the entry as it is now (as it was, for ``removed``).
        old_name: the name before a rename.
    """

    kind: str
    entry: ModelEntry
    old_name: str | None = None

    @property
    def name(self) -> str:
        """The entry's (new) name."""
        return self.entry.name


Listener = Callable[[LibraryChange], None]


class ChangeNotifier:
    """Listeners of one library index; safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every change from now on; returns the function that stops it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def emit(self, change: LibraryChange) -> None:
        """Tell every listener; a failing listener is logged and does not stop the others."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(change)
            except Exception:  # a listener's bug must not undo a change that has happened
                log.exception("a library listener failed on %s", change)
