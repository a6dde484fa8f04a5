"""Which folder is the models folder: checking a choice, describing it, switching without moving.

The choice is kept in a small file beside the library index (``models-folder.json``, read by
`common.paths.models_dir`), not in the window's settings, so the CLI and the window agree at once.

Choosing a folder without ``--move`` does not touch a file: the models already in the old folder
stay where they are and stay listed, recorded in the index as linked in place (``managed`` false,
so removing one only forgets it unless the user asks to delete the file). New downloads, copies
and optimized models go to the new folder. `move.move_models` moves them instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import Timeout

from slmdesk.common.errors import LibraryError
from slmdesk.models.library.entry import STATUS_MISSING, ModelEntry
from slmdesk.models.library.events import UPDATED
from slmdesk.models.library.move_journal import move_lock, write_setting

if TYPE_CHECKING:
    from slmdesk.models.library.core import Library


@dataclass(frozen=True)
class FolderInfo:
    """The models folder as the CLI's ``--json`` and the Settings page show it."""

    path: Path
    free_bytes: int | None  # None when the folder cannot be asked (an unplugged drive)
    models: int  # models whose file is in this folder
    bytes: int  # their size on disk

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{path, free_bytes, models, bytes}``."""
        return {
            "path": str(self.path),
            "free_bytes": self.free_bytes,
            "models": self.models,
            "bytes": self.bytes,
        }


def free_bytes(folder: Path) -> int:
    """Free space in ``folder``'s filesystem (tests replace this to simulate a full disk)."""
    return shutil.disk_usage(folder).free


def is_within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or below it (after resolving links)."""
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def check_folder(value: str | os.PathLike[str]) -> Path:
    """A folder that can become the models folder, resolved; else one clear sentence.

    Raises:
        LibraryError: it does not exist, is not a folder, or cannot be written to.
    """
    folder = Path(value).expanduser()
    if not folder.exists():
        raise LibraryError(f"The folder {folder} does not exist; create it first.")
    if not folder.is_dir():
        raise LibraryError(f"{folder} is a file, not a folder.")
    folder = folder.resolve()
    try:  # a real write: permissions, read-only disks and full disks all show here
        handle, probe = tempfile.mkstemp(prefix=".slmdesk-write-check-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise LibraryError(f"Cannot use {folder} as the models folder: {reason}.") from None
    return folder


def check_not_nested(current: Path, target: Path) -> None:
    """Refuse a folder inside the current one, or one that holds it (models would be seen twice).

    Raises:
        LibraryError: the two folders are the same or one holds the other.
    """
    if target.resolve() == current.resolve():
        raise LibraryError(f"{target} is already the models folder.")
    if is_within(target, current):
        raise LibraryError(
            f"{target} is inside the current models folder {current}; choose a folder outside it."
        )
    if is_within(current, target):
        raise LibraryError(
            f"{target} holds the current models folder {current}; choose a folder beside it."
        )


def entries_in(library: Library, folder: Path) -> list[ModelEntry]:
    """The library's models whose file is in ``folder`` (missing files left out)."""
    return [
        e for e in library.entries() if e.status != STATUS_MISSING and is_within(e.path, folder)
    ]


def folder_info(library: Library) -> FolderInfo:
    """The current models folder, its free space and the models in it (reads the disk)."""
    folder = library.models_dir
    inside = entries_in(library, folder)
    free: int | None
    try:
        free = free_bytes(folder)
    except OSError:
        free = None
    return FolderInfo(folder, free, len(inside), sum(e.size_bytes for e in inside))


def use_folder(library: Library, target: str | os.PathLike[str]) -> FolderInfo:
    """Make ``target`` the folder for new models; the models already stored stay where they are.

    Models in the old folder are recorded as linked in place, under the index lock and before the
    setting changes, so none disappears from the list (not even a file dropped into the folder by
    hand, which was only listed, never recorded).

    Raises:
        LibraryError: the folder cannot be used (see `check_folder`, `check_not_nested`).
    """
    folder = check_folder(target)
    current = library.models_dir
    check_not_nested(current, folder)
    kept: list[str] = []
    lock = move_lock(library._shared.index)
    try:
        lock.acquire()
    except (Timeout, OSError):
        raise LibraryError("A move of the models folder is running; wait for it.") from None
    try:
        with library._update() as locked:
            for name, record in locked.models.items():
                if record.get("managed") and is_within(Path(record["path"]), current):
                    record["managed"] = False
                    kept.append(name)
            write_setting(library._shared.index, folder)
    finally:
        lock.release()
    library.follow_folder(folder)
    for name in kept:
        with contextlib.suppress(LibraryError):
            library._announce(UPDATED, library.get(name))
    return folder_info(library)
