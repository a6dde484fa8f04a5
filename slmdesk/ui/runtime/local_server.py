"""The window's switch for the local OpenAI-compatible server (`slmdesk.serve`).

Starting binds a socket and starts uvicorn, stopping waits for its thread: both run as jobs on
the task pool, never on the GUI thread. The server runs on its own thread
(``slmdesk-serve-http``) and has no engine of its own: its work goes to the chat's inference
thread through `SharedInference`. `request_stop` / `wait_stopped` let the window's shutdown stop
it within the shared budget. Outcomes are one-sentence messages, never tracebacks; the API key is
never logged.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal, Slot

from slmdesk.common.errors import SlmdeskError
from slmdesk.models.library import Library
from slmdesk.serve.runner import BindError, ExposureError, ServeConfig, Server
from slmdesk.ui.runtime.jobs import Deadline, Job, JobCancelled, JobContext
from slmdesk.ui.runtime.shared_inference import SharedInference
from slmdesk.ui.runtime.tasks import TaskRunner

log = logging.getLogger("slmdesk.ui.local_server")

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"
# Seconds open connections get once the window stops the server (its whole budget is 2 s).
STOP_GRACE = 1
NEEDS_KEY = (
    "Allowing other computers needs an API key: type one in the API key field, or untick "
    "\u201cAllow other computers\u201d."
)


@dataclass(frozen=True)
class Running:
    """A started server, as the window shows it."""

    url: str  # what this computer's programs use: http://127.0.0.1:PORT/v1
    port: int
    exposed: bool


class LocalServer(QObject):
    """Starts and stops one server over the window's shared inference thread."""

    name = "local server"
    started = Signal(object)  # Running
    stopped = Signal()
    failed = Signal(str)  # why it could not start (or stop), one sentence
    busy_changed = Signal(bool)  # a start or stop is in progress

    def __init__(self, shared: SharedInference, library: Library, tasks: TaskRunner) -> None:
        super().__init__()
        self.shared = shared
        self.library = library
        self.tasks = tasks
        self.running: Running | None = None
        self._lock = threading.Lock()
        self._server: Server | None = None  # set on the task thread as soon as it exists
        self._closing = False
        self._job: Job | None = None

    @property
    def busy(self) -> bool:
        """Whether a start or a stop is in progress."""
        return self._job is not None

    def start(self, port: int, expose: bool, api_key: str | None) -> None:
        """Start serving on ``port`` (0: any free one); all interfaces when ``expose``."""
        if self.busy or self.running is not None or self._closing:
            return
        config = ServeConfig(
            host=ALL_INTERFACES if expose else LOOPBACK,
            port=port,
            api_key=api_key or None,
            shutdown_timeout=STOP_GRACE,
        )
        try:
            config.check()
        except ExposureError:
            self.failed.emit(NEEDS_KEY)
            return
        self.shared.accept_requests()
        job = self.tasks.start(lambda context: self._open(context, config), name="server-start")
        job.succeeded.connect(self._on_started)
        job.failed.connect(self._on_start_failed)
        job.cancelled.connect(lambda: self._on_start_failed(JobCancelled("cancelled")))
        self._set_job(job)

    def stop(self) -> None:
        """Stop serving: queued requests fail, the running one stops within a token."""
        if self.busy or self.running is None:
            return
        self.shared.stop_requests()
        with self._lock:
            server, self._server = self._server, None
        self.running = None
        if server is None:
            self.stopped.emit()
            return
        server.request_stop()
        job = self.tasks.start(lambda _context: server.stop(), name="server-stop")
        job.succeeded.connect(lambda _result: self.stopped.emit())
        job.failed.connect(self._on_stop_failed)
        self._set_job(job)

    # -- on the task pool --------------------------------------------------------------------------

    def _open(self, context: JobContext, config: ServeConfig) -> Running:
        server = Server(config, self.library, backend=self.shared)  # binds: BindError
        with self._lock:
            if self._closing or context.cancelled():
                server.close()
                raise JobCancelled("The window is closing.")
            self._server = server
        server.start()
        return Running(f"http://{LOOPBACK}:{server.port}/v1", server.port, config.exposed)

    # -- results, on the GUI thread -------------------------------------------------------------

    def _set_job(self, job: Job | None) -> None:
        self._job = job
        if job is not None:
            job.ended.connect(lambda: self._set_job(None))
        self.busy_changed.emit(job is not None)

    @Slot(object)
    def _on_started(self, running: Running) -> None:
        self.running = running
        self.started.emit(running)

    def _on_start_failed(self, exc: BaseException) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:  # started, then failed: nothing may stay bound
            server.request_stop()
            self.tasks.start(lambda _context: server.stop(), name="server-stop")
        self.failed.emit(_sentence(exc))

    def _on_stop_failed(self, exc: BaseException) -> None:
        self.stopped.emit()
        self.failed.emit(_sentence(exc))

    # -- shutdown (the `Stoppable` protocol) ----------------------------------------------------

    def request_stop(self) -> None:
        """Refuse requests and ask the server to stop (never waits)."""
        with self._lock:
            self._closing = True
            server = self._server
        self.shared.stop_requests()
        if server is not None:
            server.request_stop()

    def wait_stopped(self, timeout: float) -> bool:
        """Wait for a start in progress and for the server thread; frees the port."""
        deadline = Deadline(timeout)
        job = self._job
        if job is not None and not job.wait(deadline.remaining()):
            return False
        with self._lock:
            server, self._server = self._server, None
        if server is None:
            return True
        server.request_stop()  # a start that finished after request_stop
        return server.wait_stopped(deadline.remaining())


def _sentence(exc: BaseException) -> str:
    """What the Settings page says about a failed start or stop."""
    if isinstance(exc, BindError) and "already in use" in str(exc):
        return str(exc).replace("with --port", "in the Port field")
    if isinstance(exc, SlmdeskError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"The server could not start: {(exc.strerror or str(exc)).lower()}."
    log.error("the local server failed", exc_info=exc)
    return "An internal error stopped the local server; the details are in the log."
