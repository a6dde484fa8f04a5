"""Where a download's files go: safe local names, the ``*.incomplete`` partial files, task ids.

File names come from the Hub and are untrusted: every path built here stays inside the models
folder, whatever the remote name contains.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import unicodedata
from pathlib import Path

from slmdesk.hub.downloads.status import DownloadError
from slmdesk.hub.listing import RemoteFile, RemoteModel

INCOMPLETE_SUFFIX = ".incomplete"
_MAX_NAME = 180


def safe_filename(remote_name: str) -> str:
    """A file name from the Hub made safe to create inside the models folder.

    Only the last path component is kept (``/`` and ``\\`` both count), characters outside
    letters, digits and ``._-+()`` become ``_``, leading dots are removed (no hidden files, no
    ``..``) and the ``.gguf`` extension is required. The result never contains a separator.

    Raises:
        DownloadError: nothing usable is left of the name.
    """
    base = re.split(r"[\\/]", remote_name.strip())[-1]
    base = unicodedata.normalize("NFKC", base)
    cleaned = re.sub(r"[^A-Za-z0-9._+()\-]", "_", base).lstrip(".")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    if not cleaned.lower().endswith(".gguf") or len(cleaned) <= len(".gguf"):
        raise DownloadError(
            f"The Hub lists a file with an unusable name ({remote_name!r}); it was not downloaded.",
            retryable=False,
        )
    if len(cleaned) > _MAX_NAME:
        cleaned = cleaned[: _MAX_NAME - 5] + ".gguf"
    return cleaned


def path_inside(folder: Path, name: str) -> Path:
    """``folder / name``, refusing anything that would land elsewhere.

    Raises:
        DownloadError: the name would leave the folder.
    """
    target = (folder / name).resolve()
    if target.parent != folder.resolve():
        raise DownloadError(f"Refusing to write {name!r} outside the models folder.", False)
    return target


def final_path(models_dir: Path, file: RemoteFile) -> Path:
    """Where ``file`` lives in the library once verified."""
    return path_inside(models_dir, safe_filename(file.filename))


def partial_path(models_dir: Path, file: RemoteFile) -> Path:
    """Where the bytes of ``file`` collect until it is verified."""
    return path_inside(models_dir, safe_filename(file.filename) + INCOMPLETE_SUFFIX)


def task_id_for(model: RemoteModel) -> str:
    """A stable id: the same repository file(s) always map to the same download."""
    key = model.repo_id + "\n" + "\n".join(f.filename for f in model.files)
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


def partial_bytes(model: RemoteModel, models_dir: Path) -> int:
    """Bytes of ``model`` already on disk in partial files (what a resume will skip)."""
    done = 0
    for f in model.files:
        with contextlib.suppress(DownloadError, OSError):
            done += min(partial_path(models_dir, f).stat().st_size, f.size_bytes)
    return done


def remove_partials(model: RemoteModel, models_dir: Path) -> None:
    """Delete the partial files of ``model`` (cancelled, or a different version now)."""
    for f in model.files:
        with contextlib.suppress(DownloadError, OSError):
            partial_path(models_dir, f).unlink(missing_ok=True)
