"""The window's server backend: API requests run on the chat's own inference thread.

While the window runs the local server there is one model in memory and one inference thread
(``slmdesk-inference``): `SharedInference` implements the server's `Backend` by posting each
`Ticket` to that thread as a queued call, exactly as the chat posts its turns. Qt delivers the
calls posted to one thread in the order they were posted, so chat turns and API requests are
answered first come, first served. A request naming another model loads it in the shared engine
(`ModelHost` follows what the chat loaded); the chat's next turn loads the user's model again
(`InferenceWorker.model_restoring`).

Threads: `submit` and `loaded_name` run on the server's event loop thread; tickets run on the
inference thread; the signals are emitted from there and reach GUI-thread slots queued.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from PySide6.QtCore import QObject, Signal, Slot

from slmdesk.models.library import Library
from slmdesk.serve.errors import ApiError, bad_request
from slmdesk.serve.inference import ModelHost, Purpose, Ticket, Work, answer_ticket
from slmdesk.ui.runtime.inference import InferenceClient

log = logging.getLogger("slmdesk.ui.shared_inference")


def _stopping() -> ApiError:
    return ApiError(
        503, "The local server is stopping.", type="server_error", code="server_stopping"
    )


class _TicketRunner(QObject):
    """Lives on the inference thread; runs each posted ticket there."""

    def __init__(self, owner: SharedInference) -> None:
        super().__init__()
        self._owner = owner

    @Slot(object)
    def run(self, ticket: Ticket) -> None:
        self._owner._run(ticket)


class SharedInference(QObject):
    """`slmdesk.serve.backend.Backend` over the chat's `InferenceClient` (see the module doc)."""

    # what is asked ("chat completion") and for which model, when a request starts
    request_started = Signal(str, str)
    request_ended = Signal(int)  # requests answered so far

    _post = Signal(object)

    def __init__(self, client: InferenceClient, library: Library) -> None:
        super().__init__()
        self.client = client
        self.host = ModelHost(library, engine=client.worker.engine)
        self._runner = _TicketRunner(self)
        self._runner.moveToThread(client.thread)
        self._post.connect(self._runner.run)  # to another thread: queued, in posting order
        self._lock = threading.Lock()
        self._waiting: list[Ticket] = []  # posted, not started
        self.current: Ticket | None = None
        self.last: Ticket | None = None  # the latest request started (its result, for tests)
        self.served = 0
        self._accepting = True
        client.worker.before_reply.append(self._free_embedder)

    # -- the server's event loop ------------------------------------------------------------------

    def submit(
        self, model: str | None, work: Work, purpose: Purpose = "chat", label: str = "request"
    ) -> Ticket:
        """Queue ``work`` on the inference thread behind what is already there."""
        ticket = Ticket(model, work, asyncio.get_running_loop(), purpose, label)
        with self._lock:
            accepting = self._accepting and not self.client.worker.closing.is_set()
            if accepting:
                self._waiting.append(ticket)
        if not accepting:
            ticket.fail(_stopping())
            return ticket
        self._post.emit(ticket)
        return ticket

    def loaded_name(self) -> str | None:
        """The library name of the model in the shared engine (the chat's or a request's)."""
        return self.host.loaded_name()

    def pending(self) -> int:
        """Requests waiting for their turn."""
        with self._lock:
            return len(self._waiting)

    # -- the GUI thread ----------------------------------------------------------------------------

    def accept_requests(self) -> None:
        """Take requests (the server is starting)."""
        with self._lock:
            self._accepting = True

    def stop_requests(self) -> None:
        """Refuse new requests, fail the queued ones and stop the running one within a token
        (the server is stopping; never waits)."""
        with self._lock:
            self._accepting = False
            waiting, self._waiting = self._waiting, []
            current = self.current
        for ticket in waiting:
            ticket.cancel.set()
            ticket.fail(_stopping())
        if current is not None:
            current.cancel.set()

    # -- the inference thread ----------------------------------------------------------------------

    def _run(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket not in self._waiting:
                return  # failed by stop_requests
            self._waiting.remove(ticket)
            if ticket.cancel.is_set() or self.client.worker.closing.is_set():
                skip = True
            else:
                skip, self.current, self.last = False, ticket, ticket
        if skip:
            ticket.fail(bad_request("The request was cancelled before it started."))
            return
        model = ticket.model or self.host.loaded_name() or "the loaded model"
        self.request_started.emit(ticket.label, model)
        try:
            answer_ticket(self.host, ticket)
        finally:
            with self._lock:
                self.current = None
                self.served += 1
                served = self.served
            self.request_ended.emit(served)

    def _free_embedder(self) -> None:
        """Before a chat turn: an embedding model a request loaded makes room for the chat's."""
        if self.host.purpose == "embed":
            self.host.close()
