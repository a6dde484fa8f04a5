"""Same bytes, same model: the one duplicate rule of imports and downloads, and its hashes.

Two files hold the same model when they have the same size and the same SHA-256 (of the first
file, for split models). A download knows its file's SHA-256 before the first byte (the Hub's LFS
oid); an import by copy learns it while copying; a file already in the library is hashed at most
once per version of the file (its stamp: size and modification time) and the hash is kept in the
index. Hashing reads the whole file, so it only happens when the sizes are equal, and never on a
GUI thread.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmdesk.common.errors import LibraryError

HASH_CHUNK = 8 << 20

# [total bytes, newest modification time] of a model's files, as `facts.file_stamp` gives it.
Stamp = list[float]


@dataclass(frozen=True)
class Content:
    """What is known about a model's bytes: total size and, when known, the first file's SHA-256."""

    size: int
    sha256: str | None = None


def same_content(a: Content, b: Content) -> bool:
    """The duplicate rule: equal sizes and equal, known SHA-256 hashes."""
    return (
        a.size == b.size
        and a.sha256 is not None
        and b.sha256 is not None
        and a.sha256.lower() == b.sha256.lower()
    )


def worth_hashing(a: Content, b: Content) -> bool:
    """Whether hashing the unknown side could make the rule say "same" (sizes must be equal)."""
    return a.size == b.size and (a.sha256 is None or b.sha256 is None)


def duplicate_message(name: str, removed_copy: bool = False) -> str:
    """The one sentence for a model whose bytes are already in the library."""
    tail = "the downloaded copy was removed" if removed_copy else "no second copy was made"
    return f"This model is already in the library as {name!r} (same contents); {tail}."


class DuplicateModelError(LibraryError):
    """The bytes of a model being added are already in the library under another entry.

    Attributes:
        name: the library name of the entry that holds them.
        path: that entry's file.
    """

    def __init__(self, name: str, path: Path, removed_copy: bool = False) -> None:
        super().__init__(duplicate_message(name, removed_copy))
        self.name = name
        self.path = path


def sha256_of_file(path: Path, cancel: Callable[[], bool] | None = None) -> str:
    """The SHA-256 of one file, read in 8 MiB chunks.

    Raises:
        OSError: the file cannot be read.
        LibraryError: ``cancel`` returned True.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_CHUNK):
            if cancel is not None and cancel():
                raise LibraryError("Hashing was cancelled.")
            digest.update(block)
    return digest.hexdigest()


def stored_sha256(record: dict[str, Any], stamp: Stamp | None) -> str | None:
    """The hash kept in an index record, if it was taken of the file as it is now."""
    kept = record.get("sha256")
    if stamp is None or not isinstance(kept, dict) or kept.get("stamp") != stamp:
        return None
    value = kept.get("value")
    return value if isinstance(value, str) and len(value) == 64 else None


def store_sha256(record: dict[str, Any], stamp: Stamp, value: str) -> None:
    """Keep a hash in an index record, with the stamp of the file it was taken of."""
    record["sha256"] = {"stamp": list(stamp), "value": value.lower()}


class HashCache:
    """Hashes computed in this process, by path and stamp, until a change stores them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hashes: dict[str, tuple[Stamp, str]] = {}

    def get(self, path: Path, stamp: Stamp) -> str | None:
        """The hash of ``path`` taken at ``stamp``, if known."""
        with self._lock:
            found = self._hashes.get(str(path))
        return found[1] if found is not None and found[0] == stamp else None

    def put(self, path: Path, stamp: Stamp, value: str) -> None:
        """Remember a hash."""
        with self._lock:
            self._hashes[str(path)] = (list(stamp), value.lower())

    def items(self) -> list[tuple[str, Stamp, str]]:
        """A snapshot of every hash remembered."""
        with self._lock:
            return [(path, stamp, value) for path, (stamp, value) in self._hashes.items()]
