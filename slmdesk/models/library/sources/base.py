"""What every source layout yields, and the careful directory helpers they share.

The folders belong to other apps and may hold anything: symlink loops, unreadable folders, huge
or broken manifest files. Nothing here follows a folder symlink further than the layout's fixed
depth, and every problem becomes a skipped path with a reason instead of an exception.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GGUF_MAGIC = b"GGUF"
MAX_MODELS_PER_FOLDER = 5000  # a folder claiming more is cut here, not read to the end
MAX_JSON_BYTES = 1 << 20  # manifests and model.json files are a few KB

# App names (the "source" of an entry) and how they are shown.
HF_CACHE = "huggingface"
LMSTUDIO = "lmstudio"
OLLAMA = "ollama"
GPT4ALL = "gpt4all"
JAN = "jan"
FOLDER = "folder"

APP_TITLES = {
    HF_CACHE: "Hugging Face cache",
    LMSTUDIO: "LM Studio",
    OLLAMA: "Ollama",
    GPT4ALL: "GPT4All",
    JAN: "Jan",
    FOLDER: "Folder",
}


@dataclass(frozen=True)
class Found:
    """One model found in another app's folder.

    Attributes:
        name: the name to list it under (the other app's own name where it has one).
        path: the GGUF file (for a split model, its first part).
        provenance: where it came from: always ``app``, plus layout details.
    """

    name: str
    path: Path
    provenance: dict[str, Any]


@dataclass
class Scan:
    """What one folder holds: its models, and what was skipped and why."""

    models: list[Found] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path: Path | str, reason: str) -> None:
        """Note a path that was not listed."""
        self.skipped.append((str(path), reason))

    def add(self, found: Found) -> bool:
        """Add a model; False once the folder's bound is reached (the rest is skipped)."""
        if len(self.models) >= MAX_MODELS_PER_FOLDER:
            return False
        self.models.append(found)
        return True


def entries_of(folder: Path, scan: Scan) -> list[os.DirEntry[str]]:
    """The entries of a folder, sorted by name; an unreadable folder is noted and gives none."""
    try:
        with os.scandir(folder) as listing:
            return sorted(listing, key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except OSError as exc:
        scan.skip(folder, f"cannot be read: {exc.strerror or exc}")
        return []


def is_dir(entry: os.DirEntry[str]) -> bool:
    """A folder (a symlink to one counts: layouts have a fixed depth, so loops end)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def is_file(entry: os.DirEntry[str] | Path) -> bool:
    """A regular file, following symlinks; a dangling or looping link is not one."""
    try:
        return entry.is_file()
    except OSError:
        return False


def gguf_files(folder: Path, scan: Scan) -> list[Path]:
    """The ``*.gguf`` files directly in ``folder`` (hidden and partial files left out)."""
    found = []
    for entry in entries_of(folder, scan):
        if entry.name.startswith(".") or not entry.name.lower().endswith(".gguf"):
            continue
        if is_file(entry):
            found.append(Path(entry.path))
        else:
            scan.skip(entry.path, "not a readable file (a broken link?)")
    return found


def first_parts(files: list[Path]) -> list[Path]:
    """Only the first part of split models (``name-00001-of-00003.gguf``); others unchanged."""
    kept = []
    for path in files:
        stem = path.name[: -len(".gguf")]
        pieces = stem.rsplit("-", 3)
        split = len(pieces) == 4 and pieces[2] == "of" and pieces[1].isdigit()
        if split and int(pieces[1]) != 1:
            continue
        kept.append(path)
    return kept


def starts_with_gguf_magic(path: Path) -> bool:
    """Whether the file begins with the GGUF magic bytes."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == GGUF_MAGIC
    except OSError:
        return False


def read_small_json(path: Path, scan: Scan) -> Any:
    """A JSON file of at most `MAX_JSON_BYTES`; anything else is noted and gives None."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        scan.skip(path, f"cannot be read: {exc.strerror or exc}")
        return None
    if len(data) > MAX_JSON_BYTES:
        scan.skip(path, f"is larger than {MAX_JSON_BYTES // 1024} KB: not a manifest")
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        scan.skip(path, "is not valid JSON")
        return None


def stem_of(path: Path) -> str:
    """A file's name without ``.gguf``."""
    return path.name[: -len(".gguf")] if path.name.lower().endswith(".gguf") else path.name
