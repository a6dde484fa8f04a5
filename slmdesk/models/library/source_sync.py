"""The `Library`'s side of other apps' folders (`sources`): settings, sync and forgetting.

`Library` lists these models through `sources.reconcile` on every listing (in memory). This mixin
adds what changes the index: `sync_sources` records what the folders hold now (so an unplugged
folder's models can still be listed, as unavailable) and announces what changed since the last
sync in this process, which is how the window notices files changed outside the app; and the
settings (`set_app_enabled`, `add_source_folder`, `remove_source_folder`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slmdesk.common.errors import LibraryError
from slmdesk.models.library.entry import STATUS_UNAVAILABLE, ModelEntry
from slmdesk.models.library.events import ADDED, REMOVED, UPDATED, LibraryChange
from slmdesk.models.library.facts import file_stamp
from slmdesk.models.library.sources.base import APP_TITLES
from slmdesk.models.library.sources.catalog import Source, configured, layout_of, settings_of
from slmdesk.models.library.sources.known_places import KNOWN_APPS


def unavailable_reason(root: str) -> str:
    """What an unavailable entry says."""
    return f"Drive or folder not available: {root}"


def deletion_warning(app: str | None) -> str:
    """The warning before deleting a file another app owns."""
    title = APP_TITLES.get(app or "", "another app")
    return f"This file belongs to {title}; deleting it breaks the model there."


def forget_path(data: dict[str, Any], path: Path) -> None:
    """Hide a source model's file from the listing (until its source is turned on again)."""
    settings = settings_of(data)
    if str(path) not in settings["forgotten"]:
        settings["forgotten"].append(str(path))
    data["sources"] = settings


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _mark(record: dict[str, Any]) -> tuple[bool, list[float] | None]:
    """What a poll compares: whether the source folder is there, and the file's stamp."""
    available = Path(str(record.get("source_root"))).is_dir()
    try:
        stamp = file_stamp(Path(record["path"])) if available else None
    except OSError:
        stamp = None
    return available, stamp


class SourcesMixin:
    """Other apps' folders, for `Library` (which provides the members declared below)."""

    if TYPE_CHECKING:
        _shared: Any  # core._Shared (not imported: core imports this module)

        def _snapshot(self) -> dict[str, Any]: ...

        def _update(self) -> AbstractContextManager[Any]: ...  # yields core._Locked

        def _entry(self, name: str, record: dict[str, Any]) -> ModelEntry: ...

        def _announce(
            self, kind: str, entry: ModelEntry, old_name: str | None = None
        ) -> ModelEntry: ...

    # -- settings ------------------------------------------------------------------------------

    def sources(self) -> list[Source]:
        """Every place models are read from: known apps' usual folders, then added folders."""
        return configured(self._shared.index.read())

    def set_app_enabled(self, app: str, enabled: bool) -> None:
        """Turn a known app's folder on or off; turning it on shows its forgotten models again."""
        if app not in KNOWN_APPS:
            names = ", ".join(KNOWN_APPS)
            raise LibraryError(f"{app!r} is not an app slmdesk knows (one of: {names}).")
        with self._update() as locked:
            settings = settings_of(locked.data)
            if enabled:
                settings["disabled"] = [a for a in settings["disabled"] if a != app]
                roots = [str(s.path) for s in configured(locked.data) if s.app == app]
                settings["forgotten"] = [
                    p for p in settings["forgotten"] if not any(_under(p, r) for r in roots)
                ]
            elif app not in settings["disabled"]:
                settings["disabled"].append(app)
            locked.data["sources"] = settings
        self.sync_sources()

    def add_source_folder(self, path: str | os.PathLike[str]) -> Source:
        """Read models from a folder where it is (its layout is recognised); returns the source."""
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise LibraryError(f"{folder} is not a folder.")
        layout, folder = layout_of(folder.resolve())
        with self._update() as locked:
            settings = settings_of(locked.data)
            if not any(f["path"] == str(folder) for f in settings["folders"]):
                settings["folders"].append({"path": str(folder), "layout": layout})
            settings["forgotten"] = [p for p in settings["forgotten"] if not _under(p, str(folder))]
            locked.data["sources"] = settings
        self.sync_sources()
        return next(s for s in self.sources() if s.added and s.path == folder)

    def remove_source_folder(self, path: str | os.PathLike[str]) -> None:
        """Stop reading a folder the user added (its files stay where they are)."""
        wanted = {str(Path(path).expanduser()), str(Path(path).expanduser().resolve())}
        with self._update() as locked:
            settings = settings_of(locked.data)
            kept = [f for f in settings["folders"] if f["path"] not in wanted]
            if len(kept) == len(settings["folders"]):
                raise LibraryError(f"{path} is not a folder added to the library.")
            settings["folders"] = kept
            locked.data["sources"] = settings
        self.sync_sources()

    # -- sync ----------------------------------------------------------------------------------

    def _note_listed(self, path: str, status: str, stamp: list[float] | None) -> None:
        """Remember what a listing showed, so the next sync announces only later changes."""
        if self._shared.source_marks is None:
            self._shared.source_marks = {}
        self._shared.source_marks[path] = (status != STATUS_UNAVAILABLE, stamp)

    def _source_records(self, models: dict[str, Any]) -> dict[str, str]:
        return {name: r["path"] for name, r in models.items() if r.get("source")}

    def _facts_unsaved(self, models: dict[str, Any]) -> bool:
        """Whether a listing read facts of a source model that the index does not keep yet."""
        fresh = dict(self._shared.facts.items())
        return any(
            record.get("source")
            and record["path"] in fresh
            and (record.get("cache") or {}).get("stamp") != fresh[record["path"]].stamp
            for record in models.values()
        )

    def sync_sources(self) -> list[LibraryChange]:
        """Record what the source folders hold now and announce what changed.

        Cheap when nothing changed (directory listings and one stat per model, no header read,
        no write): the window calls it every few seconds off the GUI thread.

        Returns:
            The changes announced.
        """
        stored = self._shared.index.read()["models"]
        before = self._source_records(stored)
        current = self._snapshot()
        changes: list[LibraryChange] = []
        if before != self._source_records(current) or self._facts_unsaved(stored):
            with self._update() as locked:
                after = self._source_records(locked.models)
                current = dict(locked.models)
            for name, path in before.items():
                if after.get(name) != path:
                    changes.append(LibraryChange(REMOVED, self._entry(name, stored[name])))
            for name, path in after.items():
                if before.get(name) != path:
                    changes.append(LibraryChange(ADDED, self._entry(name, current[name])))
        marks = {r["path"]: _mark(r) for r in current.values() if r.get("source")}
        previous = dict(self._shared.source_marks or {})  # what was last listed or synced
        self._shared.source_marks = marks
        if previous:
            touched = {c.entry.name for c in changes}
            for name, record in current.items():
                path = record["path"]
                if name in touched or path not in marks or path not in previous:
                    continue
                if marks[path] != previous[path]:
                    changes.append(LibraryChange(UPDATED, self._entry(name, record)))
        for change in changes:
            self._shared.notifier.emit(change)
        return changes


def source_files_to_delete(parts: list[Path]) -> Iterator[Path]:
    """The files deleting a source model removes: each part and, for a symlink (the Hugging
    Face cache's snapshots), the blob it points at too, so the space is really freed."""
    for part in parts:
        if part.is_symlink():
            target = part.resolve()
            yield part
            yield target
        else:
            yield part
