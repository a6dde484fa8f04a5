"""Header facts of library files, read so that one damaged file can never break a listing.

A file can pass the GGUF reader's structural checks and still carry nonsense in its metadata (a
block count stored as text, say); turning that into the facts a row shows then raises. Every such
failure becomes a damaged entry with a one-line reason here, instead of an exception that would
take down ``models list``, ``models remove`` and chat for every other model too.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmdesk.common.errors import InvalidModelError
from slmdesk.models.gguf_info import GGUFInfo, read_gguf_info, split_parts
from slmdesk.models.library.entry import STATUS_INVALID, STATUS_MISSING, STATUS_OK

log = logging.getLogger("slmdesk.models.library")

# [total bytes, newest modification time] of all parts: cached facts are valid while it holds.
Stamp = list[float]


@dataclass(frozen=True)
class Facts:
    """What a listing shows about one file: its state, why it is not usable, its header facts."""

    status: str
    error: str | None
    facts: dict[str, Any]
    stamp: Stamp | None = None

    def as_cache(self) -> dict[str, Any]:
        """The form stored in the index's per-model ``cache`` field."""
        return {
            "stamp": self.stamp,
            "status": self.status,
            "error": self.error,
            "facts": self.facts,
        }

    @classmethod
    def from_cache(cls, cache: dict[str, Any]) -> Facts | None:
        """The facts stored by `as_cache`; None when the stored form is not usable."""
        facts, status, error = (
            cache.get("facts"),
            cache.get("status", STATUS_OK),
            cache.get("error"),
        )
        if not isinstance(facts, dict) or status not in (STATUS_OK, STATUS_INVALID):
            return None
        return cls(status, error if isinstance(error, str) else None, facts, cache.get("stamp"))


def file_stamp(path: Path) -> Stamp:
    """The stamp of a model file (all parts of a split model).

    Raises:
        OSError: a part is missing or cannot be read.
    """
    stats = [p.stat() for p in split_parts(path)]
    return [sum(s.st_size for s in stats), max(s.st_mtime for s in stats)]


def summarize(info: GGUFInfo) -> dict[str, Any]:
    """The facts of a header that was read, or a clear error when its metadata is nonsense.

    Raises:
        InvalidModelError: a metadata value has the wrong type or shape.
    """
    try:
        return info.summary()
    except Exception as exc:  # any failure here comes from the file's values, not from slmdesk
        raise InvalidModelError(
            f"{info.path.name} has damaged metadata: {_one_line(exc)}."
        ) from None


def read_facts(path: Path, stamp: Stamp) -> Facts:
    """Read a file's header facts; a file that cannot be used gives a damaged entry, never raises."""
    try:
        facts = summarize(read_gguf_info(path))
    except InvalidModelError as exc:
        return Facts(STATUS_INVALID, str(exc), {"size_bytes": int(stamp[0])}, stamp)
    except Exception as exc:  # a reader bug must cost one row, not the whole library
        log.exception("reading %s failed", path)
        reason = f"{path.name} cannot be read: {_one_line(exc)}."
        return Facts(STATUS_INVALID, reason, {"size_bytes": int(stamp[0])}, stamp)
    return Facts(STATUS_OK, None, facts, stamp)


def facts_of_info(info: GGUFInfo, facts: dict[str, Any]) -> Facts | None:
    """Facts for a header just read (so nothing reads it twice); None if the file vanished."""
    try:
        stamp = file_stamp(info.split_files[0] if info.split_files else info.path)
    except OSError:
        return None
    return Facts(STATUS_OK, None, facts, stamp)


def missing_or_unreadable(path: Path) -> tuple[Stamp, Facts | None]:
    """The file's stamp, or (an empty stamp and) the state of a file that is gone or unreadable."""
    try:
        return file_stamp(path), None
    except FileNotFoundError:
        reason = "The file is no longer there (moved or deleted outside slmdesk)."
        return [], Facts(STATUS_MISSING, reason, {})
    except OSError as exc:
        return [], Facts(STATUS_INVALID, f"The file cannot be read: {exc.strerror or exc}.", {})


class FactsCache:
    """Facts read by listings, kept in memory: listing never writes the index.

    Shared by every `Library` on one index in this process; the operations that change the index
    copy fresh entries into it while they hold its lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._facts: dict[str, Facts] = {}

    def get(self, path: Path, stamp: Stamp) -> Facts | None:
        """Facts for ``path`` read at ``stamp``, if known."""
        with self._lock:
            found = self._facts.get(str(path))
        return found if found is not None and found.stamp == stamp else None

    def put(self, path: Path, facts: Facts) -> None:
        """Remember facts read for ``path``."""
        with self._lock:
            self._facts[str(path)] = facts

    def items(self) -> list[tuple[str, Facts]]:
        """A snapshot of everything remembered."""
        with self._lock:
            return list(self._facts.items())


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.rstrip(".")
