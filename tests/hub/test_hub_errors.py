"""Honest errors: a full disk is a full disk, and a bug in slmdesk is not blamed on the Hub."""

from __future__ import annotations

import errno
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubserver import TINY_REPO, LocalHub

from slmdesk.common.errors import INTERNAL_ERROR_MESSAGE
from slmdesk.hub import listing as hub
from slmdesk.hub.downloads import (
    DiskFullError,
    DownloadOptions,
    DownloadStatus,
    DownloadStore,
    State,
    download_model,
)
from slmdesk.hub.downloads import transfer as transfer_module
from slmdesk.hub.downloads.job import DISK_MARGIN_BYTES
from slmdesk.hub.listing import HubServerError
from slmdesk.models import hardware

FAST = DownloadOptions(retries=3, backoff=0.02, read_timeout=10)
BIG_MACHINE = hardware.MachineInfo(64 << 30, 48 << 30, 8, 16)


class SmallDisk:
    """A folder on its own small file system, and a way to fill it up."""

    def __init__(self, folder: Path, mounted: bool) -> None:
        self.folder = folder
        self.mounted = mounted  # False: the disk filling up is simulated at the write layer
        self.full = False
        self.filler = folder / "filler.bin"

    def fill(self) -> None:
        """Take all the space that is left (on a real mount, by writing a file)."""
        self.full = True
        if not self.mounted:
            return
        block = b"\0" * (1 << 20)
        with open(self.filler, "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        try:  # the last scraps too, so the next write cannot squeeze in
            with open(self.folder / "scraps.bin", "wb", buffering=0) as handle:
                while True:
                    handle.write(b"\0" * 4096)
        except OSError:
            pass

    def free(self) -> None:
        """Give the space back."""
        self.full = False
        self.filler.unlink(missing_ok=True)
        (self.folder / "scraps.bin").unlink(missing_ok=True)


class _FullDiskFile:
    """A real file whose writes fail with ENOSPC once the simulated disk is full."""

    def __init__(self, handle: Any, disk: SmallDisk) -> None:
        self._handle = handle
        self._disk = disk

    def write(self, data: bytes) -> int:
        if self._disk.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return int(self._handle.write(data))

    def close(self) -> None:
        self._handle.close()


def _mount_tmpfs(folder: Path, size: int) -> bool:
    """Mount a tmpfs of ``size`` bytes on ``folder``; False where that is not allowed."""
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture
def small_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_source: Path
) -> Iterator[SmallDisk]:
    """A tmpfs just big enough to pass the free-space check (as root); else a simulated one."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    size = DISK_MARGIN_BYTES + tiny_model_source.stat().st_size + (8 << 20)
    disk = SmallDisk(folder, mounted=_mount_tmpfs(folder, size))
    if not disk.mounted:
        real_open = open

        def open_on_small_disk(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            handle = real_open(path, mode, *args, **kwargs)
            return handle if "r" in mode else _FullDiskFile(handle, disk)

        monkeypatch.setattr(transfer_module, "open", open_on_small_disk, raising=False)
    try:
        yield disk
    finally:
        if disk.mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def test_full_disk_during_a_download_says_so_and_is_not_retried(
    local_hub: LocalHub, small_disk: SmallDisk, tiny_model_source: Path
) -> None:
    local_hub.faults.chunk = 64 * 1024
    local_hub.faults.delay = 0.005
    model = hub.choose_model(
        hub.list_repo_models(TINY_REPO, machine=BIG_MACHINE, with_card=False),
        filename="tiny-llama-F16.gguf",
    )
    local_hub.reset_log()
    seen: list[DownloadStatus] = []

    def on_progress(status: DownloadStatus) -> None:
        seen.append(status)
        if status.done_bytes > 500_000 and not small_disk.full:
            small_disk.fill()

    with pytest.raises(DiskFullError) as info:
        download_model(model, progress=on_progress, models_dir=small_disk.folder, options=FAST)
    message = str(info.value)
    assert message.startswith("The disk is full")
    assert "offline" not in message and "kept failing" not in message
    # One GET: writing again cannot help until space is freed, so there was no retry.
    assert len(local_hub.cdn_requests()) == 1
    assert seen[-1].state is State.FAILED and seen[-1].error == message
    stored = DownloadStore().get(seen[-1].task_id)
    assert stored is not None and stored.state is State.FAILED and stored.error == message
    partial = small_disk.folder / "tiny-llama-F16.gguf.incomplete"
    kept = partial.stat().st_size
    assert kept > 0

    # Once space is freed, Retry resumes from the bytes already on disk.
    small_disk.free()
    local_hub.reset_log()
    done = download_model(model, models_dir=small_disk.folder, options=FAST)
    assert done.state is State.DONE
    assert [r.range for r in local_hub.cdn_requests()] == [f"bytes={kept}-"]


def test_a_bug_while_reading_the_answer_is_an_internal_error_not_the_hubs(
    local_hub: LocalHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    def buggy_license(tags: Any) -> str | None:
        raise TypeError("'NoneType' object is not subscriptable")  # a bug of ours

    monkeypatch.setattr(hub, "_license_from_tags", buggy_license)
    # Not HubServerError ("the Hub sent an answer slmdesk cannot read"): the answer was fine.
    with pytest.raises(TypeError):
        hub.search_models("tiny")


def test_discover_shows_a_bug_as_an_internal_error(
    qtbot: Any,
    local_hub: LocalHub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from slmdesk.ui.discover.controller import DiscoverController
    from slmdesk.ui.discover.view import DiscoverView
    from slmdesk.ui.runtime.tasks import TaskRunner

    def buggy_siblings(info: Any) -> list[hub.RemoteFile]:
        raise KeyError("size")  # a bug of ours

    monkeypatch.setattr(hub, "_siblings", buggy_siblings)
    tasks = TaskRunner()
    view = DiscoverView()
    qtbot.addWidget(view)
    controller = DiscoverController(view, tasks)
    try:
        with caplog.at_level(logging.ERROR):
            controller.open_repo(TINY_REPO)
            qtbot.waitUntil(lambda: view.repo_meta.text() == INTERNAL_ERROR_MESSAGE, timeout=30_000)
        assert "KeyError" in caplog.text  # the traceback is in the log, for us
        assert "Hub" not in view.repo_meta.text()
    finally:
        controller.shutdown()
        tasks.shutdown()


def test_an_unreadable_hub_answer_is_still_the_hubs(local_hub: LocalHub) -> None:
    local_hub.faults.api_body = b'{"id": "slmtest/tiny-llama-GGUF", "siblings": ['
    with pytest.raises(HubServerError, match="cannot read"):
        hub.list_repo_models(TINY_REPO, machine=BIG_MACHINE, with_card=False)


def test_a_bug_during_a_queued_download_is_logged_and_shown_as_internal(
    local_hub: LocalHub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from slmdesk.hub.downloads import DownloadManager
    from slmdesk.models.library import Library

    def buggy_add(self: Library, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("unsupported operand type(s)")  # a bug of ours, after the bytes arrived

    monkeypatch.setattr(Library, "add_managed_file", buggy_add)
    model = hub.choose_model(
        hub.list_repo_models(TINY_REPO, machine=BIG_MACHINE, with_card=False),
        filename="tiny-llama-F16.gguf",
    )
    manager = DownloadManager(options=FAST)
    try:
        with caplog.at_level(logging.ERROR):
            task_id = manager.add(model)
            failed = manager.wait(task_id, timeout=60)
    finally:
        manager.shutdown()
    assert failed.state is State.FAILED
    assert failed.error == INTERNAL_ERROR_MESSAGE
    assert "TypeError: unsupported operand" in caplog.text  # the traceback, for us
    stored = DownloadStore().get(task_id)
    assert stored is not None and stored.error == INTERNAL_ERROR_MESSAGE


def test_an_endpoint_that_is_not_http_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "ftp://127.0.0.1:9")
    with pytest.raises(hub.HubError, match=r"not an http\(s\) address"):
        hub.list_repo_models(TINY_REPO, machine=BIG_MACHINE, with_card=False)


def test_full_disk_also_holding_the_queue_file_still_says_so(
    local_hub: LocalHub, small_disk: SmallDisk
) -> None:
    if not small_disk.mounted:
        pytest.skip("needs a real small file system (mount -t tmpfs as root)")
    local_hub.faults.chunk = 64 * 1024
    local_hub.faults.delay = 0.005
    model = hub.choose_model(
        hub.list_repo_models(TINY_REPO, machine=BIG_MACHINE, with_card=False),
        filename="tiny-llama-F16.gguf",
    )
    store = DownloadStore(small_disk.folder / "downloads.json")

    def on_progress(status: DownloadStatus) -> None:
        if status.done_bytes > 500_000 and not small_disk.full:
            small_disk.fill()

    # Saving the failed state cannot work either; that must not hide why the download failed.
    with pytest.raises(DiskFullError, match="The disk is full"):
        download_model(
            model, progress=on_progress, models_dir=small_disk.folder, store=store, options=FAST
        )
