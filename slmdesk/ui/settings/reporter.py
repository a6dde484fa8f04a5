"""Brings the settings store's save results from its writer thread to the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from slmdesk.common.settings import SettingsStore


class SettingsSaveReporter(QObject):
    """Re-emits each save's outcome as a signal; create it on the GUI thread.

    The store calls its listeners on its writer thread, where no widget may be touched. The
    signals below are emitted there and delivered queued to receivers on the GUI thread, so a
    failed save becomes a message in the window instead of an exception inside Qt.
    """

    save_failed = Signal(str)  # one sentence: what could not be saved, and why
    saved = Signal()

    def __init__(self, store: SettingsStore) -> None:
        super().__init__()
        self._store = store
        store.add_listener(self._on_save)

    def _on_save(self, error: str | None) -> None:
        # Runs on the store's writer thread: emit only.
        if error:
            self.save_failed.emit(error)
        else:
            self.saved.emit()

    def close(self) -> None:
        """Stop listening (the window is closing). Idempotent."""
        self._store.remove_listener(self._on_save)
