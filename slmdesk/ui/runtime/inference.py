"""The inference thread: one named QThread that owns the model and writes replies.

`InferenceWorker` lives on the "slmdesk-inference" thread and owns the `ChatEngine`. Requests
arrive as queued signals from `InferenceClient` (on the GUI thread); results leave as signals and
are delivered back on the GUI thread. Stop and load-cancel are `threading.Event` objects set
directly from the GUI thread, because the worker's event loop is busy while it generates.

The worker also does the chat's database writes — the user's message (committed before generation
starts), the reply saved as it streams (at least every second) and when it ends — so a killed
process loses at most the last second of a reply, and the GUI thread never waits on the disk.

Streamed text is coalesced on the worker: at most one ``chunk`` signal every `CHUNK_INTERVAL`
seconds, so the GUI appends tens of times a second however fast tokens come.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from slmdesk.chat.conversations import ConversationStore
from slmdesk.common.errors import SlmdeskError
from slmdesk.llama.engine import ChatEngine, LoadCancelled, SamplingSettings

log = logging.getLogger("slmdesk.ui.inference")

CHUNK_INTERVAL = 1 / 40
SAVE_INTERVAL = 1.0
THREAD_NAME = "slmdesk-inference"


@dataclass
class GenerateRequest:
    """What to do for one reply.

    ``user_text`` is a new user message (None to answer the conversation as it is, e.g. to
    regenerate). ``replace_from`` deletes that message and everything after it first (edit and
    resend, or regenerate the last reply).
    """

    conversation_id: int
    user_text: str | None
    sampling: dict[str, Any] = field(default_factory=dict)
    replace_from: int | None = None


class InferenceWorker(QObject):
    """Runs on the inference thread. Only `stop_event` and `cancel_load` are touched from outside."""

    load_progress = Signal(float)
    loaded = Signal(object)  # dict: path, context_length, n_threads, format, load_seconds
    load_failed = Signal(str)
    unloaded = Signal()
    messages_removed = Signal(int, list)  # conversation id, removed message ids
    user_saved = Signal(int, object)  # conversation id, Message
    reply_started = Signal(int, object)  # conversation id, Message (empty, unfinished)
    chunk = Signal(int, str)  # message id, text to append
    reply_finished = Signal(int, object)  # conversation id, dict: message, timings, notes
    reply_failed = Signal(int, str)  # conversation id, message

    def __init__(self, store: ConversationStore) -> None:
        super().__init__()
        self.store = store
        self.engine = ChatEngine()
        self.stop_event = threading.Event()
        self.cancel_load = threading.Event()

    @Slot(str, int, int)
    def load(self, path: str, context_length: int, n_threads: int) -> None:
        """Load a model (replacing the current one)."""
        self.cancel_load.clear()
        try:
            loaded = self.engine.load(
                path,
                context_length=context_length or None,
                n_threads=n_threads or None,
                progress=self._on_load_progress,
                cancel=self.cancel_load,
            )
        except LoadCancelled:
            self.load_failed.emit("Loading was cancelled.")
            return
        except SlmdeskError as exc:
            self.load_failed.emit(str(exc))
            return
        except Exception as exc:  # llama.cpp can raise anything; the app must live on
            log.exception("loading %s failed", path)
            self.load_failed.emit(f"The model could not be loaded: {exc}")
            return
        self.loaded.emit(
            {
                "path": str(loaded.path),
                "context_length": loaded.context_length,
                "n_threads": loaded.n_threads,
                "format": loaded.chat_format.description,
                "load_seconds": loaded.load_seconds,
                "cpu_variant": loaded.cpu_variant,
            }
        )

    def _on_load_progress(self, fraction: float) -> bool:
        self.load_progress.emit(float(fraction))
        return not self.cancel_load.is_set()

    @Slot()
    def unload(self) -> None:
        """Free the model's memory."""
        self.engine.unload()
        self.unloaded.emit()

    @Slot(object)
    def generate(self, request: GenerateRequest) -> None:
        """Save the user's message, stream the reply, save it; see the module docstring."""
        self.stop_event.clear()
        cid = request.conversation_id
        try:
            if request.replace_from is not None:
                removed = self.store.truncate_after(request.replace_from, inclusive=True)
                self.messages_removed.emit(cid, [m.id for m in removed])
            if request.user_text is not None:
                user = self.store.add_message(cid, "user", request.user_text)
                self.user_saved.emit(cid, user)
            if not self.engine.is_loaded:
                self.reply_failed.emit(cid, "No model is loaded: pick one above the chat.")
                return
            conversation = self.store.get(cid)
            sampling = SamplingSettings.from_dict(request.sampling or conversation.settings)
            reply = self.store.add_message(cid, "assistant", "", finished=False)
        except SlmdeskError as exc:
            self.reply_failed.emit(cid, str(exc))
            return
        except Exception as exc:  # never leave the window waiting for a reply that cannot come
            log.exception("the reply could not be started")
            self.reply_failed.emit(cid, f"The reply could not be started: {exc}")
            return
        self.reply_started.emit(cid, reply)
        self._stream(cid, reply.id, conversation.chat_messages(), sampling)

    def _stream(
        self, cid: int, message_id: int, messages: list[dict[str, str]], sampling: SamplingSettings
    ) -> None:
        text_parts: list[str] = []
        pending: list[str] = []
        last_emit = last_save = time.monotonic()

        def on_token(piece: str) -> None:
            nonlocal last_emit, last_save
            text_parts.append(piece)
            pending.append(piece)
            now = time.monotonic()
            if now - last_emit >= CHUNK_INTERVAL:
                self.chunk.emit(message_id, "".join(pending))
                pending.clear()
                last_emit = now
            if now - last_save >= SAVE_INTERVAL:
                self.store.update_message_text(message_id, "".join(text_parts))
                last_save = now

        try:
            result = self.engine.generate(messages, sampling, on_token, self.stop_event)
        except SlmdeskError as exc:
            self._finish_failed(cid, message_id, "".join(text_parts), str(exc))
            return
        except Exception as exc:
            log.exception("generation failed")
            self._finish_failed(cid, message_id, "".join(text_parts), f"Generation failed: {exc}")
            return
        if pending:
            self.chunk.emit(message_id, "".join(pending))
        timings = result.timings.to_dict()
        try:
            message = self.store.finish_message(message_id, result.text, timings)
        except SlmdeskError as exc:
            self.reply_failed.emit(cid, str(exc))
            return
        except Exception as exc:
            log.exception("the reply could not be saved")
            self.reply_failed.emit(cid, f"The reply could not be saved: {exc}")
            return
        self.reply_finished.emit(
            cid,
            {
                "message": message,
                "timings": timings,
                "dropped": result.dropped_messages,
                "format": result.format_description,
            },
        )

    def _finish_failed(self, cid: int, message_id: int, text: str, error: str) -> None:
        try:
            if text:
                self.store.finish_message(message_id, text, {"finish_reason": "error"})
            else:
                self.store.truncate_after(message_id, inclusive=True)
        except Exception:  # the failure is reported below either way
            log.exception("could not save the failed reply")
        self.reply_failed.emit(cid, error)


class InferenceClient(QObject):
    """The GUI thread's handle on the inference thread: starts it, sends requests, stops it."""

    _load = Signal(str, int, int)
    _unload = Signal()
    _generate = Signal(object)

    def __init__(self, store: ConversationStore) -> None:
        super().__init__()
        self.thread = QThread()
        self.thread.setObjectName(THREAD_NAME)
        self.worker = InferenceWorker(store)
        self.worker.moveToThread(self.thread)
        self._load.connect(self.worker.load)
        self._unload.connect(self.worker.unload)
        self._generate.connect(self.worker.generate)
        self.worker.loaded.connect(self._on_load_ended)
        self.worker.load_failed.connect(self._on_load_ended)
        self.thread.start()  # Qt names the OS thread after objectName
        self._stopped = False
        self._loads_pending = 0

    def load(self, path: Path, context_length: int = 0, n_threads: int = 0) -> None:
        """Ask the worker to load ``path`` (0 picks the defaults).

        A load still in progress is cancelled: the newest request wins. The worker clears the
        cancel flag when it starts the next load.
        """
        if self._loads_pending:
            self.worker.cancel_load.set()
        self._loads_pending += 1
        self._load.emit(str(path), int(context_length), int(n_threads))

    @Slot()
    def _on_load_ended(self, *_args: object) -> None:
        self._loads_pending = max(0, self._loads_pending - 1)

    @property
    def loading(self) -> bool:
        """Whether a load is queued or running."""
        return self._loads_pending > 0

    def cancel_loading(self) -> None:
        """Cancel a load in progress (the worker reports ``load_failed``)."""
        self.worker.cancel_load.set()

    def unload(self) -> None:
        """Ask the worker to free the model."""
        self._unload.emit()

    def generate(self, request: GenerateRequest) -> None:
        """Queue a reply."""
        self._generate.emit(request)

    def stop(self) -> None:
        """Stop the reply being written (within one token)."""
        self.worker.stop_event.set()

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop generating, finish the thread and free the model. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        stop_engine_thread(self.thread, self.worker, timeout_ms)


def stop_engine_thread(thread: QThread, worker: Any, timeout_ms: int = 30000) -> bool:
    """Stop a worker that owns a `ChatEngine` on ``thread``: set its stop and cancel events,
    end the thread's loop, wait, then free the model. Returns False if the thread hung."""
    worker.stop_event.set()
    worker.cancel_load.set()
    thread.quit()
    if not thread.wait(timeout_ms):
        log.error("the thread %s did not stop in time", thread.objectName())
        return False
    worker.engine.unload()
    return True
