"""A guard for GUI tests: blocking work on the GUI thread while a window is shown fails the test.

Why: the window must never wait on the disk, a database, a child process or the network. Such a
call on the GUI thread freezes the window for as long as it takes, which a test on a fast disk
never notices. The guard makes it visible: while a top-level window is shown, it records every

- file opened for writing (``open`` audit event with write, create, truncate or append flags),
- ``os.fsync`` (no audit event exists for it, so the function is wrapped),
- ``sqlite3.connect``,
- child process start (``subprocess.Popen``, ``os.posix_spawn``, ``os.system``),
- ``socket.connect`` and ``socket.bind`` (listening is the task pool's job too),

made on the main (GUI) thread during the test function itself (fixtures that prepare files or
close the window run before and after it and are not watched). The fixture then fails the test
with each call and the code that made it. Audit hooks (PEP 578) see calls from any library, and the
guard only watches: the call still runs, so a broad ``except`` in the code under test cannot hide
it. Writes of Python's bytecode cache (``__pycache__``) are not the app's and are ignored.

Test code that legitimately writes while a window is open (preparing a file, reading the database
to check a result) wraps those lines in ``with gui_guard.allowed():``; a test that cannot avoid
such calls at all is marked ``@pytest.mark.allow_gui_thread_io("why")``.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

MARKER = "allow_gui_thread_io"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
WATCHED_EVENTS = frozenset(
    {
        "open",
        "sqlite3.connect",
        "subprocess.Popen",
        "os.posix_spawn",
        "os.system",
        "socket.connect",
        "socket.bind",
    }
)
MESSAGE = "blocking call on the GUI thread while the window is shown"
_STACK_FRAMES = 8


def any_window_shown() -> bool:
    """Whether a top-level Qt window is visible right now (a QApplication must exist)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return False
    return any(widget.isVisible() for widget in app.topLevelWidgets())


def describe(event: str, args: tuple[Any, ...]) -> str | None:
    """A short description of a watched audit event, or None when it is not blocking work."""
    if event == "open":
        path, mode, flags = args
        if not isinstance(flags, int) or not flags & WRITE_FLAGS:
            return None
        if isinstance(path, str | bytes) and "__pycache__" in os.fsdecode(path):
            return None  # Python's bytecode cache, written by the import system
        return f"open({path!r}, {mode!r})" if mode is not None else f"os.open({path!r})"
    if event in ("socket.connect", "socket.bind"):
        return f"{event}({args[1]!r})"
    if event == "sqlite3.connect":
        return f"sqlite3.connect({args[0]!r})"
    if event == "subprocess.Popen":
        return f"subprocess.Popen({args[1]!r})"
    return f"{event}({args[0]!r})"


class GuiThreadGuard:
    """Records blocking calls made on the main thread while ``window_shown()`` is true."""

    def __init__(self, window_shown: Callable[[], bool] = any_window_shown) -> None:
        self.window_shown = window_shown
        self.violations: list[str] = []
        self.active = False
        self._paused = 0
        self._inside = False  # the hook's own Qt call must not re-enter it

    def watching(self) -> bool:
        """Whether a call made right now, on this thread, would be recorded."""
        return (
            self.active
            and not self._paused
            and not self._inside
            and threading.current_thread() is threading.main_thread()
        )

    def on_audit(self, event: str, args: tuple[Any, ...]) -> None:
        """The audit hook's work (see `install`)."""
        if event not in WATCHED_EVENTS or not self.watching():
            return
        what = describe(event, args)
        if what is not None:
            self._check(what)

    def on_fsync(self, fd: Any) -> None:
        """Called by the wrapped ``os.fsync`` before it syncs."""
        if self.watching():
            self._check(f"os.fsync({fd!r})")

    def _check(self, what: str) -> None:
        self._inside = True
        try:
            shown = self.window_shown()
        finally:
            self._inside = False
        if shown:
            stack = traceback.format_list(_app_frames())
            self.violations.append(f"{MESSAGE}: {what}\n" + "".join(stack))

    @contextmanager
    def allowed(self) -> Iterator[None]:
        """Let the test's own code write while a window is shown (setup, checking results)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    def check(self) -> None:
        """Fail the running test if anything was recorded (the list is emptied)."""
        found, self.violations = self.violations, []
        if found:
            pytest.fail("\n\n".join(found), pytrace=False)


def _app_frames() -> traceback.StackSummary:
    """The innermost frames that led to the call, without the guard's own."""
    frames = [f for f in traceback.extract_stack() if f.filename != __file__]
    return traceback.StackSummary.from_list(frames[-_STACK_FRAMES:])


# An audit hook cannot be removed, so one is installed for the whole process; it forwards to the
# guard of the running test, if any.
_current: GuiThreadGuard | None = None
_hook_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    guard = _current
    if guard is not None:
        guard.on_audit(event, args)


@contextmanager
def installed(guard: GuiThreadGuard, monkeypatch: pytest.MonkeyPatch) -> Iterator[GuiThreadGuard]:
    """Make ``guard`` the active one (audit hook and the ``os.fsync`` wrapper) for a block."""
    global _current, _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True
    real_fsync = os.fsync

    def fsync(fd: Any) -> None:
        guard.on_fsync(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    _current = guard
    try:
        yield guard
    finally:
        guard.active = False
        _current = None
        monkeypatch.setattr(os, "fsync", real_fsync)


def _uses_qt(request: pytest.FixtureRequest) -> bool:
    return "qtbot" in request.fixturenames or "qapp" in request.fixturenames


@pytest.fixture(autouse=True)
def gui_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Fail a GUI test that blocks the GUI thread while a window is shown (module docstring).

    Installed for every test that uses ``qtbot`` (``@pytest.mark.allow_gui_thread_io`` opts out);
    it watches while the test function runs (`pytest_runtest_call`).
    """
    guard = GuiThreadGuard()
    if not _uses_qt(request) or request.node.get_closest_marker(MARKER) is not None:
        yield guard
        return
    with installed(guard, monkeypatch):
        yield guard
    guard.check()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Watch the GUI thread while the test function runs (import this hook into a conftest)."""
    guard = getattr(item, "funcargs", {}).get("gui_guard")
    if not isinstance(guard, GuiThreadGuard) or _current is not guard:
        yield
        return
    guard.active = True
    try:
        yield
    finally:
        guard.active = False


def register_marker(config: pytest.Config) -> None:
    """Declare the opt-out marker (call from ``pytest_configure``)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(reason): this GUI test may block the GUI thread (the guard is off)",
    )
