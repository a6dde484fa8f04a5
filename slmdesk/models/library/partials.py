"""Hidden partial files for copies into the models folder, and the removal of stale ones.

A copy is written to ``.<name>.<token>.importing`` beside its target and renamed when complete, so
the library never lists half a file. While it is written, its owner holds a lock on
``<partial>.lock``: a partial whose lock can be taken belongs to a copy that was cancelled without
cleaning up or to a process that was killed, and is removed when a library starts. A partial of a
copy still running (in this process or another) is left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from filelock import FileLock, Timeout

PARTIAL_SUFFIX = ".importing"
_LOCK_SUFFIX = ".lock"

log = logging.getLogger("slmdesk.models.library")


class PartialFile:
    """A hidden, locked file that becomes ``folder / target_name`` on `commit`."""

    def __init__(self, folder: Path, target_name: str) -> None:
        self.target = folder / target_name
        token = secrets.token_hex(4)
        self.path = folder / f".{target_name}.{token}{PARTIAL_SUFFIX}"
        self.sha256: str | None = None  # set by whoever writes it, when it hashed the bytes
        self._lock = FileLock(str(self.path) + _LOCK_SUFFIX)
        # The lock comes first: a partial without a held lock counts as stale.
        self._lock.acquire()
        try:
            self.path.touch(exist_ok=False)
        except BaseException:
            self._release()
            raise

    def commit(self) -> Path:
        """Rename the finished file to its target (replacing nothing: the caller checked)."""
        os.replace(self.path, self.target)
        self._release()
        return self.target

    def discard(self) -> None:
        """Delete the partial file. Safe to call more than once."""
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._release()

    def _release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()
            with contextlib.suppress(OSError):
                Path(self._lock.lock_file).unlink()


def clean_stale_partials(folder: Path) -> list[Path]:
    """Remove the partial files in ``folder`` that no running copy owns; returns them.

    Lock files left without their partial (a process killed between the two) go too.
    """
    removed: list[Path] = []
    try:
        hidden = [p for p in folder.iterdir() if p.name.startswith(".")]
    except OSError:
        return removed
    partials = {p for p in hidden if p.name.endswith(PARTIAL_SUFFIX)}
    partials |= {
        p.with_name(p.name[: -len(_LOCK_SUFFIX)])
        for p in hidden
        if p.name.endswith(PARTIAL_SUFFIX + _LOCK_SUFFIX)
    }
    for partial in sorted(partials):
        lock = FileLock(str(partial) + _LOCK_SUFFIX, timeout=0)
        try:
            lock.acquire()
        except (Timeout, OSError):
            continue  # a copy is writing it right now
        try:
            if partial.exists():
                partial.unlink()
                removed.append(partial)
        except OSError as exc:
            log.warning("could not remove the stale partial file %s: %s", partial, exc)
        finally:
            lock.release()
            with contextlib.suppress(OSError):
                Path(lock.lock_file).unlink()
    if removed:
        log.info("removed %d stale partial file(s) from %s", len(removed), folder)
    return removed
