"""Moving every model of the models folder to another folder: copy, verify, switch, remove.

Safe against a kill at any moment (`move_journal` says how a restart finishes or rolls back):

1. Check the destination (exists, writable, not nested with the current folder, no file of the
   same name there, room for every byte plus `SPACE_MARGIN`) before anything is written.
2. Record the plan in the journal (the models the folder holds, also files dropped in by hand,
   which the plan records in the index first).
3. Copy phase: each model's files go to hidden partial files in the destination (`partials`),
   8 MiB at a time (cancel and progress between chunks), are fsynced and verified (size, and the
   SHA-256 of the copy against the hash of the source taken while copying, or the hash already in
   the index). On one filesystem nothing is copied: the files are renamed in the next phase.
   A cancel or an error here deletes the copies; nothing else changed.
4. Commit phase (once every copy is verified), under the index lock: per model, rename the copy
   to its final name, point the index at it, remove the source; then the folder setting switches
   and the journal goes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import Timeout

from slmdesk.common.errors import LibraryError
from slmdesk.models.gguf_info import split_parts
from slmdesk.models.library import location
from slmdesk.models.library.content import stored_sha256
from slmdesk.models.library.copying import COPY_CHUNK
from slmdesk.models.library.events import UPDATED
from slmdesk.models.library.facts import file_stamp
from slmdesk.models.library.move_journal import (
    COMMITTING,
    COPIED,
    COPYING,
    Journal,
    MovedModel,
    finish,
    kill_point,
    move_lock,
    recover_interrupted_move,
    roll_back,
    save,
)
from slmdesk.models.library.partials import PartialFile

if TYPE_CHECKING:
    from slmdesk.models.library.core import Library

# Room left free on the destination beyond the models' own bytes.
SPACE_MARGIN = 256 << 20

# (bytes done, bytes total, name of the model being copied)
MoveProgress = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]


class MoveCancelled(LibraryError):
    """The move was cancelled; every model is where it was."""


@dataclass(frozen=True)
class MoveResult:
    """What a finished move did."""

    folder: Path
    models: int
    bytes: int
    copied: bool  # False: renamed on one filesystem


def move_models(
    library: Library,
    target: str | os.PathLike[str],
    progress: MoveProgress | None = None,
    cancel: CancelCheck | None = None,
) -> MoveResult:
    """Move every model of the current models folder to ``target`` and make it the folder.

    Runs for as long as copying takes: call it off the GUI thread.

    Raises:
        MoveCancelled: ``cancel`` returned True during the copy phase (everything rolled back).
        LibraryError: the destination cannot be used or has no room (nothing was written), another
            move is running, or a copy failed or did not verify (everything rolled back).
    """
    folder = location.check_folder(target)
    current = library.models_dir
    location.check_not_nested(current, folder)
    index = library._shared.index
    recover_interrupted_move(index)  # a journal of a killed move is settled before a new plan
    lock = move_lock(index)
    try:
        lock.acquire()
    except (Timeout, OSError):
        raise LibraryError("Another move of the models folder is running; wait for it.") from None
    partials: list[PartialFile] = []
    try:
        journal = _plan(library, current, folder)
        save(index, journal)
        kill_point("journal-written")
        try:
            _copy_all(library, journal, partials, progress, cancel)
        except BaseException:
            for partial in partials:
                partial.discard()
            roll_back(index, journal)
            raise
        journal.phase = COMMITTING
        save(index, journal)
        kill_point("copied")
        finish(index, journal)
    finally:
        for partial in partials:
            partial.discard()  # renamed by now, or rolled back: this only releases its lock
        lock.release()
    library.follow_folder(folder)
    total = sum(sum(m.sizes) for m in journal.models)
    if progress is not None:
        progress(total, total, "")
    for moved in journal.models:
        with contextlib.suppress(LibraryError):
            library._announce(UPDATED, library.get(moved.name))
    return MoveResult(
        folder, len(journal.models), total, copied=any(m.copy for m in journal.models)
    )


def _plan(library: Library, current: Path, folder: Path) -> Journal:
    """Which models move where, checked for clashes and room before anything is written."""
    same_disk = _device(current) == _device(folder)
    models: list[MovedModel] = []
    with library._update() as locked:  # also records files dropped in by hand
        for name, record in locked.models.items():
            first = Path(record["path"])
            if not location.is_within(first, current) or not first.exists():
                continue
            parts = split_parts(first)
            sources = [str(p) for p in parts]
            targets = [str(folder / p.resolve().relative_to(current.resolve())) for p in parts]
            sizes = [p.stat().st_size for p in parts]
            models.append(MovedModel(name, sources, targets, sizes, dict(record), not same_disk))
    for model in models:
        for target in map(Path, model.targets):
            if target.exists():
                raise LibraryError(
                    f"{folder} already holds a file named {target.name}; move or rename it first."
                )
    needed = sum(sum(m.sizes) for m in models if m.copy)
    if needed:
        free = location.free_bytes(folder)
        if needed + SPACE_MARGIN > free:
            raise LibraryError(
                f"Not enough room in {folder}: the models need {needed / 1e9:.2f} GB and "
                f"{free / 1e9:.2f} GB are free."
            )
    phase = COPYING if any(m.copy for m in models) else COMMITTING
    return Journal(str(current), str(folder), phase, models)


def _device(path: Path) -> int:
    return path.stat().st_dev


def _copy_all(
    library: Library,
    journal: Journal,
    partials: list[PartialFile],
    progress: MoveProgress | None,
    cancel: CancelCheck | None,
) -> None:
    """Copy and verify every model that needs a copy; the journal records each one."""
    index = library._shared.index
    total = sum(sum(m.sizes) for m in journal.models)
    done = [0]
    for model in journal.models:
        if not model.copy:
            done[0] += sum(model.sizes)
            continue
        mine = []
        for target in map(Path, model.targets):
            target.parent.mkdir(parents=True, exist_ok=True)
            mine.append(PartialFile(target.parent, target.name))
        partials.extend(mine)
        model.temps = [str(p.path) for p in mine]
        save(index, journal)  # before the first byte: a rollback knows what to delete
        try:
            for i, partial in enumerate(mine):
                source = Path(model.sources[i])

                def report(n: int, name: str = model.name) -> None:
                    done[0] += n
                    if progress is not None:
                        progress(done[0], total, name)

                source_hash = _copy_file(source, partial.path, report, cancel)
                expected = _indexed_hash(model, source) if i == 0 else None
                _verify(partial.path, model.sizes[i], expected or source_hash, model.name)
        except OSError as exc:
            raise LibraryError(
                f"Moving {model.name} failed: {(exc.strerror or str(exc)).lower()}."
            ) from None
        model.state = COPIED
        save(index, journal)


def _copy_file(
    source: Path, copy: Path, report: Callable[[int], None], cancel: CancelCheck | None
) -> str:
    """Copy ``source`` over ``copy`` in chunks (cancel between them), fsync; the source's hash."""
    digest = hashlib.sha256()
    first = True
    with open(source, "rb") as reader, open(copy, "wb") as writer:
        while True:
            if cancel is not None and cancel():
                raise MoveCancelled("The move was cancelled; every model stays where it was.")
            chunk = reader.read(COPY_CHUNK)
            if not chunk:
                break
            writer.write(chunk)
            digest.update(chunk)
            report(len(chunk))
            if first:
                first = False
                writer.flush()
                kill_point("mid-copy")
        writer.flush()
        os.fsync(writer.fileno())
    stat = source.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the index's caches stay valid
    return digest.hexdigest()


def _indexed_hash(model: MovedModel, source: Path) -> str | None:
    """The SHA-256 the index keeps for the model's first file, if taken of it as it is now."""
    try:
        return stored_sha256(model.record, file_stamp(source))
    except OSError:
        return None


def _verify(copy: Path, size: int, expected: str, name: str) -> None:
    """Read the copy back: its size and SHA-256 must be the source's.

    Raises:
        LibraryError: they differ (a failing disk or a file changed while it was copied).
    """
    digest = hashlib.sha256()
    with open(copy, "rb") as reader:
        while chunk := reader.read(COPY_CHUNK):
            digest.update(chunk)
    if copy.stat().st_size != size or digest.hexdigest() != expected:
        raise LibraryError(
            f"The copy of {name} does not match the original (a failing disk, or the file "
            "changed while it was copied); nothing was moved."
        )
