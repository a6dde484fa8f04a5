"""One download from start to end on the calling thread: plan, disk check, transfers, install.

Each part of the model is brought to a verified ``*.incomplete`` file by a `FileTransfer`; only
when every part is complete are they renamed into the models folder and registered with
`Library.add_managed_file`, so the library never sees half a model. The task's state is saved in
the `DownloadStore` at every change, so a restart resumes it.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from slmdesk.common import paths
from slmdesk.common.errors import LibraryError, SlmdeskError
from slmdesk.hub.downloads.names import (
    INCOMPLETE_SUFFIX,
    final_path,
    partial_bytes,
    partial_path,
    remove_partials,
    safe_filename,
)
from slmdesk.hub.downloads.status import (
    DownloadError,
    DownloadStatus,
    DownloadStopped,
    ProgressCallback,
    State,
    check_stop,
)
from slmdesk.hub.downloads.store import DownloadStore, DownloadTask, prepare_task
from slmdesk.hub.downloads.transfer import DownloadOptions, FileTransfer, Meter
from slmdesk.hub.listing import (
    HubError,
    HubOfflineError,
    HubServerError,
    RemoteFile,
    RemoteModel,
    check_reachable,
    hub_endpoint,
    is_offline_mode,
    resolve_token,
)
from slmdesk.models.library.content import DuplicateModelError

log = logging.getLogger(__name__)

DISK_MARGIN_BYTES = 64 * 1024 * 1024  # leave the system some room


@dataclass(frozen=True)
class _Part:
    """One file of the model: where its bytes collect and where it ends up."""

    file: RemoteFile
    partial: Path
    final: Path


class DownloadJob:
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
        self.meter = Meter(task.model.size_bytes, 0)
        self.current: str | None = None

    # -- reporting -----------------------------------------------------------------------------

    def status(self) -> DownloadStatus:
        """The task as it stands, with speed and ETA while downloading."""
        task = self.task
        speed = self.meter.speed() if task.state == State.DOWNLOADING else 0.0
        left = max(0, self.meter.total - self.meter.done)
        return DownloadStatus(
            task_id=task.task_id,
            repo_id=task.model.repo_id,
            name=task.model.name,
            state=task.state,
            done_bytes=self.meter.done,
            total_bytes=self.meter.total,
            speed_bps=speed,
            eta_seconds=left / speed if speed > 0 else None,
            current_file=self.current,
            error=task.error,
            retryable=task.retryable,
            library_name=task.library_name,
            path=task.path,
            duplicate_of=task.duplicate_of,
        )

    def emit(self, force: bool = False) -> None:
        """Call the progress callback (at most every 0.1 s unless ``force``)."""
        if self.progress and (force or self.meter.due()):
            self.progress(self.status())

    def set_state(self, state: State, error: str | None = None, retryable: bool = True) -> None:
        """Record a new state: saved first, then reported.

        A queue file that cannot be written (often the same full disk) is logged, not raised:
        the download itself is unharmed, and raising here would hide why a download failed. A
        restart then finds the older state and checks the files again.
        """
        self.task.state = state
        self.task.error = error
        self.task.retryable = retryable
        save_quietly(self.store, self.task)
        self.emit(force=True)

    # -- the work ------------------------------------------------------------------------------

    def plan(self) -> list[_Part]:
        """Every part with its partial and final paths, names made safe and distinct."""
        parts = []
        names: set[str] = set()
        for f in self.task.model.files:
            name = safe_filename(f.filename)
            if name.lower() in names:
                raise DownloadError(f"Two files of this model would both be named {name}.", False)
            names.add(name.lower())
            parts.append(_Part(f, partial_path(self.models_dir, f), final_path(self.models_dir, f)))
        return parts

    def run(self) -> DownloadStatus:
        """Download, verify, move into the library; returns the final status.

        Raises:
            DownloadStopped: paused or cancelled.
            SlmdeskError: failed; the message says why.
        """
        parts = self.plan()
        present = self._already_installed(parts)
        if present is not None:
            return present
        self._refuse_same_content(parts, downloaded=False)
        for part in parts:
            if part.final.exists():
                raise DownloadError(
                    f"A file named {part.final.name} is already in the models folder; remove it "
                    "from the library first to download it again.",
                    retryable=False,
                )
            if not part.file.size_bytes or not (part.file.sha256 or part.file.blob_id):
                raise DownloadError(
                    f"The Hub lists no size or checksum for {part.file.filename}, so it cannot "
                    "be verified.",
                    retryable=False,
                )
        self.meter = Meter(self.meter.total, partial_bytes(self.task.model, self.models_dir))
        self._check_disk()
        self.set_state(State.DOWNLOADING)
        model = self.task.model
        for part in parts:
            self.current = part.file.filename
            FileTransfer(
                model.repo_id,
                model.revision,
                part.file,
                part.partial,
                token=self.token,
                options=self.options,
                meter=self.meter,
                stop=self.stop,
                cancel=self.cancel,
                report=self.emit,
            ).run()
        self.set_state(State.VERIFYING)
        check_stop(self.stop, self.cancel)
        self._refuse_same_content(parts, downloaded=True)
        self._install(parts)
        self._register(parts)
        self.current = None
        self.set_state(State.DONE)
        return self.status()

    def _register(self, parts: list[_Part]) -> None:
        """Add the installed model to the library (removing the files if it is not usable)."""
        from slmdesk.models.library import Library

        model = self.task.model
        try:
            entry = Library(models_dir=self.models_dir).add_managed_file(
                parts[0].final,
                provenance={
                    "source": "hub",
                    "repo": model.repo_id,
                    "file": model.files[0].filename,
                    "sha256": model.files[0].sha256,
                    "revision": model.revision,
                    "files": [f.filename for f in model.files],
                },
                sha256=model.files[0].sha256,
                refuse_duplicate=True,
            )
        except DuplicateModelError as exc:
            for part in parts:  # another download or an import got there first
                part.final.unlink(missing_ok=True)
            raise DuplicateModelError(exc.name, exc.path, removed_copy=True) from None
        except SlmdeskError as exc:
            for part in parts:
                part.final.unlink(missing_ok=True)
            raise DownloadError(
                f"The downloaded file is not a usable GGUF model ({exc}); it was deleted.",
                retryable=False,
            ) from None
        self.task.library_name = entry.name
        self.task.path = str(entry.path)

    def _refuse_same_content(self, parts: list[_Part], downloaded: bool) -> None:
        """Keep no second copy of bytes already in the library (the rule imports follow too).

        Before the first byte the Hub's SHA-256 decides; once downloaded, the file's own bytes
        (a file kept in git has no listed SHA-256). Partial files are removed on refusal.

        Raises:
            DuplicateModelError: the library holds these bytes as another entry.
        """
        from slmdesk.models.library import DuplicateModelError, Library

        first = parts[0]
        if not downloaded and first.file.sha256 is None:
            return
        entry = Library(models_dir=self.models_dir).find_same_content(
            self.task.model.size_bytes,
            first.file.sha256,
            first.partial if downloaded else None,
        )
        if entry is None:
            return
        for part in parts:
            part.partial.unlink(missing_ok=True)
        raise DuplicateModelError(entry.name, entry.path, removed_copy=downloaded)

    def finish_as_duplicate(self, exc: DuplicateModelError) -> None:
        """End as done: the model is in the library, as the entry that already held its bytes."""
        self.task.library_name = exc.name
        self.task.path = str(exc.path)
        self.task.duplicate_of = exc.name
        self.current = None
        self.meter.done = self.meter.total
        self.set_state(State.DONE)

    def _already_installed(self, parts: list[_Part]) -> DownloadStatus | None:
        """The done status when this very download is already in the library, else None."""
        from slmdesk.models.library import Library

        if not all(part.final.exists() for part in parts):
            return None
        model = self.task.model
        for entry in Library(models_dir=self.models_dir).entries():
            prov = entry.provenance
            if (
                entry.path == parts[0].final
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

    def _check_disk(self) -> None:
        """Refuse before the first byte when the model cannot fit on the disk."""
        need = self.meter.total - self.meter.done
        free = shutil.disk_usage(self.models_dir).free
        if need + DISK_MARGIN_BYTES > free:
            raise DownloadError(
                f"Not enough disk space: this model needs {need / 1e9:.2f} GB more and "
                f"{free / 1e9:.2f} GB are free in {self.models_dir}.",
                retryable=True,
            )

    def _install(self, parts: list[_Part]) -> None:
        """Flush, then rename every part into place (last part first, first part last).

        Only the GGUF magic is checked here; the library validates the whole header as it
        registers the model, and `_register` removes the files if that fails.
        """
        for part in parts:
            with open(part.partial, "rb") as handle:
                magic = handle.read(4)
                os.fsync(handle.fileno())
            if magic != b"GGUF":
                for other in parts:
                    other.partial.unlink(missing_ok=True)
                raise DownloadError(
                    f"{part.partial.name.removesuffix(INCOMPLETE_SUFFIX)} matches the Hub's "
                    "checksum but is not a GGUF model file; it was deleted.",
                    retryable=False,
                )
        for part in reversed(parts):
            os.replace(part.partial, part.final)


def save_quietly(store: DownloadStore, task: DownloadTask, remove: bool = False) -> None:
    """Save (or remove) ``task`` in the queue file; a failure to write it is only logged."""
    try:
        if remove:
            store.remove(task.task_id)
        else:
            store.save(task)
    except OSError as exc:
        log.warning("could not write the download queue in %s: %s", store.path, exc)


def _retryable(exc: SlmdeskError) -> bool:
    """Whether the user's Retry can help after ``exc``."""
    if isinstance(exc, DownloadError):
        return exc.retryable
    if isinstance(exc, LibraryError):
        return False
    return not isinstance(exc, HubError) or isinstance(exc, HubServerError | HubOfflineError)


def execute(
    task: DownloadTask,
    store: DownloadStore,
    models_dir: Path,
    progress: ProgressCallback | None,
    stop: threading.Event,
    cancel: threading.Event,
    token: str | None,
    options: DownloadOptions,
) -> DownloadStatus:
    """Run a task and record how it ended (paused, cancelled, failed, done).

    Raises:
        DownloadStopped: paused or cancelled (the state is saved accordingly).
        SlmdeskError: failed (saved as failed with the message).
    """
    job = DownloadJob(
        task, store, models_dir, progress, stop, cancel, resolve_token(token), options
    )
    try:
        if is_offline_mode():
            raise HubOfflineError(
                "You are offline (HF_HUB_OFFLINE is set): downloads are turned off; your "
                "library and chats still work."
            )
        check_reachable(hub_endpoint())
        return job.run()
    except DuplicateModelError as exc:
        job.finish_as_duplicate(exc)
        raise
    except DownloadStopped as exc:
        if exc.cancelled:
            remove_partials(task.model, models_dir)
            save_quietly(store, task, remove=True)
            task.state = State.CANCELLED
            job.emit(force=True)
        else:
            job.set_state(State.PAUSED)
        raise
    except SlmdeskError as exc:
        job.set_state(State.FAILED, str(exc), _retryable(exc))
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
    task = prepare_task(model, store, models_dir)
    task.state = State.QUEUED
    save_quietly(store, task)
    return execute(
        task,
        store,
        models_dir,
        progress,
        stop or threading.Event(),
        threading.Event(),
        token,
        options or DownloadOptions(),
    )
