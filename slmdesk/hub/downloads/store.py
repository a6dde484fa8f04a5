"""The download queue on disk: enough about each download to resume it after a restart."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmdesk.common import paths
from slmdesk.common.fileio import atomic_write_json, read_json
from slmdesk.hub.downloads.names import remove_partials, task_id_for
from slmdesk.hub.downloads.status import State
from slmdesk.hub.listing import RemoteFile, RemoteModel

log = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass
class DownloadTask:
    """A download as persisted: enough to resume it after a restart."""

    task_id: str
    model: RemoteModel
    state: State = State.QUEUED
    error: str | None = None
    retryable: bool = True
    added_at: float = field(default_factory=time.time)
    library_name: str | None = None
    path: str | None = None
    duplicate_of: str | None = None  # done without a copy: these bytes were already there

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        m = self.model
        return {
            "task_id": self.task_id,
            "repo_id": m.repo_id,
            "revision": m.revision,
            "name": m.name,
            "quantization": m.quantization,
            "files": [f.as_dict() for f in m.files],
            "state": self.state.value,
            "error": self.error,
            "retryable": self.retryable,
            "added_at": self.added_at,
            "library_name": self.library_name,
            "path": self.path,
            "duplicate_of": self.duplicate_of,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DownloadTask:
        """Rebuild from the stored form (raises KeyError/TypeError/ValueError if damaged)."""
        files = [
            RemoteFile(
                filename=str(f["filename"]),
                size_bytes=int(f["size_bytes"]),
                sha256=f.get("sha256"),
                blob_id=f.get("blob_id"),
            )
            for f in data["files"]
        ]
        model = RemoteModel(
            repo_id=str(data["repo_id"]),
            revision=str(data["revision"]),
            name=str(data["name"]),
            files=files,
            quantization=data.get("quantization"),
        )
        return cls(
            task_id=str(data["task_id"]),
            model=model,
            state=State(data.get("state", "queued")),
            error=data.get("error"),
            retryable=bool(data.get("retryable", True)),
            added_at=float(data.get("added_at") or time.time()),
            library_name=data.get("library_name"),
            path=data.get("path"),
            duplicate_of=data.get("duplicate_of"),
        )


class DownloadStore:
    """The download queue on disk, written atomically; readers and writers re-read first.

    Thread-safe within a process; across processes (the window and a CLI ``pull``) each change
    re-reads the file, so the last writer only overwrites the task it changed.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.downloads_state_path()
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, Any]]:
        data = read_json(self.path, {})
        tasks = data.get("tasks") if isinstance(data, dict) else None
        return dict(tasks) if isinstance(tasks, dict) else {}

    def load(self) -> list[DownloadTask]:
        """Every stored task, oldest first (damaged entries are skipped)."""
        with self._lock:
            raw = self._read()
        tasks = []
        for value in raw.values():
            try:
                tasks.append(DownloadTask.from_json(value))
            except (KeyError, TypeError, ValueError):
                log.warning("skipping a damaged entry in %s", self.path)
        return sorted(tasks, key=lambda t: t.added_at)

    def get(self, task_id: str) -> DownloadTask | None:
        """One task, or None."""
        with self._lock:
            value = self._read().get(task_id)
        try:
            return DownloadTask.from_json(value) if value else None
        except (KeyError, TypeError, ValueError):
            return None

    def save(self, task: DownloadTask) -> None:
        """Insert or update a task."""
        with self._lock:
            raw = self._read()
            raw[task.task_id] = task.to_json()
            atomic_write_json(self.path, {"version": STATE_VERSION, "tasks": raw})

    def remove(self, task_id: str) -> None:
        """Forget a task."""
        with self._lock:
            raw = self._read()
            if raw.pop(task_id, None) is not None:
                atomic_write_json(self.path, {"version": STATE_VERSION, "tasks": raw})


def prepare_task(model: RemoteModel, store: DownloadStore, models_dir: Path) -> DownloadTask:
    """The stored task for ``model``, ready to queue; partial files of another version go.

    A task stored for the same files (same sizes and hashes) keeps its partial files so the
    download resumes; if the Hub's files changed, the old bytes are useless and are deleted.
    """
    task_id = task_id_for(model)
    old = store.get(task_id)
    if old is not None and [f.as_dict() for f in old.model.files] == [
        f.as_dict() for f in model.files
    ]:
        old.model = model
        old.error = None
        return old
    remove_partials(model, models_dir)  # same names (the id comes from them), other bytes
    return DownloadTask(task_id=task_id, model=model)
