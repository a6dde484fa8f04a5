"""The GUI-thread guard is real: it catches blocking calls made from slots on the GUI thread, lets
the same calls through on other threads, and can be paused by test code or turned off."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from gui_guard import MESSAGE, GuiThreadGuard
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

from slmdesk.ui.runtime.tasks import TaskRunner

TIMEOUT = 30_000


@pytest.fixture
def window(qtbot) -> QWidget:
    """A shown top-level window: while it is visible the guard watches the GUI thread."""
    widget = QWidget()
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _run_in_a_slot(qtbot, action: Callable[[], None]) -> None:
    """Run ``action`` from the event loop, as a slot of the GUI thread would."""
    done: list[bool] = []

    def slot() -> None:
        try:
            action()
        finally:
            done.append(True)

    QTimer.singleShot(0, slot)
    qtbot.waitUntil(lambda: bool(done), timeout=TIMEOUT)


def _expect_caught(guard: GuiThreadGuard, what: str) -> None:
    """The guard recorded ``what`` and fails the test with its message (then it is cleared)."""
    assert any(what in v for v in guard.violations), guard.violations
    with pytest.raises(pytest.fail.Exception, match=MESSAGE) as failure:
        guard.check()
    assert what in str(failure.value)
    assert "test_gui_thread_guard.py" in str(failure.value)  # where the call came from
    assert guard.violations == []


def test_a_file_written_in_a_slot_fails_the_test(qtbot, window, gui_guard, tmp_path: Path) -> None:
    target = tmp_path / "written-on-the-gui-thread.txt"
    _run_in_a_slot(qtbot, lambda: target.write_text("blocked the window"))
    assert target.read_text() == "blocked the window"  # the guard only watches
    _expect_caught(gui_guard, "written-on-the-gui-thread.txt")


def _fsync(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY)  # a folder: opening it is not a write
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sqlite(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "db.sqlite3").close()


def _child(_tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def _connect(_tmp_path: Path) -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname(), timeout=10),
    ):
        pass


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (_fsync, "os.fsync("),
        (_sqlite, "sqlite3.connect("),
        (_child, "subprocess.Popen("),
        (_connect, "socket.connect("),
    ],
)
def test_each_kind_of_blocking_call_is_caught(
    qtbot, window, gui_guard, tmp_path: Path, call: Callable[[Path], None], what: str
) -> None:
    _run_in_a_slot(qtbot, lambda: call(tmp_path))
    _expect_caught(gui_guard, what)


def test_the_same_calls_on_a_worker_thread_pass(qtbot, window, gui_guard, tmp_path: Path) -> None:
    tasks = TaskRunner()
    results: list[object] = []

    def work() -> str:
        (tmp_path / "from-a-worker.txt").write_text("fine")
        _fsync(tmp_path)
        _sqlite(tmp_path)
        return "done"

    tasks.run(work, results.append, results.append, name="guard-test")
    qtbot.waitUntil(lambda: bool(results), timeout=TIMEOUT)
    tasks.shutdown()
    assert results == ["done"]
    assert gui_guard.violations == []


def test_reading_a_file_on_the_gui_thread_is_not_a_blocking_write(qtbot, window, gui_guard) -> None:
    _run_in_a_slot(qtbot, Path(__file__).read_text)
    assert gui_guard.violations == []


def test_nothing_is_watched_while_no_window_is_shown(
    qtbot, window, gui_guard, tmp_path: Path
) -> None:
    window.hide()
    _run_in_a_slot(qtbot, lambda: (tmp_path / "after-close.txt").write_text("shutdown"))
    assert gui_guard.violations == []


def test_test_code_can_pause_the_guard(qtbot, window, gui_guard, tmp_path: Path) -> None:
    with gui_guard.allowed():
        (tmp_path / "prepared-by-the-test.txt").write_text("setup")
    assert window.isVisible()
    assert gui_guard.violations == []


@pytest.mark.allow_gui_thread_io("proves that the marker turns the guard off")
def test_the_marker_turns_the_guard_off(qtbot, window, gui_guard, tmp_path: Path) -> None:
    _run_in_a_slot(qtbot, lambda: (tmp_path / "allowed.txt").write_text("opted out"))
    assert not gui_guard.active
    assert gui_guard.violations == []
