"""The library index file and the one lock around every change to it.

The window's threads and any number of ``slmdesk`` processes may change the library at once. Each
change is a read-modify-write of the whole index under one lock: a thread lock, so the threads of
this process queue cheaply, in front of a file lock (``library.json.lock``), so processes queue
too. Reads take no lock: the index is only ever replaced whole (write then rename), so a reader
sees one complete version.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

from slmdesk.common.fileio import atomic_write_json

INDEX_VERSION = 1

log = logging.getLogger("slmdesk.models.library")


class LibraryIndex:
    """One index file: lock-free snapshots, and locked updates written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._file_lock = FileLock(str(path.with_name(path.name + ".lock")))

    def read(self) -> dict[str, Any]:
        """A snapshot of the index (a private copy: change it freely, it is never saved)."""
        data, _damaged = self._load()
        return data

    @contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        """Hold the lock, yield the current index, then save it if it changed.

        An exception inside the block leaves the index as it was.
        """
        with self._thread_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._file_lock:
                data, damaged = self._load()
                if damaged:
                    self._set_aside()
                before = _canonical(data)
                yield data
                if damaged or _canonical(data) != before:
                    atomic_write_json(self.path, data)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock across several `update` calls, so other writers see none or all of them."""
        with self._thread_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._file_lock:
                yield

    def _load(self) -> tuple[dict[str, Any], bool]:
        """The index, and whether the file exists but could not be understood."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError):
            return _empty(), True
        if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
            return _empty(), True
        data.setdefault("version", INDEX_VERSION)
        data.setdefault("models", {})
        data["models"] = {
            name: record
            for name, record in data["models"].items()
            if isinstance(record, dict) and isinstance(record.get("path"), str)
        }
        return data, False

    def _set_aside(self) -> None:
        """Keep a damaged index for a person to look at instead of overwriting it silently."""
        kept = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
        try:
            os.replace(self.path, kept)
            log.warning("the library index was damaged; kept it as %s and started a new one", kept)
        except OSError as exc:
            log.warning("the library index is damaged and could not be set aside: %s", exc)


def _empty() -> dict[str, Any]:
    return {"version": INDEX_VERSION, "models": {}}


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, default=str)
