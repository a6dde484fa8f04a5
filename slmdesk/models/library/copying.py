"""Copying a model into the models folder: cancellable, and never half a file in the library.

The bytes go to hidden partial files (`partials`) without the index lock held, since a copy can
take minutes; the caller then renames them into place while it holds the lock and records the
model, so other writers never see a copied file without its record.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from slmdesk.common.errors import LibraryError
from slmdesk.models.library.partials import PartialFile

COPY_CHUNK = 8 << 20

Progress = Callable[[int, int], None]
CancelCheck = Callable[[], bool]


class ImportCancelled(LibraryError):
    """An import was cancelled; nothing was added and no partial file is left."""


def _check_cancel(cancel: CancelCheck | None) -> None:
    if cancel is not None and cancel():
        raise ImportCancelled("The import was cancelled; nothing was added.")


def copy_to_partials(
    parts: list[Path],
    folder: Path,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> list[PartialFile]:
    """Copy every part of a model to a hidden partial file in ``folder``.

    Args:
        parts: the model's files (one, or every part of a split model).
        folder: the models folder.
        progress: called with (bytes copied, total bytes) after each chunk.
        cancel: asked before each chunk and once more at the end.

    Returns:
        The finished partial files, still hidden: `commit_partials` or discard them. Each knows
        the SHA-256 of its bytes (``sha256``), taken while copying, so nothing reads them again.

    Raises:
        ImportCancelled: ``cancel`` said so; the partial files are already removed.
        LibraryError: no room, a name taken, or a read/write error; nothing is left behind.
    """
    total = sum(p.stat().st_size for p in parts)
    free = shutil.disk_usage(folder).free
    if total > free:
        raise LibraryError(
            f"Not enough disk space to copy this model: it needs {total / 1e9:.2f} GB and "
            f"{free / 1e9:.2f} GB are free."
        )
    for part in parts:
        if (folder / part.name).exists():
            raise LibraryError(
                f"A different file named {part.name} is already in the models folder."
            )
    done = 0
    partials: list[PartialFile] = []
    try:
        for part in parts:
            partial = PartialFile(folder, part.name)
            partials.append(partial)
            digest = hashlib.sha256()
            with open(part, "rb") as source, open(partial.path, "wb") as copy:
                while True:
                    _check_cancel(cancel)
                    chunk = source.read(COPY_CHUNK)
                    if not chunk:
                        break
                    copy.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
                copy.flush()
                os.fsync(copy.fileno())
            partial.sha256 = digest.hexdigest()
        _check_cancel(cancel)
    except OSError as exc:
        for partial in partials:
            partial.discard()
        raise LibraryError(f"Copying the model failed: {exc.strerror or exc}.") from None
    except BaseException:
        for partial in partials:
            partial.discard()
        raise
    return partials


def commit_partials(partials: list[PartialFile]) -> list[Path]:
    """Rename finished partials to their names (call it under the index lock); all or none.

    Raises:
        LibraryError: a target name was taken meanwhile, or a rename failed.
    """
    taken = [p.target for p in partials if p.target.exists()]
    if taken:
        raise LibraryError(
            f"A different file named {taken[0].name} is already in the models folder."
        )
    committed: list[Path] = []
    try:
        for partial in partials:
            committed.append(partial.commit())
    except OSError as exc:
        for target in committed:
            target.unlink(missing_ok=True)
        raise LibraryError(f"Copying the model failed: {exc.strerror or exc}.") from None
    return committed
