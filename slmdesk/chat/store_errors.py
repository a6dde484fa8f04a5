"""What went wrong with the conversation database, in one sentence a person can act on.

SQLite reports faults as ``sqlite3.Error`` with a result code. Left raw, they escape as
tracebacks (or, on a worker thread, leave the window waiting forever). `translate` turns each
into a `ConversationError` subclass, so callers can catch one type and show its message, and
tests (or the UI) can tell the cases apart: read-only, disk full, damaged, locked.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

from slmdesk.common.errors import SlmdeskError

# Primary SQLite result codes (the low byte of an extended code).
SQLITE_PERM = 3
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26

# Below this much free space an unspecific I/O error is reported as a full disk: SQLite maps
# ENOSPC to SQLITE_FULL on plain writes, but some paths (syncs, the shared-memory index) only
# say "disk I/O error".
_NEARLY_FULL_BYTES = 256 * 1024


class ConversationError(SlmdeskError):
    """The conversation store cannot do what was asked."""


class DatabaseReadOnlyError(ConversationError):
    """The database file or its folder cannot be written."""


class DatabaseFullError(ConversationError):
    """The disk (or the database's size limit) is full."""


class DatabaseDamagedError(ConversationError):
    """The database file is corrupt or not a database at all."""


class DatabaseLockedError(ConversationError):
    """Another connection held the write lock for longer than the busy timeout."""


def result_code(exc: sqlite3.Error) -> int:
    """The primary SQLite result code of ``exc`` (0 when SQLite gave none)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return int(code) & 0xFF if isinstance(code, int) else 0


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says the file itself is broken (as opposed to busy, full, read-only)."""
    return result_code(exc) in (SQLITE_CORRUPT, SQLITE_NOTADB)


def _disk_nearly_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < _NEARLY_FULL_BYTES
    except OSError:
        return False


def full_error(path: Path) -> DatabaseFullError:
    """The one message for a full disk, whichever layer noticed it."""
    return DatabaseFullError(
        f"The disk is full, so the conversation database {path} cannot be saved: "
        "free some space and try again."
    )


def translate(exc: sqlite3.Error, path: Path, busy_timeout: float) -> ConversationError:
    """The `ConversationError` for a SQLite failure on the database at ``path``.

    Args:
        exc: what SQLite raised.
        path: the database file (named in the message so the user can find it).
        busy_timeout: seconds the connection waits for a lock, quoted when it gave up.
    """
    code = result_code(exc)
    if code == SQLITE_FULL or (code == SQLITE_IOERR and _disk_nearly_full(path)):
        return full_error(path)
    if code in (SQLITE_READONLY, SQLITE_PERM):
        return DatabaseReadOnlyError(
            f"The conversation database {path} is read-only, so chats cannot be saved: "
            "make the file and its folder writable, then try again."
        )
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return DatabaseDamagedError(
            f"The conversation database {path} is damaged ({exc}); restart slmdesk to set it "
            "aside and start a new one."
        )
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return DatabaseLockedError(
            f"The conversation database {path} is locked by another program (waited "
            f"{busy_timeout:g} s): close any other copy of slmdesk using it and try again."
        )
    if code == SQLITE_CANTOPEN:
        return ConversationError(
            f"The conversation database {path} cannot be opened: check that its folder exists "
            "and that you may read and write it."
        )
    if code == SQLITE_IOERR:
        return ConversationError(
            f"Reading or writing the conversation database {path} failed ({exc}): check the disk."
        )
    return ConversationError(f"The conversation database {path} failed: {exc}.")


def translate_os_error(exc: OSError, path: Path) -> ConversationError:
    """The `ConversationError` for a file operation (backup, move aside, create) that failed."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return full_error(path)
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return DatabaseReadOnlyError(
            f"The folder of the conversation database {path} is read-only, so chats cannot be "
            "saved: make it writable, then try again."
        )
    return ConversationError(
        f"The conversation database {path} cannot be used: {exc.strerror or exc}."
    )
