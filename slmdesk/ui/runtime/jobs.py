"""The one job model for work that runs off the GUI thread.

Every background operation of the window — a pool task, a model load on the inference thread, an
optimize run that drives child processes — is a `Job`. A job is created on the GUI thread, runs
its work function on some other thread (`Job.execute`), and reports back through the same four
Qt signals, always emitted on the GUI thread:

- ``progress(value)``: throttled by one `Throttle` to at most `UPDATE_INTERVAL` apart (an
  ``urgent`` report, e.g. a stage change, goes at once); the last report is flushed before the
  outcome, so a handler always sees the final value;
- exactly one outcome: ``succeeded(result)``, ``failed(exception)`` or ``cancelled()``;
- ``ended()`` after the outcome, whichever it was.

Rules for the work function: it receives a `JobContext`; it must not touch any widget or Qt
model; it reports progress with ``context.report`` and checks ``context.cancelled()`` (or hands
``context.cancel_event`` to core code). An exception raised after a cancel request counts as
"cancelled"; so does any outcome of a job created with ``discard_on_cancel`` once `Job.cancel`
was called on the GUI thread (a superseded model load must never report success).

Shutdown is bounded: `stop_all` asks every part to stop (cancel jobs, set stop flags, quit event
loops, which makes the optimize core kill its child), then waits for all of them within one
shared time budget (`SHUTDOWN_BUDGET`) and reports what did not stop in time instead of
waiting longer. Outcomes that arrive after a job was closed are dropped: the window they would
update is gone.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal, Slot

from slmdesk.common.errors import SlmdeskError

log = logging.getLogger("slmdesk.ui.runtime.jobs")

# At most this many seconds between two progress (or streamed text) updates reaching the GUI:
# 40 a second is smooth to the eye and leaves the GUI thread idle most of the time.
UPDATE_INTERVAL = 1 / 40
# Closing the window waits at most this long, in total, for everything that runs.
SHUTDOWN_BUDGET = 2.0

T = TypeVar("T")


class Throttle(Generic[T]):
    """Coalesces a fast stream of updates into at most one delivery per ``interval``.

    Used on the producing thread only (it takes no lock). Updates that arrive too soon are
    merged with ``combine`` (default: keep the newest) and go out with the next update that is
    due, with an ``urgent`` one, or at `flush` — so nothing is lost, only batched.
    """

    def __init__(
        self,
        deliver: Callable[[T], None],
        combine: Callable[[T, T], T] | None = None,
        interval: float = UPDATE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deliver = deliver
        self._combine = combine
        self._interval = interval
        self._clock = clock
        self._last = float("-inf")
        self._pending: T | None = None
        self._has_pending = False

    def push(self, value: T, urgent: bool = False) -> None:
        """Add an update; deliver now if the interval has passed or ``urgent`` is set."""
        if self._has_pending and self._combine is not None:
            value = self._combine(self._pending, value)  # type: ignore[arg-type]
        self._pending, self._has_pending = value, True
        now = self._clock()
        if urgent or now - self._last >= self._interval:
            self._last = now
            self._send()

    def flush(self) -> None:
        """Deliver what is held back (call before reporting the end of the stream)."""
        if self._has_pending:
            self._last = self._clock()
            self._send()

    def _send(self) -> None:
        value, self._pending, self._has_pending = self._pending, None, False
        self._deliver(value)  # type: ignore[arg-type]


def join_text(held: str, new: str) -> str:
    """`Throttle` ``combine`` for streamed text: held-back pieces are appended, not replaced."""
    return held + new


class JobState(enum.Enum):
    """Where a job is, as seen from the GUI thread."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CLOSED = "closed"  # the runtime shut down before the outcome arrived; nothing is reported


class JobContext:
    """What a work function receives on its thread: progress reporting and the cancel flag."""

    def __init__(self, job: Job, interval: float) -> None:
        self.cancel_event = job.cancel_event
        self._throttle: Throttle[Any] = Throttle(job._post_progress, interval=interval)

    def cancelled(self) -> bool:
        """Whether the job was asked to stop (poll this between steps)."""
        return self.cancel_event.is_set()

    def report(self, value: Any, urgent: bool = False) -> None:
        """Report progress; throttled unless ``urgent`` (a stage change, the last step)."""
        self._throttle.push(value, urgent)

    def flush(self) -> None:
        """Send the progress held back by the throttle."""
        self._throttle.flush()


Work = Callable[[JobContext], Any]


class Job(QObject):
    """One background operation. Create it on the GUI thread; run it with `execute` elsewhere."""

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)  # the exception (an SlmdeskError for user errors)
    cancelled = Signal()
    ended = Signal()
    _event = Signal(str, object)  # from the working thread to this object's (GUI) thread

    def __init__(
        self,
        name: str,
        discard_on_cancel: bool = False,
        progress_interval: float = UPDATE_INTERVAL,
    ) -> None:
        super().__init__()
        self.name = name
        self.state = JobState.RUNNING
        self.cancel_event = threading.Event()
        self._discard_on_cancel = discard_on_cancel
        self._interval = progress_interval
        self._cancel_requested = False
        self._work_done = threading.Event()  # set on the working thread when the work returned
        app = QCoreApplication.instance()
        if app is not None and self.thread() is not app.thread():
            self.moveToThread(app.thread())  # created off the GUI thread: report there anyway
        self._event.connect(self._on_event, Qt.ConnectionType.QueuedConnection)

    @property
    def running(self) -> bool:
        """True until the outcome is delivered (or the job is closed)."""
        return self.state is JobState.RUNNING

    def cancel(self) -> None:
        """Ask the work to stop (GUI thread). Idempotent; the outcome still arrives."""
        self._cancel_requested = True
        self.cancel_event.set()

    def close(self) -> None:
        """Cancel and drop every later report: nothing will be emitted any more (shutdown)."""
        self.cancel()
        if self.state is JobState.RUNNING:
            self.state = JobState.CLOSED

    def wait(self, timeout: float) -> bool:
        """Block until the work function has returned on its thread; True when it has."""
        return self._work_done.wait(max(0.0, timeout))

    def abandon(self) -> None:
        """The job will never run (dropped from a queue at shutdown)."""
        self.close()
        self._work_done.set()

    def execute(self, work: Work) -> None:
        """Run ``work`` on the calling (worker) thread and deliver its outcome to the GUI thread."""
        context = JobContext(self, self._interval)
        try:
            if self.cancel_event.is_set():
                raise JobCancelled(f"{self.name} was cancelled before it started.")
            value = work(context)
        except BaseException as exc:  # delivered to the GUI thread, never lost
            context.flush()
            if not isinstance(exc, SlmdeskError) and not self.cancel_event.is_set():
                log.error("job %s failed", self.name, exc_info=exc)
            self._event.emit("error", exc)
        else:
            context.flush()
            self._event.emit("result", value)
        finally:
            self._work_done.set()

    def _post_progress(self, value: Any) -> None:
        self._event.emit("progress", value)

    @Slot(str, object)
    def _on_event(self, kind: str, value: Any) -> None:
        if self.state is not JobState.RUNNING:
            return  # closed, or already ended
        if kind == "progress":
            self.progress.emit(value)
            return
        if self._cancel_requested and (kind == "error" or self._discard_on_cancel):
            self.state = JobState.CANCELLED
            self.cancelled.emit()
        elif kind == "error":
            self.state = JobState.FAILED
            self.failed.emit(value)
        else:
            self.state = JobState.SUCCEEDED
            self.succeeded.emit(value)
        self.ended.emit()


class JobCancelled(SlmdeskError):
    """A job was cancelled before its work started."""


class UpdateChannel(QObject):
    """Updates pushed from any threads, coalesced per key, delivered as ``updated`` on the GUI
    thread: the job model's throttle for producers that report through a callback instead of
    running as a `Job` (e.g. ``DownloadManager(on_update=channel.push)``).

    Each key (e.g. a download's task id) gets its own `Throttle` keeping the newest value; an
    update for which ``urgent(previous, new)`` is true (e.g. a state change) goes at once. After
    `close` nothing more is delivered.
    """

    updated = Signal(object)
    _deliver = Signal(object)

    def __init__(
        self,
        key: Callable[[Any], Any],
        urgent: Callable[[Any, Any], bool] | None = None,
        interval: float = UPDATE_INTERVAL,
    ) -> None:
        super().__init__()
        self._key = key
        self._urgent = urgent
        self._interval = interval
        self._lock = threading.Lock()
        self._throttles: dict[Any, Throttle[Any]] = {}
        self._previous: dict[Any, Any] = {}
        self._closed = False
        self._deliver.connect(self._on_deliver, Qt.ConnectionType.QueuedConnection)

    def push(self, value: Any) -> None:
        """Add an update (any thread)."""
        with self._lock:
            key = self._key(value)
            throttle = self._throttles.get(key)
            if throttle is None:
                throttle = self._throttles[key] = Throttle(self._deliver.emit, None, self._interval)
            previous = self._previous.get(key)
            self._previous[key] = value
            urgent = self._urgent is not None and self._urgent(previous, value)
            throttle.push(value, urgent)

    def close(self) -> None:
        """Deliver nothing more (shutdown)."""
        self._closed = True

    @Slot(object)
    def _on_deliver(self, value: Any) -> None:
        if not self._closed:
            self.updated.emit(value)


class Stoppable(Protocol):
    """A part that runs work off the GUI thread and can be stopped within a time budget."""

    def request_stop(self) -> None:
        """Ask everything to stop without waiting (set flags, cancel jobs, quit loops)."""

    def wait_stopped(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for it to stop; True when it has."""
        ...


class Deadline:
    """One time budget shared by several waits."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (0 once the budget is spent)."""
        return max(0.0, self._end - time.monotonic())


def stop_all(parts: Iterable[Stoppable], deadline: Deadline | float = SHUTDOWN_BUDGET) -> list[str]:
    """Stop ``parts`` together: every stop is requested first, then all are waited for within
    one budget. Returns the names of the parts that did not stop in time (logged)."""
    parts = list(parts)
    for part in parts:
        part.request_stop()
    return wait_all(parts, deadline)


def wait_all(parts: Iterable[Stoppable], deadline: Deadline | float = SHUTDOWN_BUDGET) -> list[str]:
    """Wait for parts already asked to stop, all within one budget; see `stop_all`."""
    budget = deadline if isinstance(deadline, Deadline) else Deadline(deadline)
    stuck = [part for part in parts if not part.wait_stopped(budget.remaining())]
    names = [getattr(p, "name", type(p).__name__) for p in stuck]
    if names:
        log.error("still running after the shutdown budget: %s", ", ".join(names))
    return names
