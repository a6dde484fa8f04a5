"""The job model: progress throttled, cancel, error, result, and a shutdown that stays bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication

from slmdesk.common.errors import SlmdeskError
from slmdesk.ui.runtime.jobs import (
    UPDATE_INTERVAL,
    Job,
    JobContext,
    JobState,
    Throttle,
    UpdateChannel,
    join_text,
)
from slmdesk.ui.runtime.tasks import TaskRunner


@pytest.fixture
def tasks():
    runner = TaskRunner()
    yield runner
    runner.shutdown()


class Recorder:
    """Everything a job reported, and on which thread."""

    def __init__(self, job: Job) -> None:
        self.events: list[tuple[str, Any]] = []
        self.threads: set[str] = set()
        job.progress.connect(lambda v: self._add("progress", v))
        job.succeeded.connect(lambda v: self._add("succeeded", v))
        job.failed.connect(lambda e: self._add("failed", e))
        job.cancelled.connect(lambda: self._add("cancelled", None))
        job.ended.connect(lambda: self._add("ended", None))

    def _add(self, kind: str, value: Any) -> None:
        self.events.append((kind, value))
        self.threads.add(threading.current_thread().name)

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events if k != "progress"]

    def progress(self) -> list[Any]:
        return [v for k, v in self.events if k == "progress"]


def test_throttle_coalesces_and_flushes() -> None:
    now = [0.0]
    delivered: list[str] = []
    throttle: Throttle[str] = Throttle(
        delivered.append, combine=join_text, interval=0.025, clock=lambda: now[0]
    )
    throttle.push("a")  # the first update goes at once
    for piece in "bcd":
        now[0] += 0.005
        throttle.push(piece)  # too soon: held and joined
    assert delivered == ["a"]
    now[0] += 0.02  # 0.035 s after the first delivery
    throttle.push("e")
    assert delivered == ["a", "bcde"]
    throttle.push("f", urgent=True)  # urgent: at once
    throttle.push("g")
    assert delivered == ["a", "bcde", "f"]
    throttle.flush()
    throttle.flush()  # nothing more held back
    assert delivered == ["a", "bcde", "f", "g"]
    latest: list[int] = []
    newest_only: Throttle[int] = Throttle(latest.append, interval=1.0, clock=lambda: now[0])
    for value in range(100):
        newest_only.push(value)
    newest_only.flush()
    assert latest == [0, 99]  # without combine the newest value wins


def test_progress_is_throttled_and_the_last_value_arrives_before_the_result(
    qtbot, tasks: TaskRunner
) -> None:
    def work(context: JobContext) -> str:
        for i in range(1, 50_001):
            context.report(i)
        return "done"

    started = time.monotonic()
    job = tasks.start(work, "count")
    record = Recorder(job)
    with qtbot.waitSignal(job.ended, timeout=60_000):
        pass
    elapsed = time.monotonic() - started
    progress = record.progress()
    assert progress[-1] == 50_000  # flushed before the outcome
    assert progress == sorted(progress)
    # at most one update per interval (plus the first one and the final flush)
    assert len(progress) <= elapsed / UPDATE_INTERVAL + 2
    assert record.kinds() == ["succeeded", "ended"]
    assert record.events[-2] == ("succeeded", "done")
    assert record.threads == {threading.current_thread().name}  # delivered on the GUI thread
    assert job.state is JobState.SUCCEEDED and not job.running


def test_cancel_reports_cancelled_not_the_error(qtbot, tasks: TaskRunner) -> None:
    entered = threading.Event()

    def work(context: JobContext) -> None:
        entered.set()
        assert context.cancel_event.wait(60)
        raise SlmdeskError("stopped half way")

    job = tasks.start(work, "cancellable")
    record = Recorder(job)
    qtbot.waitUntil(entered.is_set, timeout=10_000)
    with qtbot.waitSignal(job.ended, timeout=10_000):
        job.cancel()
    assert record.kinds() == ["cancelled", "ended"]
    assert job.state is JobState.CANCELLED


def test_a_discardable_job_cancelled_late_never_reports_success(qtbot, tasks: TaskRunner) -> None:
    release = threading.Event()

    def work(_context: JobContext) -> str:
        release.wait(60)
        return "a result nobody wants any more"

    job = tasks.start(work, "superseded", discard_on_cancel=True)
    record = Recorder(job)
    job.cancel()  # the work ignores it and returns a value anyway
    with qtbot.waitSignal(job.ended, timeout=10_000):
        release.set()
    assert record.kinds() == ["cancelled", "ended"]


def test_errors_arrive_as_failed(qtbot, tasks: TaskRunner) -> None:
    def user_error(_context: JobContext) -> None:
        raise SlmdeskError("That file is not a model.")

    def bug(_context: JobContext) -> None:
        raise ValueError("unexpected")

    first = tasks.start(user_error, "user-error")
    second = tasks.start(bug, "bug")
    records = [Recorder(first), Recorder(second)]
    qtbot.waitUntil(lambda: not first.running and not second.running, timeout=10_000)
    for record, kind in zip(records, (SlmdeskError, ValueError), strict=True):
        assert record.kinds() == ["failed", "ended"]
        assert isinstance(record.events[0][1], kind)
    assert str(records[0].events[0][1]) == "That file is not a model."


def test_run_calls_back_on_the_gui_thread(qtbot, tasks: TaskRunner) -> None:
    results: list[tuple[Any, str]] = []
    tasks.run(lambda: 6 * 7, lambda v: results.append((v, threading.current_thread().name)))
    qtbot.waitUntil(lambda: tasks.idle, timeout=10_000)
    assert results == [(42, threading.current_thread().name)]


def test_jobs_beyond_the_pool_size_wait_their_turn(qtbot) -> None:
    tasks = TaskRunner(max_threads=2)
    gate = threading.Event()
    running: list[str] = []
    lock = threading.Lock()

    def work(context: JobContext) -> None:
        with lock:
            running.append(threading.current_thread().name)
        gate.wait(60)

    jobs = [tasks.start(work, f"j{i}") for i in range(5)]
    qtbot.waitUntil(lambda: len(running) == 2, timeout=10_000)
    assert all(name.startswith("slmdesk-task-") for name in running)
    gate.set()
    qtbot.waitUntil(lambda: not any(j.running for j in jobs), timeout=10_000)
    assert len(running) == 5
    assert tasks.shutdown()


def test_shutdown_is_bounded_while_a_job_is_stuck(qtbot) -> None:
    """A job that ignores cancel (a long native call) cannot hold the window open."""
    tasks = TaskRunner(max_threads=1)
    stuck = threading.Event()
    release = threading.Event()

    def native_call(_context: JobContext) -> str:
        stuck.set()
        release.wait(60)  # does not look at the cancel flag
        return "too late"

    job = tasks.start(native_call, "stuck")
    queued = tasks.start(lambda _c: "never runs", "queued")
    record = Recorder(job)
    qtbot.waitUntil(stuck.is_set, timeout=10_000)
    started = time.monotonic()
    stopped = tasks.shutdown(budget=1.0)
    elapsed = time.monotonic() - started
    assert not stopped
    assert elapsed < 2.0  # the budget (1 s) plus generous slack for a loaded machine
    assert job.cancel_event.is_set() and job.state is JobState.CLOSED
    assert queued.state is JobState.CLOSED
    release.set()
    assert tasks.wait(10_000)
    QCoreApplication.processEvents()  # the late result is posted now: it must be dropped
    assert record.events == []
    assert tasks.start(lambda _c: 1, "after").state is JobState.CLOSED  # no new work


def test_update_channel_coalesces_per_key_from_many_threads(qtbot) -> None:
    channel = UpdateChannel(
        key=lambda u: u[0], urgent=lambda old, new: old is None or old[1] != new[1]
    )
    received: list[tuple[str, str, int]] = []
    threads_seen: set[str] = set()

    def on_update(update: tuple[str, str, int]) -> None:
        received.append(update)
        threads_seen.add(threading.current_thread().name)

    channel.updated.connect(on_update)

    def producer(name: str) -> None:
        for i in range(20_000):
            channel.push((name, "running", i))
        channel.push((name, "done", 20_000))  # a state change is urgent: never held back

    producers = [
        threading.Thread(target=producer, args=(n,), name=f"slmdesk-test-{n}") for n in "ab"
    ]
    started = time.monotonic()
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    elapsed = time.monotonic() - started
    qtbot.waitUntil(
        lambda: {u[0] for u in received if u[1] == "done"} == {"a", "b"}, timeout=10_000
    )
    for name in "ab":
        mine = [u for u in received if u[0] == name]
        assert mine[-1] == (name, "done", 20_000)
        # first update, one per interval, the final one
        assert len(mine) <= elapsed / UPDATE_INTERVAL + 3
    assert threads_seen == {threading.current_thread().name}
    channel.close()
    channel.push(("a", "again", 0))
    QCoreApplication.processEvents()
    assert received[-1][1] == "done"


def test_closing_the_window_with_a_stuck_job_takes_at_most_the_budget(qtbot) -> None:
    from slmdesk.app import build_window

    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=30_000)
    stuck, release = threading.Event(), threading.Event()

    def native_call(_context: JobContext) -> None:
        stuck.set()
        release.wait(60)

    parts.tasks.start(native_call, "stuck")
    qtbot.waitUntil(stuck.is_set, timeout=10_000)
    started = time.monotonic()
    parts.window.close()
    elapsed = time.monotonic() - started
    assert elapsed < 3.0  # the 2 s budget plus slack for a loaded machine
    assert parts.shutdown() == ["task pool"]  # already done: says what was left, at once
    release.set()
    assert parts.tasks.wait(10_000)


def test_a_job_created_off_the_gui_thread_still_reports_there(qtbot, tasks: TaskRunner) -> None:
    box: dict[str, Job] = {}

    def create() -> None:
        box["job"] = tasks.start(lambda _c: "from a worker", "nested")

    creator = threading.Thread(target=create, name="slmdesk-test-creator")
    creator.start()
    creator.join()
    job = box["job"]
    record = Recorder(job)
    qtbot.waitUntil(lambda: not job.running, timeout=10_000)
    assert record.events[0] == ("succeeded", "from a worker")
    assert record.threads == {threading.current_thread().name}


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    from PySide6.QtCore import QTimer
    import slmdesk.app as app_module

    build = app_module.build_window

    def build_with_a_stuck_job(*args, **kwargs):
        parts = build(*args, **kwargs)
        started = threading.Event()

        def native_call(_context):
            started.set()
            threading.Event().wait()  # never returns, ignores cancel

        def close_once_stuck():
            if started.is_set():
                timer.stop()
                print("CLOSING", flush=True)
                parts.window.close()

        parts.tasks.start(native_call, "stuck")
        timer = QTimer(parts.window)
        timer.timeout.connect(close_once_stuck)
        timer.start(10)
        return parts

    app_module.build_window = build_with_a_stuck_job
    sys.exit(app_module.run_app(install_starter=False))
    """
)


def test_the_app_exits_soon_after_its_window_closes_despite_a_stuck_job(
    slmdesk_home: Path,
) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SLMDESK_HOME": str(slmdesk_home)}
    proc = subprocess.Popen(
        [sys.executable, "-c", EXIT_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("CLOSING"), proc.stderr.read() if proc.stderr else ""
        closed = time.monotonic()
        code = proc.wait(timeout=30)
        elapsed = time.monotonic() - closed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0
    assert elapsed < 3.5  # the 2 s budget, plus process teardown on a loaded machine
