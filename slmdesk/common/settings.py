"""User settings (theme, default context, threads), kept in memory and saved in the background.

Why a service and not a read-modify-write per change: a spin box emits a change on every step,
and writing (with fsync) on each of them blocked the window. A `SettingsStore` reads the file
once, answers `get` from memory, and saves a short while after the last change (`SAVE_DELAY`) on
its own thread, so many quick changes cost one write and the caller never waits on the disk.

- Saves are atomic (temporary file + rename, `slmdesk.common.fileio`): a crash leaves the old
  file or the new one, never half of one.
- Unknown keys are kept, so an older version does not drop a newer one's settings; missing keys
  fall back to `DEFAULTS`.
- A failed save (read-only folder, full disk) never raises into the caller: it is kept as
  `SettingsStore.last_error` (one sentence) and passed to the listeners added with
  `SettingsStore.add_listener`, which run on the writer thread (a GUI forwards them to its own
  thread). The next change tries again.
- `SettingsStore.flush` writes what is pending now and waits for it: call it at shutdown.
- The writer thread (``slmdesk-settings``) exists only while a save is pending, so nothing has to
  stop it and a process that exits waits for the last save (it is not a daemon).

The module functions (`load`, `get`, `update`, `flush`) use one store per settings file, so code
that only needs a value can call them without being handed a store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slmdesk.common import paths
from slmdesk.common.fileio import atomic_write_json, read_json

log = logging.getLogger("slmdesk.settings")

DEFAULTS: dict[str, Any] = {
    "theme": "system",  # system | light | dark
    "context_length": 0,  # 0: choose from the model and this machine's memory
    "threads": 0,  # 0: physical cores
    "last_model": "",
    "default_system_prompt": "You are a helpful assistant.",
}

# Seconds after the last change before saving; a steady stream of changes still saves at least
# every `MAX_SAVE_DELAY` seconds.
SAVE_DELAY = 0.3
MAX_SAVE_DELAY = 2.0
WRITER_THREAD = "slmdesk-settings"

# Called with None after a successful save, or with a one-sentence message after a failed one.
SaveListener = Callable[[str | None], None]


class SettingsStore:
    """One settings file, held in memory and saved with a debounce on a background thread.

    Thread-safe: any thread may read or change settings.
    """

    def __init__(
        self,
        path: Path | None = None,
        delay: float = SAVE_DELAY,
        max_delay: float = MAX_SAVE_DELAY,
    ) -> None:
        """Create the store; the file is read on first use.

        Args:
            path: the JSON file (default: the user's settings file).
            delay: seconds to wait after a change for more changes before saving.
            max_delay: longest a change may wait while changes keep coming.
        """
        self.path = path if path is not None else paths.settings_path()
        self.delay = delay
        self.max_delay = max(delay, max_delay)
        self.last_error: str | None = None
        self.saves = 0  # completed writes, for tests and diagnostics
        self._cond = threading.Condition()
        self._stored: dict[str, Any] | None = None  # the file's keys, changes applied
        self._version = 0  # bumped by every change
        self._saved_version = 0  # the version last written (or last attempted)
        self._first_change = 0.0
        self._last_change = 0.0
        self._flush_requested = False
        self._writer: threading.Thread | None = None
        self._listeners: list[SaveListener] = []

    # -- reading ---------------------------------------------------------------------------------

    def _loaded(self) -> dict[str, Any]:
        """The stored keys (read from disk the first time). Call with the lock held."""
        if self._stored is None:
            stored = read_json(self.path, {})
            self._stored = dict(stored) if isinstance(stored, dict) else {}
        return self._stored

    def load(self) -> dict[str, Any]:
        """All settings, defaults filled in (a copy: changing it changes nothing)."""
        with self._cond:
            return {**DEFAULTS, **self._loaded()}

    def get(self, key: str) -> Any:
        """One setting (its default when never set)."""
        with self._cond:
            return self._loaded().get(key, DEFAULTS.get(key))

    # -- changing and saving ---------------------------------------------------------------------

    def update(self, **values: Any) -> dict[str, Any]:
        """Change some settings now and save them shortly; returns all settings.

        Never blocks on the disk: the save happens on the writer thread.
        """
        with self._cond:
            stored = self._loaded()
            if all(key in stored and stored[key] == value for key, value in values.items()):
                return {**DEFAULTS, **stored}
            stored.update(values)
            now = time.monotonic()
            if self._saved_version == self._version:
                self._first_change = now
            self._last_change = now
            self._version += 1
            self._ensure_writer()
            self._cond.notify_all()
            return {**DEFAULTS, **stored}

    def pending(self) -> bool:
        """Whether a change is waiting to be saved."""
        with self._cond:
            return self._saved_version != self._version

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Save pending changes now and wait for the save (done on the writer thread).

        Returns:
            True when nothing is left unsaved (a failed save counts as done: see `last_error`),
            False if ``timeout`` seconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._saved_version == self._version:
                return True
            self._flush_requested = True
            self._ensure_writer()
            self._cond.notify_all()
            while self._saved_version != self._version:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def add_listener(self, listener: SaveListener) -> None:
        """Call ``listener`` (on the writer thread) after each save: None or the error message."""
        with self._cond:
            self._listeners.append(listener)

    def remove_listener(self, listener: SaveListener) -> None:
        """Stop calling ``listener`` (no error when it was not added)."""
        with self._cond:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _ensure_writer(self) -> None:
        """Start the writer thread unless one is running. Call with the lock held."""
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name=WRITER_THREAD)
            self._writer.start()

    def _due(self) -> float:
        """Seconds until the pending change should be saved. Call with the lock held."""
        if self._flush_requested:
            return 0.0
        due = min(self._last_change + self.delay, self._first_change + self.max_delay)
        return due - time.monotonic()

    def _write_loop(self) -> None:
        """The writer thread: save while changes are pending, then end."""
        while True:
            with self._cond:
                while True:
                    if self._saved_version == self._version:
                        self._writer = None  # a later change starts a new writer
                        self._cond.notify_all()
                        return
                    wait = self._due()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                snapshot = dict(self._loaded())
                version = self._version
                self._flush_requested = False
            error = self._write(snapshot)
            with self._cond:
                self._saved_version = version
                self.last_error = error
                if error is None:
                    self.saves += 1
                listeners = list(self._listeners)
                self._cond.notify_all()
            for listener in listeners:
                try:
                    listener(error)
                except Exception:  # a broken listener must not stop the saves
                    log.exception("settings listener failed")

    def _write(self, snapshot: dict[str, Any]) -> str | None:
        """Write the file atomically; returns None or a one-sentence error message."""
        try:
            atomic_write_json(self.path, snapshot)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            log.warning("settings not saved to %s: %s", self.path, exc)
            return f"Settings could not be saved to {self.path}: {reason}."
        return None


_stores: dict[Path, SettingsStore] = {}
_stores_lock = threading.Lock()


def store() -> SettingsStore:
    """The store of the current settings file (one per file, so ``SLMDESK_HOME`` re-roots it)."""
    path = paths.settings_path()
    with _stores_lock:
        current = _stores.get(path)
        if current is None:
            current = _stores[path] = SettingsStore(path)
        return current


def load() -> dict[str, Any]:
    """All settings, defaults filled in."""
    return store().load()


def get(key: str) -> Any:
    """One setting."""
    return store().get(key)


def update(**values: Any) -> dict[str, Any]:
    """Change some settings; they are saved in the background shortly. Returns all settings."""
    return store().update(**values)


def flush(timeout: float | None = 10.0) -> bool:
    """Save pending changes now and wait (see `SettingsStore.flush`)."""
    return store().flush(timeout)
