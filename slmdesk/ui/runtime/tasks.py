"""The task pool: runs `Job` work functions on named background threads.

Short blocking jobs (scans, file copies, header reads, Hub queries, SQLite listings) share a few
threads named ``slmdesk-task-<name>``; a long job (an optimize run that drives child processes
for minutes) asks for a ``dedicated`` thread named ``slmdesk-<name>`` so it never holds up the
short ones. Both report through the job model (`slmdesk.ui.runtime.jobs`): signals emitted on the
GUI thread, progress throttled, one bounded shutdown.

The threads are plain daemon threads, not a ``QThreadPool``: a pool object waits for its threads
without a bound when it is destroyed, and closing the window must never hang on a job stuck in a
long native call. Such a job is abandoned after the shutdown budget (its outcome is dropped) and
cannot keep the process alive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from slmdesk.ui.runtime.jobs import SHUTDOWN_BUDGET, Deadline, Job, Work, stop_all

log = logging.getLogger("slmdesk.ui.runtime.tasks")


class TaskRunner:
    """A small pool for the UI's blocking jobs. Create and use it on the GUI thread."""

    name = "task pool"

    def __init__(self, max_threads: int = 4) -> None:
        self._max = max(1, max_threads)
        self._lock = threading.Lock()
        self._queue: deque[tuple[Job, Work]] = deque()
        self._workers = 0  # pool threads alive (dedicated ones not counted)
        self._threads: set[threading.Thread] = set()
        self._jobs: set[Job] = set()  # not yet ended: keeps each Job alive until it reports
        self._closed = False

    def start(
        self,
        work: Work,
        name: str = "job",
        *,
        dedicated: bool = False,
        discard_on_cancel: bool = False,
    ) -> Job:
        """Run ``work(context)`` in the background and return its `Job` (connect its signals
        before control returns to the event loop: outcomes are delivered from there).

        After `request_stop` the job is returned closed and never runs.
        """
        job = Job(name, discard_on_cancel=discard_on_cancel)
        if self._closed:
            log.debug("task %s ignored: the task runner is shut down", name)
            job.abandon()
            return job
        job.ended.connect(lambda: self._forget(job))
        with self._lock:
            self._jobs.add(job)
            if dedicated:
                self._spawn(f"slmdesk-{name}", (job, work), pooled=False)
            elif self._workers < self._max:
                self._workers += 1
                self._spawn(f"slmdesk-task-{name}", (job, work), pooled=True)
            else:
                self._queue.append((job, work))
        return job

    def run(
        self,
        job: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "job",
    ) -> Job:
        """Run a plain function ``job()``; ``on_done(result)`` / ``on_error(exception)`` run on
        the GUI thread. A job without ``on_error`` logs its failure."""
        handle = self.start(lambda _context: job(), name)
        if on_done is not None:
            handle.succeeded.connect(on_done)
        if on_error is not None:
            handle.failed.connect(on_error)
        else:
            handle.failed.connect(lambda exc: log.error("background task %s failed: %r", name, exc))
        return handle

    def _forget(self, job: Job) -> None:
        with self._lock:
            self._jobs.discard(job)

    def _spawn(self, thread_name: str, first: tuple[Job, Work], pooled: bool) -> None:
        thread = threading.Thread(
            target=self._work_loop, args=(first, pooled), name=thread_name, daemon=True
        )
        self._threads.add(thread)
        thread.start()

    def _work_loop(self, item: tuple[Job, Work], pooled: bool) -> None:
        current: tuple[Job, Work] | None = item
        try:
            while current is not None:
                job, work = current
                if pooled:
                    threading.current_thread().name = f"slmdesk-task-{job.name}"
                job.execute(work)
                current = None
                if pooled:
                    with self._lock:
                        if self._queue and not self._closed:
                            current = self._queue.popleft()
                        else:
                            self._workers -= 1
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    @property
    def idle(self) -> bool:
        """No job is running or waiting to report (tests wait on this)."""
        return not self._jobs

    def active(self) -> int:
        """Threads running a job's work right now (outcomes may still be on their way)."""
        with self._lock:
            return len(self._threads)

    def wait(self, msecs: int = 60_000) -> bool:
        """Block until every job's work has returned (tests); True when it has.

        Outcomes are delivered afterwards by the event loop: wait on `idle` to see them.
        """
        end = time.monotonic() + msecs / 1000
        while True:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                return True
            for thread in threads:
                thread.join(max(0.0, end - time.monotonic()))
            if time.monotonic() >= end:
                with self._lock:
                    return not self._threads

    # -- shutdown (the `Stoppable` protocol) ----------------------------------------------------

    def request_stop(self) -> None:
        """Accept no more jobs, drop queued ones, cancel running ones; report nothing more."""
        self._closed = True
        with self._lock:
            queued = list(self._queue)
            self._queue.clear()
            running = list(self._jobs)
            self._jobs.clear()
        for job, _work in queued:
            job.abandon()
        for job in running:
            job.close()

    def wait_stopped(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for running jobs to return."""
        return self.wait(int(timeout * 1000))

    def shutdown(self, budget: float = SHUTDOWN_BUDGET) -> bool:
        """Stop and wait at most ``budget`` seconds; True when every job returned in time."""
        return not stop_all([self], Deadline(budget))
