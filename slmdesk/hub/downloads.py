"""Resumable, verified downloads of Hub models into the library.

A download writes each file to ``<models_dir>/<safe name>.incomplete``, resumes it with an HTTP
``Range`` request after a network cut or an app restart (the queue is persisted in
`paths.downloads_state_path`), retries with exponential backoff, checks free disk space before
the first byte, verifies size and SHA-256 (the LFS hash the Hub lists; the git blob id for small
files kept in git), and only then renames the file(s) into the models folder and registers them
with `Library.add_managed_file`. The library never sees half a file.

Two ways to use it:

- `download_model` runs one download on the calling thread (the CLI's ``pull``).
- `DownloadManager` queues several, each on its own thread named ``slmdesk-download-<id>``,
  with pause, resume, cancel and retry; `DownloadManager.shutdown` stops and joins them all.

HTTP goes through huggingface_hub's shared session (TLS verification on, its headers and offline
switch): a ``HEAD`` on the ``resolve`` URL gives the signed location, size and hash, then a
streamed ``GET`` fetches the bytes. The token is sent to the Hub only, never to the CDN it
redirects to, and is never logged.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import hashlib
import logging
import os
import queue
import re
import shutil
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from slmdesk.common import paths
from slmdesk.common.errors import LibraryError, SlmdeskError
from slmdesk.common.fileio import atomic_write_json, read_json
from slmdesk.hub.listing import (
    HubError,
    HubOfflineError,
    HubServerError,
    RemoteFile,
    RemoteModel,
    check_reachable,
    file_url,
    hub_endpoint,
    hub_errors,
    is_offline_mode,
    resolve_token,
)

log = logging.getLogger(__name__)

STATE_VERSION = 1
INCOMPLETE_SUFFIX = ".incomplete"
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 30.0  # a stalled connection is retried after this long
DEFAULT_RETRIES = 6
DEFAULT_BACKOFF = 1.0  # seconds, doubled per consecutive failure, capped at MAX_BACKOFF
MAX_BACKOFF = 30.0
DISK_MARGIN_BYTES = 64 * 1024 * 1024  # leave the system some room
PROGRESS_INTERVAL = 0.1  # seconds between progress callbacks
SPEED_WINDOW = 3.0  # seconds of history behind the speed figure
_MAX_NAME = 180
_HASH_BATCH = 1 << 20  # bytes handed to the hashing thread at once (fewer wake-ups)
_HASH_QUEUE = 8  # batches waiting to be hashed: at most ~8 MiB in memory


class State(enum.StrEnum):
    """Where a download is. ``done``, ``failed`` and ``cancelled`` are final."""

    QUEUED = "queued"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATES = frozenset({State.QUEUED, State.DOWNLOADING, State.VERIFYING})


class DownloadError(SlmdeskError):
    """A download failed; ``retryable`` says whether Retry may help."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class VerificationError(DownloadError):
    """The downloaded bytes are not the file the Hub listed (it was deleted)."""


class DownloadStopped(SlmdeskError):
    """The download was paused or cancelled by the user."""

    def __init__(self, cancelled: bool) -> None:
        super().__init__("Download cancelled." if cancelled else "Download paused.")
        self.cancelled = cancelled


@dataclass(frozen=True)
class DownloadStatus:
    """A snapshot of one download, as handed to progress callbacks."""

    task_id: str
    repo_id: str
    name: str
    state: State
    done_bytes: int
    total_bytes: int
    speed_bps: float = 0.0
    eta_seconds: float | None = None
    current_file: str | None = None
    error: str | None = None
    retryable: bool = True
    library_name: str | None = None  # set when done
    path: str | None = None  # the model file, when done

    @property
    def fraction(self) -> float:
        """Share done, 0..1."""
        return self.done_bytes / self.total_bytes if self.total_bytes else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "task_id": self.task_id,
            "repo_id": self.repo_id,
            "name": self.name,
            "state": self.state.value,
            "done_bytes": self.done_bytes,
            "total_bytes": self.total_bytes,
            "speed_bps": self.speed_bps,
            "eta_seconds": self.eta_seconds,
            "current_file": self.current_file,
            "error": self.error,
            "retryable": self.retryable,
            "library_name": self.library_name,
            "path": self.path,
        }


ProgressCallback = Callable[[DownloadStatus], None]


# -- file names --------------------------------------------------------------------------------


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


def _inside(folder: Path, name: str) -> Path:
    """``folder / name``, refusing anything that would land elsewhere."""
    target = (folder / name).resolve()
    if target.parent != folder.resolve():
        raise DownloadError(f"Refusing to write {name!r} outside the models folder.", False)
    return target


def task_id_for(model: RemoteModel) -> str:
    """A stable id: the same repository file(s) always map to the same download."""
    key = model.repo_id + "\n" + "\n".join(f.filename for f in model.files)
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


# -- persisted queue ---------------------------------------------------------------------------


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


# -- one download ------------------------------------------------------------------------------


class _Hasher:
    """SHA-256 (LFS files) or the git blob id (small files) of the bytes, as they arrive.

    Hashing runs on a helper thread (``slmdesk-download-hash``) fed in 1 MiB batches through a
    small bounded queue: hashlib releases the GIL, so the digest is computed while the next bytes are read
    from the network, and at most ``_HASH_QUEUE`` batches wait in memory. `close` joins it.
    """

    def __init__(self, file: RemoteFile) -> None:
        self.file = file
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=_HASH_QUEUE)
        self._thread: threading.Thread | None = None
        self._batch: list[bytes] = []
        self._batched = 0
        self._h = self._new()

    def _new(self) -> Any:
        if self.file.sha256:
            return hashlib.sha256()
        return hashlib.sha1(b"blob %d\0" % self.file.size_bytes)

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            for piece in batch:
                self._h.update(piece)

    def _flush(self) -> None:
        if self._batch:
            self._queue.put(self._batch)
            self._batch = []
            self._batched = 0

    def _drain(self) -> None:
        if self._thread is not None:
            self._flush()
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def reset(self) -> None:
        """Start again from the first byte."""
        self._drain()
        self._h = self._new()

    def update(self, data: bytes) -> None:
        """Add the next bytes."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="slmdesk-download-hash", daemon=True
            )
            self._thread.start()
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= _HASH_BATCH:
            self._flush()

    def matches(self) -> bool:
        """Whether all bytes so far hash to the Hub's value."""
        self._drain()
        expected = self.file.sha256 or self.file.blob_id
        return bool(expected) and self._h.hexdigest() == str(expected).lower()

    def close(self) -> None:
        """Stop the helper thread (idempotent)."""
        self._drain()

    def catch_up(self, path: Path, length: int) -> None:
        """Hash the first ``length`` bytes already on disk (after a restart)."""
        self._drain()
        with open(path, "rb") as handle:
            left = length
            while left > 0:
                block = handle.read(min(left, 8 << 20))
                if not block:
                    break
                self._h.update(block)
                left -= len(block)


class _Meter:
    """Bytes done, speed over a sliding window, ETA; throttles progress callbacks."""

    def __init__(self, total: int, done: int) -> None:
        self.total = total
        self.done = done
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._samples.append((time.monotonic(), done))
        self._last_emit = 0.0

    def add(self, n: int) -> None:
        self.done += n

    def speed(self) -> float:
        now = time.monotonic()
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW:
            self._samples.popleft()
        t0, b0 = self._samples[0]
        return (self.done - b0) / (now - t0) if now > t0 else 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last_emit >= PROGRESS_INTERVAL:
            self._last_emit = now
            return True
        return False


@dataclass
class DownloadOptions:
    """Tuning knobs (tests and the benchmark shorten the waits)."""

    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    read_timeout: float = READ_TIMEOUT


class _Job:
    """Runs one task to the end on the calling thread."""

    def __init__(
        self,
        task: DownloadTask,
        store: DownloadStore,
        models_dir: Path,
        progress: ProgressCallback | None,
        stop: threading.Event,
        cancel: threading.Event,
        token: str | bool,
        options: DownloadOptions,
    ) -> None:
        self.task = task
        self.store = store
        self.models_dir = models_dir
        self.progress = progress
        self.stop = stop
        self.cancel = cancel
        self.token = token
        self.options = options
        self.meter = _Meter(task.model.size_bytes, 0)
        self.current: str | None = None

    # -- reporting -----------------------------------------------------------------------------

    def status(self, state: State | None = None, error: str | None = None) -> DownloadStatus:
        task = self.task
        speed = self.meter.speed() if (state or task.state) == State.DOWNLOADING else 0.0
        left = max(0, self.meter.total - self.meter.done)
        eta = left / speed if speed > 0 else None
        return DownloadStatus(
            task_id=task.task_id,
            repo_id=task.model.repo_id,
            name=task.model.name,
            state=state or task.state,
            done_bytes=self.meter.done,
            total_bytes=self.meter.total,
            speed_bps=speed,
            eta_seconds=eta,
            current_file=self.current,
            error=error if error is not None else task.error,
            retryable=task.retryable,
            library_name=task.library_name,
            path=task.path,
        )

    def emit(self, force: bool = False) -> None:
        if self.progress and (force or self.meter.due()):
            self.progress(self.status())

    def set_state(self, state: State, error: str | None = None, retryable: bool = True) -> None:
        self.task.state = state
        self.task.error = error
        self.task.retryable = retryable
        self.store.save(self.task)
        self.emit(force=True)

    def check_stop(self) -> None:
        if self.cancel.is_set():
            raise DownloadStopped(cancelled=True)
        if self.stop.is_set():
            raise DownloadStopped(cancelled=False)

    # -- the work ------------------------------------------------------------------------------

    def plan(self) -> list[tuple[RemoteFile, Path, Path]]:
        """(remote file, incomplete path, final path) for every part, names made safe."""
        plan = []
        names: set[str] = set()
        for f in self.task.model.files:
            name = safe_filename(f.filename)
            if name.lower() in names:
                raise DownloadError(f"Two files of this model would both be named {name}.", False)
            names.add(name.lower())
            final = _inside(self.models_dir, name)
            partial = _inside(self.models_dir, name + INCOMPLETE_SUFFIX)
            plan.append((f, partial, final))
        return plan

    def run(self) -> DownloadStatus:
        """Download, verify, move into the library; returns the final status.

        Raises:
            DownloadStopped: paused or cancelled (state saved accordingly).
            SlmdeskError: failed (state saved as failed with the message).
        """
        from slmdesk.models.library import Library

        plan = self.plan()
        present = self._already_installed(plan)
        if present is not None:
            return present
        for f, _partial, final in plan:
            if final.exists():
                raise DownloadError(
                    f"A file named {final.name} is already in the models folder; remove it from "
                    "the library first to download it again.",
                    retryable=False,
                )
            if not f.size_bytes or not (f.sha256 or f.blob_id):
                raise DownloadError(
                    f"The Hub lists no size or checksum for {f.filename}, so it cannot be verified.",
                    retryable=False,
                )
        already = sum(min(p.stat().st_size, f.size_bytes) if p.exists() else 0 for f, p, _ in plan)
        self.meter = _Meter(self.meter.total, already)
        self._check_disk(plan)
        self.set_state(State.DOWNLOADING)
        for f, partial, _ in plan:
            self.current = f.filename
            self._fetch(f, partial)
        self.set_state(State.VERIFYING)
        self.check_stop()
        self._install(plan)
        library = Library(models_dir=self.models_dir)
        first = plan[0][2]
        model = self.task.model
        try:
            entry = library.add_managed_file(
                first,
                provenance={
                    "source": "hub",
                    "repo": model.repo_id,
                    "file": model.files[0].filename,
                    "sha256": model.files[0].sha256,
                    "revision": model.revision,
                    "files": [f.filename for f in model.files],
                },
            )
        except SlmdeskError as exc:
            for _, _, final in plan:
                final.unlink(missing_ok=True)
            raise DownloadError(
                f"The downloaded file is not a usable GGUF model ({exc}); it was deleted.",
                retryable=False,
            ) from None
        self.task.library_name = entry.name
        self.task.path = str(entry.path)
        self.current = None
        self.set_state(State.DONE)
        return self.status()

    def _already_installed(
        self, plan: list[tuple[RemoteFile, Path, Path]]
    ) -> DownloadStatus | None:
        """The done status when this very download is already in the library, else None."""
        from slmdesk.models.library import Library

        first = plan[0][2]
        if not all(final.exists() for _, _, final in plan):
            return None
        model = self.task.model
        for entry in Library(models_dir=self.models_dir).entries():
            prov = entry.provenance
            if (
                entry.path == first
                and prov.get("source") == "hub"
                and prov.get("repo") == model.repo_id
                and prov.get("sha256") == model.files[0].sha256
                and prov.get("files", [prov.get("file")]) == [f.filename for f in model.files]
            ):
                self.task.library_name = entry.name
                self.task.path = str(entry.path)
                self.meter.done = self.meter.total
                self.set_state(State.DONE)
                return self.status()
        return None

    def _check_disk(self, plan: list[tuple[RemoteFile, Path, Path]]) -> None:
        need = sum(
            f.size_bytes - (min(p.stat().st_size, f.size_bytes) if p.exists() else 0)
            for f, p, _ in plan
        )
        free = shutil.disk_usage(self.models_dir).free
        if need + DISK_MARGIN_BYTES > free:
            raise DownloadError(
                f"Not enough disk space: this model needs {need / 1e9:.2f} GB more and "
                f"{free / 1e9:.2f} GB are free in {self.models_dir}.",
                retryable=True,
            )

    def _fetch(self, file: RemoteFile, partial: Path) -> None:
        """Bring ``partial`` to the full, verified file, resuming and retrying as needed."""
        size = file.size_bytes
        offset = partial.stat().st_size if partial.exists() else 0
        if offset > size:
            partial.unlink()
            self.meter.done -= size
            offset = 0
        hasher = _Hasher(file)
        try:
            self._fetch_with(file, partial, offset, hasher)
        finally:
            hasher.close()

    def _fetch_with(self, file: RemoteFile, partial: Path, offset: int, hasher: _Hasher) -> None:
        size = file.size_bytes
        if offset:
            hasher.catch_up(partial, offset)
        failures = 0
        while offset < size:
            self.check_stop()
            got_before = offset
            try:
                offset = self._attempt(file, partial, offset, hasher)
            except (HubServerError, HubOfflineError, _Transient) as exc:
                # Whatever arrived before the failure is on disk and hashed: continue from there.
                offset = partial.stat().st_size if partial.exists() else 0
                if offset > got_before:
                    failures = 0
                failures += 1
                if failures > self.options.retries:
                    raise DownloadError(
                        f"The download of {file.filename} kept failing ({exc}); "
                        "it will resume from where it stopped when you retry.",
                        retryable=True,
                    ) from None
                wait = min(MAX_BACKOFF, self.options.backoff * 2 ** (failures - 1))
                log.info(
                    "download of %s interrupted (%s); retry in %.1f s", file.filename, exc, wait
                )
                self.emit(force=True)
                if self.stop.wait(wait) or self.cancel.is_set():
                    self.check_stop()
                continue
            if offset > got_before:
                failures = 0
        if not hasher.matches():
            partial.unlink(missing_ok=True)
            self.meter.done -= size
            raise VerificationError(
                f"{file.filename} failed verification (its SHA-256 does not match the Hub's), so "
                "it was deleted; try the download again.",
                retryable=True,
            )

    def _attempt(self, file: RemoteFile, partial: Path, offset: int, hasher: _Hasher) -> int:
        """One HEAD + ranged GET; returns the new offset (may raise a retryable error)."""
        import httpx2
        from huggingface_hub import get_hf_file_metadata
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        model = self.task.model
        endpoint = hub_endpoint()
        url = file_url(model.repo_id, file.filename, model.revision, endpoint)
        with hub_errors(model.repo_id, bool(self.token)), _transient_network():
            meta = get_hf_file_metadata(
                url, token=self.token, timeout=CONNECT_TIMEOUT, endpoint=endpoint
            )
        expected = (file.sha256 or file.blob_id or "").lower()
        if meta.etag and file.sha256 and meta.etag.lower() != expected:
            raise DownloadError(
                f"{file.filename} changed on the Hub since it was listed; refresh the list "
                "and download it again.",
                retryable=False,
            )
        if meta.size is not None and meta.size != file.size_bytes:
            raise DownloadError(
                f"{file.filename} on the Hub is {meta.size:,} bytes, not the listed "
                f"{file.size_bytes:,}; refresh the list and try again.",
                retryable=False,
            )
        location = meta.location or url
        same_origin = _origin(location) == _origin(endpoint)
        headers = build_hf_headers(token=self.token if same_origin else False)
        headers["Accept-Encoding"] = "identity"
        if offset:
            headers["Range"] = f"bytes={offset}-"
        timeout = httpx2.Timeout(self.options.read_timeout, connect=CONNECT_TIMEOUT)
        with (
            hub_errors(model.repo_id, bool(self.token)),
            _transient_network(),
            get_session().stream(
                "GET", location, headers=headers, timeout=timeout, follow_redirects=True
            ) as resp,
        ):
            if resp.status_code == 416 and offset:
                # The range is past the end: the file on disk is too long; start over.
                partial.unlink(missing_ok=True)
                hasher.reset()
                self.meter.done -= offset
                raise _Transient("the server rejected the resume position")
            if resp.status_code >= 400:
                resp.read()
                hf_raise_for_status(resp)
            if offset and resp.status_code != 206:
                # The server ignored Range: restart this file from zero.
                self.meter.done -= offset
                offset = 0
                hasher.reset()
                mode = "wb"
            else:
                mode = "ab" if offset else "wb"
                if offset and not _range_starts_at(resp.headers.get("Content-Range"), offset):
                    raise _Transient("the server resumed at the wrong position")
            with open(partial, mode) as out:
                try:
                    for piece in resp.iter_raw():
                        out.write(piece)
                        hasher.update(piece)
                        offset += len(piece)
                        self.meter.add(len(piece))
                        self.emit()
                        if self.stop.is_set() or self.cancel.is_set():
                            break
                        if offset > file.size_bytes:
                            break
                finally:
                    out.flush()
            if offset > file.size_bytes:
                partial.unlink(missing_ok=True)
                self.meter.done -= offset
                raise VerificationError(
                    f"The Hub sent more bytes than {file.filename} has; it was deleted, try again.",
                    retryable=True,
                )
            self.check_stop()
            if offset < file.size_bytes:
                raise _Transient("the connection closed early")
        return offset

    def _install(self, plan: list[tuple[RemoteFile, Path, Path]]) -> None:
        """Flush, then rename every part into place (last part first, first part last).

        Only the GGUF magic is checked here; the library validates the whole header as it
        registers the model, and `run` removes the files if that fails.
        """
        for _, partial, _ in plan:
            with open(partial, "rb") as handle:
                magic = handle.read(4)
                os.fsync(handle.fileno())
            if magic != b"GGUF":
                for _, other, _ in plan:
                    other.unlink(missing_ok=True)
                raise DownloadError(
                    f"{partial.name.removesuffix(INCOMPLETE_SUFFIX)} matches the Hub's checksum "
                    "but is not a GGUF model file; it was deleted.",
                    retryable=False,
                )
        for _, partial, final in reversed(plan):
            os.replace(partial, final)


class _Transient(Exception):
    """A network hiccup worth retrying."""


@contextlib.contextmanager
def _transient_network() -> Iterator[None]:
    """Network errors while streaming are retried, not reported as 'offline' at once."""
    import httpx2

    try:
        yield
    except (httpx2.TransportError, httpx2.StreamError) as exc:
        raise _Transient(f"network error: {type(exc).__name__}") from None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def _range_starts_at(content_range: str | None, offset: int) -> bool:
    match = re.match(r"bytes (\d+)-", content_range or "")
    return bool(match) and int(match.group(1)) == offset  # type: ignore[union-attr]


def _remove_partials(task: DownloadTask, models_dir: Path) -> None:
    for f in task.model.files:
        with contextlib.suppress(DownloadError, OSError):
            _inside(models_dir, safe_filename(f.filename) + INCOMPLETE_SUFFIX).unlink(
                missing_ok=True
            )


def _prepare_task(model: RemoteModel, store: DownloadStore, models_dir: Path) -> DownloadTask:
    """The stored task for ``model``; partial files from a different version are dropped."""
    task_id = task_id_for(model)
    old = store.get(task_id)
    if old is not None and [f.as_dict() for f in old.model.files] == [
        f.as_dict() for f in model.files
    ]:
        old.model = model
        old.error = None
        return old
    _remove_partials(DownloadTask(task_id, model), models_dir)
    return DownloadTask(task_id=task_id, model=model)


def _execute(
    task: DownloadTask,
    store: DownloadStore,
    models_dir: Path,
    progress: ProgressCallback | None,
    stop: threading.Event,
    cancel: threading.Event,
    token: str | None,
    options: DownloadOptions,
) -> DownloadStatus:
    """Run a task and record how it ended (paused, cancelled, failed, done)."""
    job = _Job(task, store, models_dir, progress, stop, cancel, resolve_token(token), options)
    try:
        if is_offline_mode():
            raise HubOfflineError(
                "You are offline (HF_HUB_OFFLINE is set): downloads are turned off; your "
                "library and chats still work."
            )
        check_reachable(hub_endpoint())
        return job.run()
    except DownloadStopped as exc:
        if exc.cancelled:
            _remove_partials(task, models_dir)
            store.remove(task.task_id)
            task.state = State.CANCELLED
            job.emit(force=True)
        else:
            job.set_state(State.PAUSED)
        raise
    except SlmdeskError as exc:
        retryable = (
            exc.retryable
            if isinstance(exc, DownloadError)
            else not isinstance(exc, HubError) or isinstance(exc, HubServerError | HubOfflineError)
        )
        if isinstance(exc, LibraryError):
            retryable = False
        job.set_state(State.FAILED, str(exc), retryable)
        raise


def download_model(
    model: RemoteModel,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    token: str | None = None,
    models_dir: Path | None = None,
    store: DownloadStore | None = None,
    options: DownloadOptions | None = None,
) -> DownloadStatus:
    """Download ``model`` into the library on the calling thread, resuming earlier attempts.

    Args:
        model: from `hub.list_repo_models` (exact sizes and hashes).
        progress: called on this thread with a `DownloadStatus` about 10 times a second and on
            every state change.
        stop: set it (from any thread) to pause; the partial file is kept for resuming.
        token: a Hub token; None uses the saved one.
        models_dir: the library folder (default: `paths.models_dir`).
        store: the persisted queue (default: `paths.downloads_state_path`).
        options: retries and timeouts.

    Returns:
        The final status (``done``), with ``library_name`` and ``path``.

    Raises:
        DownloadStopped: paused through ``stop``.
        SlmdeskError: it failed; the message says why and whether retrying can help.
    """
    models_dir = models_dir or paths.models_dir()
    store = store or DownloadStore()
    task = _prepare_task(model, store, models_dir)
    task.state = State.QUEUED
    store.save(task)
    return _execute(
        task,
        store,
        models_dir,
        progress,
        stop or threading.Event(),
        threading.Event(),
        token,
        options or DownloadOptions(),
    )


# -- the queue ---------------------------------------------------------------------------------


@dataclass
class _Slot:
    task: DownloadTask
    stop: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    last: DownloadStatus | None = None
    paused_by_user: bool = False


class DownloadManager:
    """Several downloads, queued, each on its own ``slmdesk-download-<id>`` thread.

    Callbacks (``on_update``) run on the download threads, never on the caller's: a GUI must
    forward them to its own thread (a queued signal) and must not touch widgets inside them.
    All methods are thread-safe. Call `shutdown` before exiting: it pauses running downloads
    (they resume after `restore` in the next session) and joins every thread.
    """

    def __init__(
        self,
        on_update: ProgressCallback | None = None,
        max_parallel: int = 1,
        token: str | None = None,
        models_dir: Path | None = None,
        store: DownloadStore | None = None,
        options: DownloadOptions | None = None,
    ) -> None:
        self.on_update = on_update
        self.max_parallel = max(1, max_parallel)
        self.token = token
        self.models_dir = models_dir or paths.models_dir()
        self.store = store or DownloadStore()
        self.options = options or DownloadOptions()
        self._slots: dict[str, _Slot] = {}
        self._order: list[str] = []
        self._lock = threading.RLock()
        self._finished = threading.Condition(self._lock)
        self._closed = False
        self._threads: list[threading.Thread] = []

    # -- queries -------------------------------------------------------------------------------

    def status(self, task_id: str) -> DownloadStatus:
        """The latest status of a download.

        Raises:
            SlmdeskError: no such download.
        """
        with self._lock:
            slot = self._slot(task_id)
            return slot.last or self._initial_status(slot.task)

    def statuses(self) -> list[DownloadStatus]:
        """Every download this manager knows, in queue order."""
        with self._lock:
            return [self.status(tid) for tid in self._order]

    def _slot(self, task_id: str) -> _Slot:
        slot = self._slots.get(task_id)
        if slot is None:
            raise SlmdeskError(f"No download with id {task_id!r}.")
        return slot

    def _initial_status(self, task: DownloadTask) -> DownloadStatus:
        done = 0
        for f in task.model.files:
            with contextlib.suppress(DownloadError, OSError):
                p = _inside(self.models_dir, safe_filename(f.filename) + INCOMPLETE_SUFFIX)
                done += min(p.stat().st_size, f.size_bytes) if p.exists() else 0
        if task.state == State.DONE:
            done = task.model.size_bytes
        return DownloadStatus(
            task_id=task.task_id,
            repo_id=task.model.repo_id,
            name=task.model.name,
            state=task.state,
            done_bytes=done,
            total_bytes=task.model.size_bytes,
            error=task.error,
            retryable=task.retryable,
            library_name=task.library_name,
            path=task.path,
        )

    # -- changes -------------------------------------------------------------------------------

    def add(self, model: RemoteModel) -> str:
        """Queue ``model`` (a second add of the same files returns the existing id).

        Returns:
            The download's id.
        """
        with self._lock:
            self._check_open()
            task_id = task_id_for(model)
            slot = self._slots.get(task_id)
            if slot and slot.task.state in (*ACTIVE_STATES, State.PAUSED):
                if slot.task.state == State.PAUSED:
                    self.resume(task_id)
                return task_id
            task = _prepare_task(model, self.store, self.models_dir)
            task.state = State.QUEUED
            task.error = None
            self.store.save(task)
            self._slots[task_id] = _Slot(task)
            if task_id not in self._order:
                self._order.append(task_id)
            self._publish(task_id, self._initial_status(task))
            self._pump()
            return task_id

    def restore(self) -> list[str]:
        """Load the persisted queue: unfinished downloads are queued again, paused stay paused.

        Returns:
            The ids of the downloads loaded.
        """
        loaded = []
        with self._lock:
            self._check_open()
            for task in self.store.load():
                if task.task_id in self._slots:
                    continue
                if task.state in (State.DONE, State.CANCELLED):
                    self.store.remove(task.task_id)
                    continue
                if task.state in ACTIVE_STATES:
                    task.state = State.QUEUED
                    self.store.save(task)
                self._slots[task.task_id] = _Slot(task)
                self._order.append(task.task_id)
                loaded.append(task.task_id)
            self._pump()
        return loaded

    def pause(self, task_id: str) -> None:
        """Pause a queued or running download; its partial file is kept."""
        with self._lock:
            slot = self._slot(task_id)
            slot.paused_by_user = True
            if slot.thread is not None and slot.thread.is_alive():
                slot.stop.set()  # the thread saves the paused state as it stops
            elif slot.task.state == State.QUEUED:
                slot.task.state = State.PAUSED
                self.store.save(slot.task)
                self._publish(task_id, self._initial_status(slot.task))

    def resume(self, task_id: str) -> None:
        """Resume a paused download (or retry a failed one), from where it stopped."""
        with self._lock:
            self._check_open()
            slot = self._slot(task_id)
            if slot.task.state in (State.PAUSED, State.FAILED) or (
                slot.task.state == State.QUEUED and slot.thread is None
            ):
                slot.stop = threading.Event()
                slot.cancel = threading.Event()
                slot.paused_by_user = False
                slot.task.state = State.QUEUED
                slot.task.error = None
                self.store.save(slot.task)
                self._publish(task_id, self._initial_status(slot.task))
                self._pump()

    retry = resume

    def cancel(self, task_id: str) -> None:
        """Stop a download and delete its partial files."""
        with self._lock:
            slot = self._slot(task_id)
            if slot.thread is not None and slot.thread.is_alive():
                slot.cancel.set()
                slot.stop.set()  # also wakes a retry wait at once
                return
            _remove_partials(slot.task, self.models_dir)
            self.store.remove(task_id)
            slot.task.state = State.CANCELLED
            self._publish(task_id, replace(self._initial_status(slot.task), done_bytes=0))

    def forget(self, task_id: str) -> None:
        """Drop a finished, failed or cancelled download from the list."""
        with self._lock:
            slot = self._slot(task_id)
            if slot.thread is not None and slot.thread.is_alive():
                raise SlmdeskError("Pause or cancel the download first.")
            if slot.task.state in (State.FAILED, State.PAUSED):
                _remove_partials(slot.task, self.models_dir)
            self.store.remove(task_id)
            del self._slots[task_id]
            self._order.remove(task_id)

    def wait(self, task_id: str, timeout: float | None = None) -> DownloadStatus:
        """Block until the download is done, failed, cancelled or paused; returns its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._finished:
            while True:
                slot = self._slot(task_id)
                running = slot.thread is not None and slot.thread.is_alive()
                if not running and slot.task.state not in (State.QUEUED,):
                    return self.status(task_id)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return self.status(task_id)
                self._finished.wait(remaining if remaining is not None else 0.5)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Pause every running download and join all threads (queued ones stay queued)."""
        with self._lock:
            self._closed = True
            for slot in self._slots.values():
                slot.stop.set()
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            # Downloads the shutdown paused resume on the next start.
            for slot in self._slots.values():
                if slot.task.state == State.PAUSED and not slot.paused_by_user:
                    slot.task.state = State.QUEUED
                    self.store.save(slot.task)

    # -- internals -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SlmdeskError("The download manager has been shut down.")

    def _publish(self, task_id: str, status: DownloadStatus) -> None:
        slot = self._slots.get(task_id)
        if slot is not None:
            slot.last = status
        if self.on_update is not None:
            try:
                self.on_update(status)
            except Exception:  # a broken listener must not break the download
                log.exception("download progress callback failed")

    def _pump(self) -> None:
        """Start queued downloads while fewer than ``max_parallel`` run."""
        if self._closed:
            return
        running = sum(
            1 for s in self._slots.values() if s.thread is not None and s.thread.is_alive()
        )
        for task_id in self._order:
            if running >= self.max_parallel:
                break
            slot = self._slots[task_id]
            if slot.task.state != State.QUEUED or (slot.thread and slot.thread.is_alive()):
                continue
            slot.stop.clear()
            slot.cancel.clear()
            thread = threading.Thread(
                target=self._run, args=(slot,), name=f"slmdesk-download-{task_id}", daemon=True
            )
            slot.thread = thread
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            slot.task.state = State.DOWNLOADING  # claimed, so _pump does not start it twice
            running += 1
            thread.start()

    def _run(self, slot: _Slot) -> None:
        task_id = slot.task.task_id

        def forward(status: DownloadStatus) -> None:
            with self._lock:
                self._publish(task_id, status)

        try:
            _execute(
                slot.task,
                self.store,
                self.models_dir,
                forward,
                slot.stop,
                slot.cancel,
                self.token,
                self.options,
            )
        except SlmdeskError:
            pass  # recorded in the task's state and error, reported through on_update
        except Exception as exc:  # a bug: keep the thread's failure visible
            log.exception("download %s crashed", task_id)
            slot.task.state = State.FAILED
            slot.task.error = f"Unexpected problem ({type(exc).__name__}: {exc})."
            with contextlib.suppress(Exception):
                self.store.save(slot.task)
            forward(self._initial_status(slot.task))
        finally:
            with self._lock:
                slot.thread = None  # this thread is ending: it no longer counts as running
                if slot.task.state == State.CANCELLED:
                    self._publish(task_id, replace(self._initial_status(slot.task), done_bytes=0))
                self._finished.notify_all()
                self._pump()
