"""The inference worker: one named QThread that owns a model and writes replies.

`InferenceWorker` lives on its own thread ("slmdesk-inference" for the chat; the side-by-side
view runs two more, "slmdesk-ab-original" and "slmdesk-ab-optimized") and owns a `ChatEngine`.
Requests arrive as queued signals from an `InferenceClient` on the GUI thread.

- A model load is a `Job` (`slmdesk.ui.runtime.jobs`): progress, cancel, result and error come
  back like any other job's. The newest load wins: a new load cancels the ones still pending, and
  those report ``cancelled`` (never ``succeeded``), so only the last one ends loaded.
- A reply is a `ChatSession` turn (`slmdesk.chat.session`): the user's message is saved before
  generation, the reply at least once a second while it streams and when it ends — a killed
  process loses at most the last second. Without a store (the A/B view) the session keeps the
  conversation in memory. Streamed text goes through the job model's `Throttle`: at most one
  ``chunk`` signal every `UPDATE_INTERVAL`, however fast tokens come.
- Stop is a `threading.Event` per reply, set directly from the GUI thread: the worker's event
  loop is busy while it generates, so a queued signal would arrive after the reply.
- The window's local server queues its requests on this same thread
  (`slmdesk.ui.runtime.shared_inference`), so a request may leave another model in the engine:
  the next chat turn reloads the user's model first and says so (``model_restoring``).
- A model on a remote server (`slmdesk.chat.remote`) is "loaded" the same way: the worker frees
  its local model and owns a `RemoteEngine` instead until the next load or unload; replies go
  through the same `ChatSession`, so stop, regenerate and saving work alike.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from slmdesk.chat.conversations import ConversationStore, Message
from slmdesk.chat.remote import RemoteEngine, RemoteTarget
from slmdesk.chat.session import ChatSession, ReplyEngine
from slmdesk.common.errors import SlmdeskError
from slmdesk.llama.engine import ChatEngine, LoadCancelled
from slmdesk.ui.runtime.jobs import (
    SHUTDOWN_BUDGET,
    Deadline,
    Job,
    JobContext,
    Throttle,
    stop_all,
)

log = logging.getLogger("slmdesk.ui.inference")

THREAD_NAME = "slmdesk-inference"
# Clients whose thread did not stop within the shutdown budget: a QThread destroyed while it
# runs aborts the process, and a worker deleted mid-call crashes it, so they are kept here until
# the process ends.
_ABANDONED: list[InferenceClient] = []


@dataclass
class GenerateRequest:
    """What to do for one reply.

    ``user_text`` is a new user message (None to answer the conversation as it is, e.g. to
    regenerate). ``replace_from`` deletes that message and everything after it first (edit and
    resend, or regenerate the last reply). ``conversation_id`` is ignored by a worker without a
    store (its one conversation is in memory).
    """

    conversation_id: int
    user_text: str | None
    sampling: dict[str, Any] = field(default_factory=dict)
    replace_from: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass
class LoadRequest:
    """A model load and the `Job` that reports it."""

    job: Job
    path: str
    context_length: int
    n_threads: int
    n_gpu_layers: int | None = None  # None: slmdesk decides from the device's free memory
    remote: RemoteTarget | None = None  # a model on a server instead of ``path``


class _Signals:
    """`SessionListener` that turns a session's events into the worker's signals."""

    def __init__(self, worker: InferenceWorker, cid: int) -> None:
        self.worker, self.cid = worker, cid
        self.chunks: Throttle[tuple[int, str]] = Throttle(
            lambda item: worker.chunk.emit(*item), combine=lambda a, b: (b[0], a[1] + b[1])
        )

    def messages_removed(self, ids: list[int]) -> None:
        self.worker.messages_removed.emit(self.cid, ids)

    def user_saved(self, message: Message) -> None:
        self.worker.user_saved.emit(self.cid, message)

    def reply_started(self, message: Message) -> None:
        self.worker.reply_started.emit(self.cid, message)

    def text(self, message_id: int, piece: str) -> None:
        self.chunks.push((message_id, piece))


class InferenceWorker(QObject):
    """Runs on its inference thread; only the events in requests are touched from outside."""

    unloaded = Signal()
    messages_removed = Signal(int, list)  # conversation id, removed message ids
    user_saved = Signal(int, object)  # conversation id, Message
    reply_started = Signal(int, object)  # conversation id, Message (empty, unfinished)
    chunk = Signal(int, str)  # message id, text to append
    reply_finished = Signal(int, object)  # conversation id, dict: message, timings, notes
    reply_failed = Signal(int, str)  # conversation id, message
    # The user's model is being loaded again before a reply (something else used the engine).
    model_restoring = Signal(str)  # the model file's path

    def __init__(self, store: ConversationStore | None) -> None:
        super().__init__()
        self.store = store
        self.engine = ChatEngine()
        self.remote: RemoteEngine | None = None  # set while a remote model is chosen
        self.closing = threading.Event()  # set at shutdown: queued requests are skipped
        # The user's last successful load (path, context, threads), restored before a reply.
        self.user_model: LoadRequest | None = None
        # Run on this thread before each reply (e.g. the server frees an embedding model).
        self.before_reply: list[Callable[[], None]] = []
        # without a store: the one in-memory conversation (the A/B view)
        self.scratch = ChatSession(self.engine) if store is None else None

    @Slot(object)
    def load(self, request: LoadRequest) -> None:
        """Load a model (replacing the current one), reporting through ``request.job``."""
        request.job.execute(lambda context: self._load(context, request))

    def _load(self, context: JobContext, request: LoadRequest) -> dict[str, Any]:
        if self.closing.is_set():
            raise LoadCancelled("Loading was cancelled.")
        self.user_model = None  # a failed or cancelled load leaves nothing to restore
        self.drop_remote()
        if request.remote is not None:
            return self._use_remote(request.remote)
        try:
            loaded = self.engine.load(
                request.path,
                context_length=request.context_length or None,
                n_threads=request.n_threads or None,
                n_gpu_layers=request.n_gpu_layers,
                progress=lambda fraction: context.report(float(fraction), urgent=fraction >= 1),
                cancel=context.cancel_event,
            )
        except SlmdeskError:
            raise
        except Exception as exc:  # llama.cpp can raise anything; the app must live on
            log.exception("loading %s failed", request.path)
            raise SlmdeskError(f"The model could not be loaded: {exc}") from exc
        if self.scratch is not None:
            self.scratch.reset()
        self.user_model = request
        return {
            "path": str(loaded.path),
            "context_length": loaded.context_length,
            "n_threads": loaded.n_threads,
            "format": loaded.chat_format.description,
            "base_model": loaded.chat_format.base_model,
            "load_seconds": loaded.load_seconds,
            "cpu_variant": loaded.cpu_variant,
        }

    def _use_remote(self, target: RemoteTarget) -> dict[str, Any]:
        """Chat through ``target``'s server from now on (the local model is freed)."""
        self.engine.unload()
        self.remote = RemoteEngine(target)  # checks the address and key; sends nothing yet
        return {
            "path": self.remote.base,
            "context_length": 0,
            "n_threads": 0,
            "format": self.remote.format_description,
            "base_model": False,
            "load_seconds": 0.0,
            "cpu_variant": "remote",
            "remote": True,
            "server": target.label,
            "model": target.model,
        }

    def drop_remote(self) -> None:
        """Forget the remote model (its connections are closed)."""
        remote, self.remote = self.remote, None
        if remote is not None:
            remote.unload()

    @property
    def active_engine(self) -> ReplyEngine:
        """The remote engine while a remote model is chosen, else the local one."""
        return self.remote if self.remote is not None else self.engine

    @Slot()
    def unload(self) -> None:
        """Free the model's memory."""
        self.user_model = None
        self.drop_remote()
        self.engine.unload()
        self.unloaded.emit()

    def _restore_user_model(self) -> None:
        """Load the user's model again when the engine holds another one (or none) since a
        server request used it; raises the load's SlmdeskError."""
        wanted = self.user_model
        if wanted is None:
            return
        loaded = self.engine.loaded
        if loaded is not None and loaded.path == Path(wanted.path):
            return
        self.model_restoring.emit(wanted.path)
        self.engine.load(
            wanted.path,
            context_length=wanted.context_length or None,
            n_threads=wanted.n_threads or None,
            n_gpu_layers=wanted.n_gpu_layers,
        )

    @Slot()
    def reset_conversation(self) -> None:
        """Start the in-memory conversation over (workers without a store)."""
        if self.scratch is not None:
            self.scratch.reset()

    @Slot(object)
    def generate(self, request: GenerateRequest) -> None:
        """One reply through a `ChatSession`; see the module docstring."""
        cid = request.conversation_id
        if self.closing.is_set():
            return  # queued before the window closed: the window is gone
        if self.scratch is not None:
            session = self.scratch
        else:
            session = ChatSession(self.active_engine, self.store, cid)
        listener = _Signals(self, cid)
        try:
            for hook in self.before_reply:
                hook()
            self._restore_user_model()
            reply = session.reply(
                request.user_text,
                request.sampling,
                listener,
                request.stop,
                request.replace_from,
            )
        except SlmdeskError as exc:
            listener.chunks.flush()
            self.reply_failed.emit(cid, str(exc))
            return
        except Exception as exc:  # e.g. the database went away: report, never crash the thread
            log.exception("reply failed")
            listener.chunks.flush()
            self.reply_failed.emit(cid, f"Generation failed: {exc}")
            return
        listener.chunks.flush()
        self.reply_finished.emit(
            cid,
            {
                "message": reply.message,
                "timings": reply.timings,
                "dropped": reply.dropped,
                "format": reply.format_description,
            },
        )


class InferenceClient(QObject):
    """The GUI thread's handle on one inference thread: starts it, sends requests, stops it.

    ``load_progress``, ``loaded`` and ``load_failed`` speak for the newest load only; a load
    superseded by a newer one reports ``cancelled`` on its own `Job` and nothing here.
    """

    load_progress = Signal(float)
    loaded = Signal(object)  # dict: path, context_length, n_threads, format, load_seconds, ...
    load_failed = Signal(str)
    # The worker's reply signals, re-emitted on the GUI thread (a signal-to-signal connection to
    # an object living there is queued), so plain functions connected here may touch widgets;
    # a lambda connected to the worker's own signal would run on the inference thread.
    chunk = Signal(int, str)
    reply_finished = Signal(int, object)
    reply_failed = Signal(int, str)
    _load = Signal(object)
    _unload = Signal()
    _reset = Signal()
    _generate = Signal(object)

    def __init__(self, store: ConversationStore | None, thread_name: str = THREAD_NAME) -> None:
        super().__init__()
        self.name = thread_name
        self.thread = QThread()
        self.thread.setObjectName(thread_name)
        self.worker = InferenceWorker(store)
        self.worker.moveToThread(self.thread)
        self._load.connect(self.worker.load)
        self._unload.connect(self.worker.unload)
        self._reset.connect(self.worker.reset_conversation)
        self._generate.connect(self.worker.generate)
        self.worker.reply_finished.connect(self._on_reply_ended)
        self.worker.reply_failed.connect(self._on_reply_ended)
        self.worker.chunk.connect(self.chunk)
        self.worker.reply_finished.connect(self.reply_finished)
        self.worker.reply_failed.connect(self.reply_failed)
        self._loads: list[Job] = []  # pending, oldest first; only the last may succeed
        self._replies: list[GenerateRequest] = []  # queued or being written
        self._stopped = False
        self.thread.start()  # Qt names the OS thread after objectName

    # -- loading -----------------------------------------------------------------------------

    def load(
        self,
        path: Path | str,
        context_length: int = 0,
        n_threads: int = 0,
        n_gpu_layers: int | None = None,
        remote: RemoteTarget | None = None,
    ) -> Job:
        """Load ``path`` on the worker (0 picks the defaults); the newest load wins.

        With ``remote``, the worker chats through that server's model instead (``path`` is
        then only the job's name).
        """
        for older in self._loads:
            older.cancel()
        job = Job(f"load-{Path(path).name}", discard_on_cancel=True)
        self._loads.append(job)
        job.progress.connect(lambda fraction: self._on_load_progress(job, fraction))
        job.succeeded.connect(lambda info: self._on_load_succeeded(job, info))
        job.failed.connect(lambda exc: self._on_load_failed(job, exc))
        job.cancelled.connect(lambda: self._on_load_cancelled(job))
        if self._stopped:
            job.abandon()
        else:
            self._load.emit(
                LoadRequest(
                    job, str(path), int(context_length), int(n_threads), n_gpu_layers, remote
                )
            )
        return job

    @property
    def loading(self) -> bool:
        """Whether a load is queued or running."""
        return bool(self._loads)

    def cancel_loading(self) -> None:
        """Cancel the loads in progress (``load_failed`` says so)."""
        for job in self._loads:
            job.cancel()

    def _newest(self, job: Job) -> bool:
        """Forget ``job`` (it ended); True when it was the newest load."""
        newest = bool(self._loads) and self._loads[-1] is job
        if job in self._loads:
            self._loads.remove(job)
        return newest

    def _on_load_progress(self, job: Job, fraction: float) -> None:
        if self._loads and self._loads[-1] is job:
            self.load_progress.emit(fraction)

    def _on_load_succeeded(self, job: Job, info: dict[str, Any]) -> None:
        if self._newest(job):
            self.loaded.emit(info)

    def _on_load_failed(self, job: Job, exc: BaseException) -> None:
        if self._newest(job):
            message = str(exc) if isinstance(exc, SlmdeskError) else f"Unexpected problem: {exc}"
            self.load_failed.emit(message)

    def _on_load_cancelled(self, job: Job) -> None:
        if self._newest(job):
            # A load cancelled just as it finished leaves the model in memory: free it so the
            # window's "no model loaded" is true.
            self.unload()
            self.load_failed.emit("Loading was cancelled.")

    # -- replies -----------------------------------------------------------------------------

    def unload(self) -> None:
        """Ask the worker to free the model."""
        if not self._stopped:
            self._unload.emit()

    def reset_conversation(self) -> None:
        """Forget the in-memory conversation (a worker without a store)."""
        if not self._stopped:
            self._reset.emit()

    def generate(self, request: GenerateRequest) -> None:
        """Queue a reply."""
        if self._stopped:
            return
        self._replies.append(request)
        self._generate.emit(request)

    def stop(self) -> None:
        """Stop the reply being written (within one token), and any queued one."""
        for request in self._replies:
            request.stop.set()

    @Slot()
    def _on_reply_ended(self, *_args: object) -> None:
        if self._replies:
            self._replies.pop(0)

    # -- shutdown (the `Stoppable` protocol) -------------------------------------------------

    def request_stop(self) -> None:
        """Stop the reply, cancel loads, end the thread's loop; nothing more is reported."""
        self._stopped = True
        self.worker.closing.set()
        self.stop()
        for job in self._loads:
            job.close()
        self._loads.clear()
        self.thread.quit()

    def wait_stopped(self, timeout: float) -> bool:
        """Wait for the thread, then free the model. A thread still busy after ``timeout``
        (a long native call) is left to end with the process."""
        if not self.thread.wait(max(0, int(timeout * 1000))):
            log.error("the thread %s did not stop in time", self.name)
            _ABANDONED.append(self)  # its thread and worker must outlive the call in progress
            return False
        self.worker.drop_remote()
        self.worker.engine.unload()
        return True

    def shutdown(self, budget: float = SHUTDOWN_BUDGET) -> bool:
        """Stop within ``budget`` seconds and free the model. Idempotent; True when stopped."""
        return not stop_all([self], Deadline(budget))
