"""Several downloads: a queue with pause, resume, cancel and retry, each on its own thread.

The window calls the commands (`DownloadManager.add`, ``pause``, ``resume``, ``cancel``,
``forget``) on its GUI thread, so they only change the in-memory queue and return at once. Every
file operation — saving the queue file, measuring or deleting partial files — is done by the
manager's own thread (``slmdesk-download-queue``), which runs the commands' follow-up work in the
order the commands were given. The lock guards the in-memory queue only: no file I/O and no
callback ever runs while it is held.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path

from slmdesk.common import paths
from slmdesk.common.errors import INTERNAL_ERROR_MESSAGE, SlmdeskError
from slmdesk.hub.downloads.job import execute
from slmdesk.hub.downloads.names import partial_bytes, remove_partials, task_id_for
from slmdesk.hub.downloads.status import (
    ACTIVE_STATES,
    DownloadStatus,
    ProgressCallback,
    State,
)
from slmdesk.hub.downloads.store import DownloadStore, DownloadTask, prepare_task
from slmdesk.hub.downloads.transfer import DownloadOptions
from slmdesk.hub.listing import RemoteModel

log = logging.getLogger(__name__)

_Command = Callable[[], None]


def _status_for(task: DownloadTask, done_bytes: int) -> DownloadStatus:
    """The status of a download that is not running (its thread reports its own)."""
    total = task.model.size_bytes
    return DownloadStatus(
        task_id=task.task_id,
        repo_id=task.model.repo_id,
        name=task.model.name,
        state=task.state,
        done_bytes=total if task.state == State.DONE else min(done_bytes, total),
        total_bytes=total,
        error=task.error,
        retryable=task.retryable,
        library_name=task.library_name,
        path=task.path,
        duplicate_of=task.duplicate_of,
    )


@dataclass
class _Slot:
    task: DownloadTask
    status: DownloadStatus
    prepared: bool = True  # False until the queue thread has read the store and partial files
    stop: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    paused_by_user: bool = False

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class DownloadManager:
    """Several downloads, queued, each on its own ``slmdesk-download-<id>`` thread.

    Callbacks (``on_update``) run on the manager's threads, never on the caller's: a GUI must
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
        self._models_dir = models_dir
        self.store = store or DownloadStore()
        self.options = options or DownloadOptions()
        self._slots: dict[str, _Slot] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._commands: queue.SimpleQueue[_Command | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None

    # -- queries -------------------------------------------------------------------------------

    @property
    def models_dir(self) -> Path:
        """Where new downloads go: the folder given, else the models folder chosen now (a
        folder changed in Settings applies to the next download without a restart)."""
        return self._models_dir or paths.models_dir()

    def status(self, task_id: str) -> DownloadStatus:
        """The latest status of a download (from memory: no file is read).

        Raises:
            SlmdeskError: no such download.
        """
        with self._lock:
            return self._slot(task_id).status

    # -- commands (return at once; file work follows on the queue thread) ----------------------

    def add(self, model: RemoteModel) -> str:
        """Queue ``model`` (a second add of the same files returns the existing id).

        Returns:
            The download's id.

        Raises:
            SlmdeskError: the manager has been shut down.
        """
        task_id = task_id_for(model)
        with self._lock:
            self._check_open()
            slot = self._slots.get(task_id)
            if slot is not None and slot.task.state in (*ACTIVE_STATES, State.PAUSED):
                paused = slot.task.state == State.PAUSED
            else:
                paused = False
                task = DownloadTask(task_id=task_id, model=model)
                slot = _Slot(task, _status_for(task, 0), prepared=False)
                self._slots[task_id] = slot
                if task_id not in self._order:
                    self._order.append(task_id)
                self._submit(lambda: self._prepare(task_id, task))
        if paused:
            self.resume(task_id)
        return task_id

    def restore(self) -> list[str]:
        """Load the persisted queue: unfinished downloads are queued again, paused stay paused.

        Blocks until the queue thread has read the file (call it off the GUI thread).

        Returns:
            The ids of the downloads loaded.
        """
        result: Future[list[str]] = Future()

        def run() -> None:
            try:
                result.set_result(self._restore())
            except BaseException as exc:
                result.set_exception(exc)

        with self._lock:
            self._check_open()
            self._submit(run)
        return result.result()

    def pause(self, task_id: str) -> None:
        """Pause a queued or running download; its partial file is kept."""
        with self._lock:
            slot = self._slot(task_id)
            slot.paused_by_user = True
            if slot.running:
                slot.stop.set()  # the download thread saves the paused state as it stops
                return
            if slot.task.state != State.QUEUED:
                return
            slot.task.state = State.PAUSED
            self._set_status(slot, replace(slot.status, state=State.PAUSED))
            self._submit(lambda: self._persist(task_id))

    def resume(self, task_id: str) -> None:
        """Resume a paused download (or retry a failed one), from where it stopped."""
        with self._lock:
            self._check_open()
            slot = self._slot(task_id)
            idle_queued = slot.task.state == State.QUEUED and slot.thread is None
            if not (slot.task.state in (State.PAUSED, State.FAILED) or idle_queued):
                return
            slot.stop = threading.Event()
            slot.cancel = threading.Event()
            slot.paused_by_user = False
            slot.task.state = State.QUEUED
            slot.task.error = None
            self._set_status(
                slot,
                replace(
                    slot.status, state=State.QUEUED, error=None, speed_bps=0.0, eta_seconds=None
                ),
            )
            self._submit(lambda: self._persist(task_id))

    retry = resume

    def cancel(self, task_id: str) -> None:
        """Stop a download and delete its partial files."""
        with self._lock:
            slot = self._slot(task_id)
            if slot.running:
                slot.cancel.set()
                slot.stop.set()  # also wakes a retry wait at once
                return
            slot.task.state = State.CANCELLED
            status = replace(slot.status, state=State.CANCELLED, done_bytes=0)
            self._set_status(slot, status)
            model = slot.task.model
            self._submit(lambda: self._discard(task_id, model, status))

    def forget(self, task_id: str) -> None:
        """Drop a finished, failed or cancelled download from the list.

        Raises:
            SlmdeskError: it is still running.
        """
        with self._lock:
            slot = self._slot(task_id)
            if slot.running:
                raise SlmdeskError("Pause or cancel the download first.")
            del self._slots[task_id]
            self._order.remove(task_id)
            if slot.task.state in (State.FAILED, State.PAUSED):
                model = slot.task.model
                self._submit(lambda: self._discard(task_id, model))
            else:
                self._submit(lambda: self.store.remove(task_id))

    def wait(self, task_id: str, timeout: float | None = None) -> DownloadStatus:
        """Block until the download is done, failed, cancelled or paused; returns its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                slot = self._slot(task_id)
                if not slot.running and slot.task.state != State.QUEUED:
                    return slot.status
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return slot.status
                self._changed.wait(min(remaining, 0.5) if remaining is not None else 0.5)

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
            worker = self._worker
            if worker is not None:
                self._commands.put(self._requeue_paused_by_shutdown)
                self._commands.put(None)
        if worker is not None:
            worker.join(max(0.0, deadline - time.monotonic()))

    # -- the queue thread ----------------------------------------------------------------------

    def _submit(self, command: _Command) -> None:
        """Hand file work to the queue thread (called with the lock held)."""
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._work, name="slmdesk-download-queue", daemon=True
            )
            self._worker.start()
        self._commands.put(command)

    def _work(self) -> None:
        while (command := self._commands.get()) is not None:
            try:
                command()
            except Exception:  # a bug: keep the queue thread alive for the next command
                log.exception("download queue command failed")

    def _prepare(self, task_id: str, provisional: DownloadTask) -> None:
        """Read the stored task and partial files of a new download, save it, start it."""
        task = prepare_task(provisional.model, self.store, self.models_dir)
        done = partial_bytes(task.model, self.models_dir)
        with self._lock:
            slot = self._slots.get(task_id)
            if slot is None or slot.task is not provisional:
                return  # forgotten, or replaced by a newer add, meanwhile
            task.state = provisional.state  # queued, or what the user chose since
            task.error = None
            slot.task = task
            slot.prepared = True
            status = _status_for(task, done)
            if task.state == State.CANCELLED:
                status = replace(status, done_bytes=0)
            self._set_status(slot, status)
        self.store.save(task)
        self._emit(status)
        self._pump()

    def _persist(self, task_id: str) -> None:
        """Save a task after a command changed it, refresh its bytes on disk, start what can."""
        with self._lock:
            slot = self._slots.get(task_id)
            if slot is None or not slot.prepared:
                return  # `_prepare` saves it
            task = slot.task
        self.store.save(task)
        done = partial_bytes(task.model, self.models_dir)
        with self._lock:
            refreshed = None
            if not slot.running and slot.status.state in (State.QUEUED, State.PAUSED):
                refreshed = replace(slot.status, done_bytes=min(done, slot.status.total_bytes))
                self._set_status(slot, refreshed)
        if refreshed is not None:
            self._emit(refreshed)  # reported here, not on the caller's thread
        self._pump()

    def _discard(
        self, task_id: str, model: RemoteModel, report: DownloadStatus | None = None
    ) -> None:
        """Delete a cancelled or forgotten download's partial files and stored entry."""
        remove_partials(model, self.models_dir)
        self.store.remove(task_id)
        if report is not None:
            self._emit(report)

    def _restore(self) -> list[str]:
        loaded = []
        for task in self.store.load():
            with self._lock:
                if task.task_id in self._slots:
                    continue
            if task.state in (State.DONE, State.CANCELLED):
                self.store.remove(task.task_id)
                continue
            if task.state in ACTIVE_STATES:
                task.state = State.QUEUED
                self.store.save(task)
            done = partial_bytes(task.model, self.models_dir)
            with self._lock:
                if task.task_id in self._slots:
                    continue
                self._slots[task.task_id] = _Slot(task, _status_for(task, done))
                self._order.append(task.task_id)
            loaded.append(task.task_id)
        self._pump()
        return loaded

    def _requeue_paused_by_shutdown(self) -> None:
        """Downloads the shutdown paused resume on the next start."""
        with self._lock:
            tasks = [
                s.task
                for s in self._slots.values()
                if s.task.state == State.PAUSED and not s.paused_by_user
            ]
            for task in tasks:
                task.state = State.QUEUED
        for task in tasks:
            self.store.save(task)

    def _pump(self) -> None:
        """Start queued downloads while fewer than ``max_parallel`` run."""
        with self._lock:
            if self._closed:
                return
            running = sum(1 for s in self._slots.values() if s.running)
            for task_id in self._order:
                if running >= self.max_parallel:
                    break
                slot = self._slots[task_id]
                if not slot.prepared or slot.task.state != State.QUEUED or slot.running:
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

    # -- the download threads ------------------------------------------------------------------

    def _run(self, slot: _Slot) -> None:
        task = slot.task

        def forward(status: DownloadStatus) -> None:
            with self._lock:
                self._set_status(slot, status)
            self._emit(status)

        try:
            execute(
                task,
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
        except Exception:  # a bug: log the traceback, tell the user in one sentence
            log.exception("download %s crashed", task.task_id)
            task.state = State.FAILED
            task.error = INTERNAL_ERROR_MESSAGE
            try:
                self.store.save(task)
            except Exception:
                log.exception("could not save the failed download %s", task.task_id)
            with self._lock:
                done = slot.status.done_bytes
            forward(_status_for(task, done))
        finally:
            cancelled = None
            with self._lock:
                slot.thread = None  # this thread is ending: it no longer counts as running
                if task.state == State.CANCELLED:
                    cancelled = replace(_status_for(task, 0), done_bytes=0)
                    self._set_status(slot, cancelled)
                self._changed.notify_all()
                if not self._closed:
                    self._submit(self._pump)
            if cancelled is not None:
                self._emit(cancelled)

    # -- helpers -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SlmdeskError("The download manager has been shut down.")

    def _slot(self, task_id: str) -> _Slot:
        slot = self._slots.get(task_id)
        if slot is None:
            raise SlmdeskError(f"No download with id {task_id!r}.")
        return slot

    def _set_status(self, slot: _Slot, status: DownloadStatus) -> None:
        """Record the latest status (called with the lock held) and wake `wait`."""
        slot.status = status
        self._changed.notify_all()

    def _emit(self, status: DownloadStatus) -> None:
        """Call ``on_update`` (never with the lock held)."""
        if self.on_update is None:
            return
        try:
            self.on_update(status)
        except Exception:  # a broken listener must not break the download
            log.exception("download progress callback failed")
