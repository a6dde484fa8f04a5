"""File-level care of the conversation database: create it whole, back it up, set it aside.

These are the steps that must never lose a user's chats:

- A new database is built under a temporary name and only then linked into place, so a file at
  the real path is always a complete database. That is what lets the store treat a 0-byte file
  as damage (a truncated database) rather than as "new".
- Before a schema migration, a consistent copy is taken with SQLite's backup API (to a temporary
  name, then renamed), so a failed or regretted upgrade can be undone by hand.
- A damaged database is renamed aside with a timestamp, together with its ``-wal``/``-shm``/
  ``-journal`` companions, never deleted. The companions move first: a stale write-ahead log left
  beside a new database would be replayed into it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

COMPANIONS = ("-wal", "-shm", "-journal")


def _companion(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _free_name(path: Path, label: str) -> Path:
    """``<stem>-<label>-<timestamp><suffix>`` beside ``path``, numbered if that is taken."""
    stamp = _stamp()
    for n in itertools.count():
        extra = f"-{n}" if n else ""
        candidate = path.with_name(f"{path.stem}-{label}-{stamp}{extra}{path.suffix}")
        taken = [candidate, *(_companion(candidate, s) for s in COMPANIONS)]
        if not any(p.exists() for p in taken):
            return candidate
    raise AssertionError("unreachable")


def _remove_quietly(path: Path) -> None:
    for p in (path, *(_companion(path, s) for s in COMPANIONS)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def create_database(path: Path, initialise: Callable[[sqlite3.Connection], None]) -> None:
    """Create a complete database at ``path`` unless one appears there meanwhile.

    Args:
        path: where the database goes (its folder must exist).
        initialise: fills the new database (pragmas, schema) on an autocommit connection.

    Raises:
        sqlite3.Error, OSError: the new file could not be written (the caller translates).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            initialise(db)
        finally:
            db.close()  # checkpoints and removes the temporary -wal
        try:
            os.link(tmp, path)  # fails if another process created it first: keep theirs
        except FileExistsError:
            pass
        except OSError:
            # No hard links on this file system: a rename is the next best publish step.
            if not path.exists():
                os.replace(tmp, path)
    finally:
        _remove_quietly(tmp)


def backup_copy(db: sqlite3.Connection, path: Path, version: int) -> Path:
    """A consistent copy of the open database ``db`` (stored at ``path``) before a migration.

    Returns:
        The backup file: ``<stem>-backup-v<version>-<timestamp><suffix>`` beside ``path``.

    Raises:
        sqlite3.Error, OSError: the copy could not be written (nothing is left behind).
    """
    target = _free_name(path, f"backup-v{version}")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".backup", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        copy = sqlite3.connect(tmp)
        try:
            db.backup(copy)
        finally:
            copy.close()
        os.replace(tmp, target)
    finally:
        _remove_quietly(tmp)
    return target


def set_aside(path: Path, label: str = "damaged") -> Path:
    """Rename the database at ``path`` (and its companions) to a free timestamped name.

    Returns:
        Where the database file went.

    Raises:
        OSError: it could not be moved (the companions already moved are moved back).
    """
    target = _free_name(path, label)
    moved: list[tuple[Path, Path]] = []
    try:
        for suffix in COMPANIONS:
            source = _companion(path, suffix)
            if source.exists():
                os.rename(source, _companion(target, suffix))
                moved.append((source, _companion(target, suffix)))
        os.rename(path, target)
    except OSError:
        for source, destination in reversed(moved):
            with contextlib.suppress(OSError):
                os.rename(destination, source)
        raise
    return target
