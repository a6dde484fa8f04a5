"""The server's one inference thread: one model in memory, requests answered in arrival order.

Requests arrive on the event loop as `Ticket` s and wait in a FIFO queue; the thread
``slmdesk-serve-inference`` takes them one at a time, loads the model a request names (only
from the library, never a path) and runs its work on the engine. Text goes back to the event
loop with ``call_soon_threadsafe``; a ticket's ``cancel`` event (set when its client closes the
connection) skips it while queued, or stops its generation within one token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from slmdesk.common.errors import ModelNotFoundError, SlmdeskError
from slmdesk.llama.embedding import Embedder, can_embed, is_encoder_only
from slmdesk.llama.engine import ChatEngine
from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.models.library import Library
from slmdesk.models.library.entry import STATUS_OK
from slmdesk.models.model_settings import ModelSettings
from slmdesk.serve.errors import ApiError, bad_request, internal_error, load_failed, model_not_found

log = logging.getLogger(__name__)

THREAD_NAME = "slmdesk-serve-inference"
Push = Callable[[str], None]


@dataclass
class Slot:
    """What a request's work gets on the inference thread."""

    engine: ChatEngine
    model: str  # the library name of the model in memory
    push: Push  # send a piece of text to the client
    cancel: threading.Event
    embedder: Embedder | None = None
    defaults: ModelSettings = field(default_factory=ModelSettings)  # the model's saved ones


Work = Callable[[Slot], Any]
Purpose = Literal["chat", "embed"]


class ModelHost:
    """The model in memory (for text or for embeddings) and its library name.

    One model at a time: switching model, or between writing text and embedding, frees the
    one in memory first. Used on the inference thread only.
    """

    def __init__(
        self, library: Library, engine: ChatEngine | None = None, embedder: Embedder | None = None
    ) -> None:
        self.library = library
        self.engine = engine or ChatEngine()
        self.embedder = embedder or Embedder()
        self.name: str | None = None
        self.purpose: Purpose | None = None
        self.defaults = ModelSettings()

    def ensure(
        self, name: str | None, cancel: threading.Event | None = None, purpose: Purpose = "chat"
    ) -> str:
        """Make the model called ``name`` (or the one in memory, for None) ready; its name.

        Raises:
            ApiError: 400 no model named and none loaded (or the model cannot serve
                ``purpose``), 404 unknown, 503 it failed to load.
        """
        if not name:
            if self.name is None:
                raise bad_request(
                    "No model is loaded: name one in the 'model' field.", param="model"
                )
            if self.purpose == purpose:
                return self.name
            name = self.name
        try:
            entry = self.library.get(name)
        except ModelNotFoundError:
            raise model_not_found(name) from None
        if entry.name == self.name and self.purpose == purpose:
            return entry.name
        if entry.status != STATUS_OK:
            raise load_failed(entry.name, entry.error or f"its file is {entry.status}.")
        try:
            info = read_gguf_info(entry.path)
        except SlmdeskError as exc:
            raise load_failed(entry.name, str(exc)) from None
        if purpose == "embed" and not can_embed(info):
            raise bad_request(
                f"The model {entry.name!r} cannot produce embeddings: it is a text generation "
                "model; name an embedding model.",
                param="model",
                code="model_cannot_embed",
            )
        if purpose == "chat" and is_encoder_only(info):
            raise bad_request(
                f"The model {entry.name!r} is an embedding model: it cannot write text.",
                param="model",
                code="model_cannot_generate",
            )
        log.info("loading %s for a request", entry.name)
        defaults = ModelSettings.from_dict(entry.settings)
        self.close()
        try:
            if purpose == "embed":
                self.embedder.load(entry.path, cancel=cancel)
            else:
                self.engine.load(
                    entry.path,
                    context_length=defaults.context_length or None,
                    n_threads=defaults.threads or None,
                    cancel=cancel,
                )
        except SlmdeskError as exc:
            raise load_failed(entry.name, str(exc)) from None
        self.name, self.purpose, self.defaults = entry.name, purpose, defaults
        return entry.name

    def close(self) -> None:
        """Free the model."""
        self.engine.unload()
        self.embedder.unload()
        self.name = self.purpose = None
        self.defaults = ModelSettings()


_END = object()


class Ticket:
    """One queued request: its work, its cancel event and the channel back to the event loop."""

    def __init__(
        self,
        model: str | None,
        work: Work,
        loop: asyncio.AbstractEventLoop,
        purpose: Purpose = "chat",
    ) -> None:
        self.model = model
        self.work = work
        self.purpose: Purpose = purpose
        self.cancel = threading.Event()
        self.result: Any = None
        self.served_model: str = model or ""
        self._loop = loop
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        # perf_counter times on the inference thread: work began, first and last text sent.
        self.started_at: float | None = None
        self.first_text_at: float | None = None
        self.last_text_at: float | None = None

    # -- inference thread side ------------------------------------------------------------------

    def _send(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop is gone (server stopped)
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)

    def push(self, text: str) -> None:
        """Queue a piece of reply text for the client (called on the inference thread)."""
        if text:
            self.last_text_at = time.perf_counter()
            if self.first_text_at is None:
                self.first_text_at = self.last_text_at
            self._send(text)

    def finish(self, result: Any) -> None:
        """The work ended with ``result``."""
        self.result = result
        self._send(_END)

    def fail(self, error: ApiError) -> None:
        """The work ended with ``error``."""
        self._send(error)

    # -- event loop side ------------------------------------------------------------------------

    async def texts(self) -> AsyncIterator[str]:
        """The reply's text as it comes, pieces that arrived together joined into one.

        Raises:
            ApiError: the request failed (before or while generating).
        """
        while True:
            item = await self._items.get()
            pieces: list[str] = []
            while isinstance(item, str):
                pieces.append(item)
                try:
                    item = self._items.get_nowait()
                except asyncio.QueueEmpty:
                    item = None
                    break
            if pieces:
                yield "".join(pieces)
            if item is _END:
                return
            if isinstance(item, ApiError):
                raise item

    async def wait(self) -> Any:
        """The work's result once it ends (the text is only collected by the work itself)."""
        async for _ in self.texts():
            pass
        return self.result


class InferenceService:
    """The inference thread and its FIFO queue of tickets."""

    def __init__(self, host: ModelHost) -> None:
        self.host = host
        self._queue: queue.Queue[Ticket | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.served = 0  # requests answered (for the window's status later)
        self.current: Ticket | None = None
        self.last: Ticket | None = None  # the latest request started (its times, for figures)
        self.recent: deque[Any] = deque(maxlen=32)  # results of the latest requests, newest last

    def start(self) -> None:
        """Start the thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                self._thread.start()

    def preload(self, name: str) -> str:
        """Load ``name`` before serving (the caller's thread; the service is not running yet).

        Raises:
            ApiError: unknown model (404) or it failed to load (503).
        """
        return self.host.ensure(name)

    def submit(self, model: str | None, work: Work, purpose: Purpose = "chat") -> Ticket:
        """Queue ``work`` for the model named ``model``; call on the event loop."""
        ticket = Ticket(model, work, asyncio.get_running_loop(), purpose)
        self._queue.put(ticket)
        return ticket

    def pending(self) -> int:
        """How many requests wait behind the one being answered."""
        return self._queue.qsize()

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel the running request, end the thread and free the model."""
        with self._lock:
            thread, self._thread = self._thread, None
        current = self.current
        if current is not None:
            current.cancel.set()
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self.host.close()

    def _run(self) -> None:
        while True:
            ticket = self._queue.get()
            if ticket is None:
                return
            if ticket.cancel.is_set():
                ticket.fail(bad_request("The request was cancelled before it started."))
                continue
            self.current = self.last = ticket
            ticket.started_at = time.perf_counter()
            try:
                host = self.host
                ticket.served_model = host.ensure(ticket.model, ticket.cancel, ticket.purpose)
                slot = Slot(
                    host.engine,
                    ticket.served_model,
                    ticket.push,
                    ticket.cancel,
                    host.embedder,
                    host.defaults,
                )
                result = ticket.work(slot)
                self.recent.append(result)
                ticket.finish(result)
            except ApiError as exc:
                ticket.fail(exc)
            except Exception:
                log.exception("a server request failed")
                ticket.fail(internal_error())
            finally:
                self.current = None
                self.served += 1
