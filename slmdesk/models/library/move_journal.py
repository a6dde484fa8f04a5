"""The journal of a models-folder move, and how a restart finishes or rolls back a killed move.

A move (`move.py`) writes its plan here before it touches a file and rewrites it (atomically,
`common.fileio`) after every step, so a process killed at any moment leaves a journal that says how
far it got. The journal lives beside the library index (``models-move.json``); while a move runs,
its process holds ``models-move.json.lock``, so a `Library` started meanwhile (another CLI command,
the window) leaves a live move alone: the lock is free only when the move's process is gone.

The move has two phases, and a restart treats the whole move as one unit:

- ``copying``: every model is copied to hidden partial files in the destination, fsynced and
  verified; the sources, the index and the folder setting are untouched. A restart in this phase
  **rolls back**: it deletes the partial files (recorded ones, and any unowned partial in the
  destination folders) and removes the journal. Nothing else changed, so nothing else is undone.
- ``committing`` (written only once every copy is verified, or at once when the move is a rename
  on one filesystem): per model, rename the copy to its final name, point the index at it, remove
  the source. A restart in this phase **finishes**: a verified copy (or a renamed file) becomes
  the model's file, the index points at it, the source goes; then the folder setting switches.

So every model ends listed exactly once, pointing at a file that exists: in the old folder (rolled
back) or in the new one (finished). A model whose new file is missing when finishing (removed by
hand meanwhile) keeps its source and its old path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from slmdesk.common.fileio import atomic_write_json, read_json
from slmdesk.common.paths import MODELS_FOLDER_FILE
from slmdesk.models.library.index import LibraryIndex
from slmdesk.models.library.partials import clean_stale_partials

JOURNAL_NAME = "models-move.json"
COPYING = "copying"
COMMITTING = "committing"
# The states of one model, in order.
PLANNED, COPIED, RENAMED, INDEXED, REMOVED = "planned", "copied", "renamed", "indexed", "removed"
KEPT = "kept"  # its copy was missing when committing: the model stays where it was
# Tests set this to a point name (see `kill_point`) to make the moving process SIGKILL itself.
KILL_ENV = "SLMDESK_TEST_MOVE_KILL_AT"

log = logging.getLogger("slmdesk.models.library")


@dataclass
class MovedModel:
    """One model in a move: every part's source, final target and (when copied) partial file."""

    name: str
    sources: list[str]
    targets: list[str]
    sizes: list[int]
    record: dict[str, Any]  # the index record as planned (to re-create it if it was lost)
    copy: bool  # False: a rename on one filesystem
    temps: list[str] = field(default_factory=list)
    state: str = PLANNED


@dataclass
class Journal:
    """The plan and progress of one move."""

    source_dir: str
    target_dir: str
    phase: str
    models: list[MovedModel]

    @classmethod
    def from_json(cls, data: Any) -> Journal | None:
        """A journal from its JSON, or None when it is not one (a damaged file is ignored)."""
        try:
            models = [MovedModel(**m) for m in data["models"]]
            return cls(str(data["source_dir"]), str(data["target_dir"]), str(data["phase"]), models)
        except (KeyError, TypeError):
            return None


def journal_path(index: LibraryIndex) -> Path:
    """Where the journal of moves of this library lives (beside its index)."""
    return index.path.with_name(JOURNAL_NAME)


def move_lock(index: LibraryIndex) -> FileLock:
    """The lock a running move holds (free once its process is gone)."""
    return FileLock(str(journal_path(index)) + ".lock", timeout=0)


def save(index: LibraryIndex, journal: Journal) -> None:
    """Write the journal atomically (a reader sees the previous or this version, never half)."""
    atomic_write_json(journal_path(index), asdict(journal))


def setting_path(index: LibraryIndex) -> Path:
    """The models-folder setting of this library (beside its index)."""
    return index.path.with_name(MODELS_FOLDER_FILE)


def kill_point(name: str) -> None:
    """Test hook: end this process at once (SIGKILL) when ``KILL_ENV`` names this point."""
    if os.environ.get(KILL_ENV) == name:
        if hasattr(signal, "SIGKILL"):
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(137)


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def recover_interrupted_move(index: LibraryIndex) -> Path | None:
    """Finish or roll back a move whose process died (called by every `Library` start).

    Returns:
        The new models folder when a killed move was finished, else None.
    """
    path = journal_path(index)
    if not path.exists():
        return None
    lock = move_lock(index)
    try:
        lock.acquire()
    except (Timeout, OSError):
        return None  # a move is running right now, in this process or another
    try:
        journal = Journal.from_json(read_json(path, None))
        if journal is None:
            log.warning("ignored a damaged models-folder move journal %s", path)
            path.unlink(missing_ok=True)
            return None
        if journal.phase == COMMITTING:
            finish(index, journal)
            log.warning("finished an interrupted move of the models to %s", journal.target_dir)
            return Path(journal.target_dir)
        roll_back(index, journal)
        log.warning("rolled back an interrupted move of the models to %s", journal.target_dir)
        return None
    finally:
        lock.release()


def roll_back(index: LibraryIndex, journal: Journal) -> None:
    """Undo a move still copying: delete its partial copies and the journal (sources untouched)."""
    for model in journal.models:
        for temp in model.temps:
            with contextlib.suppress(OSError):
                Path(temp).unlink(missing_ok=True)
    _clean_partials(journal)
    journal_path(index).unlink(missing_ok=True)


def _clean_partials(journal: Journal) -> None:
    """Remove unowned partial files and lock files left in the destination folders."""
    folders = {Path(target).parent for model in journal.models for target in model.targets}
    for folder in sorted(folders):
        clean_stale_partials(folder)


def finish(index: LibraryIndex, journal: Journal) -> None:
    """Complete a move in its commit phase: every model in the new folder, then the setting."""
    with index.hold():  # held across the commit so other writers never see half of it
        for model in journal.models:
            if model.state not in (REMOVED, KEPT):
                commit_model(index, journal, model)
        _clean_partials(journal)
        write_setting(index, Path(journal.target_dir))
        kill_point("before-journal-removed")
        journal_path(index).unlink(missing_ok=True)


def commit_model(index: LibraryIndex, journal: Journal, model: MovedModel) -> None:
    """Rename one model's copy into place, point the index at it, remove its source.

    Idempotent: each step looks at the files first, so it can run again after a kill at any point.
    """
    if not _place(model):
        log.warning(
            "the moved copy of %s could not be placed; it stays at %s", model.name, model.sources[0]
        )
        model.state = KEPT
        save(index, journal)
        return
    kill_point("renamed")  # before the journal says so: a restart must look at the files
    model.state = RENAMED
    save(index, journal)
    _point_index_at_target(index, model)
    kill_point("indexed")
    model.state = INDEXED
    save(index, journal)
    for moved_from in model.sources:
        with contextlib.suppress(FileNotFoundError):
            Path(moved_from).unlink()
    model.state = REMOVED
    save(index, journal)


def _pending(model: MovedModel, i: int) -> Path | None:
    """What still has to be renamed to part ``i``'s target: its copy, or (on one disk) its source."""
    candidate = Path(model.temps[i]) if model.copy and i < len(model.temps) else None
    if not model.copy:
        candidate = Path(model.sources[i])
    return candidate if candidate is not None and candidate.exists() else None


def _place(model: MovedModel) -> bool:
    """Rename every part to its target; False (and the model back as it was) when one cannot be.

    A part already at its target (renamed before a kill) is left there. A target name taken by
    another file (it appeared after the plan) is never replaced: the model then stays.
    """
    targets = [Path(t) for t in model.targets]
    pending = [_pending(model, i) for i in range(len(targets))]
    clash = any(p is not None and t.exists() for p, t in zip(pending, targets, strict=True))
    if not clash:
        for part, target in zip(pending, targets, strict=True):
            if part is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(part, target)
                fsync_folder(target.parent)
        if all(_has_size(t, n) for t, n in zip(targets, model.sizes, strict=True)):
            return True
    for i, target in enumerate(targets):  # the model stays: undo what this move placed
        source = Path(model.sources[i])
        with contextlib.suppress(OSError):
            if model.copy:
                if i < len(model.temps):
                    Path(model.temps[i]).unlink(missing_ok=True)
                if not clash and source.exists():
                    target.unlink(missing_ok=True)
            elif not source.exists() and target.exists():
                os.replace(target, source)
    return False


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _point_index_at_target(index: LibraryIndex, model: MovedModel) -> None:
    """The model's index record names its new file (re-created from the plan if it was lost)."""
    first_source, first_target = model.sources[0], model.targets[0]
    with index.update() as data:
        models = data["models"]
        found = next(
            (n for n, r in models.items() if r.get("path") in (first_source, first_target)), None
        )
        if found is None:
            found = model.name
            while found in models:
                found += " (moved)"
            models[found] = dict(model.record)
        models[found]["path"] = first_target
        models[found]["managed"] = True


def write_setting(index: LibraryIndex, folder: Path) -> None:
    """Make ``folder`` the models folder of this library (atomically)."""
    atomic_write_json(setting_path(index), {"path": str(folder)})
