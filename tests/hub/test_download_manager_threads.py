"""The download manager's commands come from the GUI thread: they must never touch the disk there.

File operations are observed with a Python audit hook (``open`` for writing, rename, remove), so
the real manager, store and files run untouched; only where each operation happens is recorded.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hubserver import TINY_REPO, LocalHub

from slmdesk.common import paths
from slmdesk.hub import listing as hub
from slmdesk.hub.downloads import DownloadManager, DownloadOptions, DownloadStatus, State
from slmdesk.hub.listing import RemoteModel
from slmdesk.models import hardware

FAST = DownloadOptions(retries=3, backoff=0.02, read_timeout=10)
BIG_MACHINE = hardware.MachineInfo(64 << 30, 48 << 30, 8, 16)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class _FileOps:
    """File changes made on one thread while watching is on (the hook stays, idle, after)."""

    def __init__(self) -> None:
        self.thread: int | None = None
        self.seen: list[str] = []

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.thread is None or threading.get_ident() != self.thread:
            return
        if event == "open":
            path, mode, flags = (*args, None, None)[:3]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writes and path is not None:
                self.seen.append(f"open {path}")
        elif event in ("os.rename", "os.remove", "os.unlink", "os.truncate"):
            self.seen.append(f"{event} {args[0]}")


_OPS = _FileOps()
sys.addaudithook(_OPS.hook)


@pytest.fixture
def caller_file_ops() -> Iterator[_FileOps]:
    """Record the file changes made on the test's own thread (the GUI thread's stand-in)."""
    _OPS.seen = []
    _OPS.thread = threading.get_ident()
    try:
        yield _OPS
    finally:
        _OPS.thread = None


def _model(name: str) -> RemoteModel:
    listing = hub.list_repo_models(TINY_REPO, machine=BIG_MACHINE, with_card=False)
    return hub.choose_model(listing, filename=name)


def test_commands_leave_all_file_work_to_the_manager_thread(
    local_hub: LocalHub, caller_file_ops: _FileOps
) -> None:
    first, second = _model("tiny-llama-F16.gguf"), _model("tiny-llama-Q8_0.gguf")
    local_hub.faults.delay = 0.02
    local_hub.faults.chunk = 64 * 1024
    progressed = threading.Event()

    def on_update(status: DownloadStatus) -> None:
        if status.state is State.DOWNLOADING and status.done_bytes > 300_000:
            progressed.set()

    manager = DownloadManager(on_update=on_update, options=FAST, max_parallel=1)
    try:
        running = manager.add(first)
        queued = manager.add(second)  # waits behind the first
        assert manager.status(queued).state is State.QUEUED
        assert progressed.wait(30)
        manager.pause(queued)  # a queued download: the queue file changes
        manager.pause(running)
        assert manager.wait(running, timeout=30).state is State.PAUSED
        manager.resume(queued)
        manager.cancel(queued)
        assert manager.wait(queued, timeout=30).state is State.CANCELLED
        manager.resume(running)
        assert manager.wait(running, timeout=60).state is State.DONE
        manager.forget(queued)
    finally:
        manager.shutdown()
    assert caller_file_ops.seen == []
    # ...and the work was done: the cancelled download left nothing behind.
    assert not (paths.models_dir() / "tiny-llama-Q8_0.gguf.incomplete").exists()
    assert (paths.models_dir() / "tiny-llama-F16.gguf").exists()


def test_the_hook_sees_file_writes_on_the_callers_thread(caller_file_ops: _FileOps) -> None:
    """The check above would be empty for the wrong reason if the hook saw nothing."""
    target = paths.models_dir() / "probe.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("x")
    target.unlink()
    assert [op.split()[0] for op in caller_file_ops.seen] == ["open", "os.remove"]
