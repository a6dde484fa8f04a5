"""Discover's file rows follow their downloads and the library, against the local Hub."""

from __future__ import annotations

from pathlib import Path

import pytest
from hubserver import TINY_REPO, LocalHub

from slmdesk.app import build_window
from slmdesk.hub.downloads import State
from slmdesk.models.library import Library
from slmdesk.ui.discover.file_actions import FileActions

TIMEOUT = 60_000


@pytest.fixture
def parts(qtbot):
    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    parts.window.show_page("Discover")
    yield parts
    parts.window.close()
    parts.shutdown()


def _open(qtbot, parts, repo_id: str, rows: int) -> None:
    controller = parts.discover_controller
    controller.open_repo(repo_id)
    qtbot.waitUntil(lambda: controller.view.files.rowCount() == rows, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)  # header estimates are in


def _cell(parts, file_name: str) -> FileActions:
    files = parts.discover_controller.view.files
    for row in range(files.rowCount()):
        if file_name in files.item(row, 0).text():
            cell = files.cellWidget(row, 5)
            assert isinstance(cell, FileActions)
            return cell
    raise AssertionError(f"no row for {file_name}")


def _shows(parts, file_name: str, label: str, button: str) -> bool:
    cell = _cell(parts, file_name)
    return cell.label.text().startswith(label) and cell.primary.text() == button


def _slow(local_hub: LocalHub) -> None:
    local_hub.faults.chunk = 16 << 10
    local_hub.faults.delay = 0.01  # about 3 s for the 5 MB test model


def test_a_row_follows_queued_downloading_in_library_and_removal(
    qtbot, parts, local_hub: LocalHub, gui_guard
) -> None:
    _open(qtbot, parts, TINY_REPO, 2)
    assert _shows(parts, "F16", "", "Download")
    _slow(local_hub)
    _cell(parts, "Q8_0").primary.click()  # one download at a time: the next one waits
    qtbot.waitUntil(lambda: _shows(parts, "Q8_0", "Downloading", "Cancel"), timeout=TIMEOUT)
    _cell(parts, "F16").primary.click()
    qtbot.waitUntil(lambda: _shows(parts, "F16", "Queued", "Cancel"), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: _shows(parts, "F16", "Downloading", "Cancel"), timeout=TIMEOUT)
    percent = int(_cell(parts, "F16").label.text().split()[1])
    assert 0 <= percent <= 100
    local_hub.faults.delay = 0.0
    qtbot.waitUntil(lambda: _shows(parts, "F16", "In library", "Open in chat"), timeout=TIMEOUT)
    assert _shows(parts, "Q8_0", "In library", "Open in chat")

    with qtbot.waitSignal(parts.discover_controller.chat_requested, timeout=TIMEOUT) as asked:
        _cell(parts, "F16").primary.click()
    assert asked.args == ["tiny-llama-F16"]

    # deleted from the library (here by another process, say): the row offers the download again
    with gui_guard.allowed():
        Library().remove("tiny-llama-F16")
    qtbot.waitUntil(lambda: _shows(parts, "F16", "", "Download"), timeout=TIMEOUT)
    assert _shows(parts, "Q8_0", "In library", "Open in chat")


def test_cancel_from_the_row(qtbot, parts, local_hub: LocalHub) -> None:
    _open(qtbot, parts, "slmtest/popular-GGUF", 1)
    _slow(local_hub)
    _cell(parts, "popular").primary.click()
    qtbot.waitUntil(lambda: _shows(parts, "popular", "Downloading", "Cancel"), timeout=TIMEOUT)
    _cell(parts, "popular").primary.click()
    qtbot.waitUntil(lambda: _shows(parts, "popular", "", "Download"), timeout=TIMEOUT)
    (task_id,) = parts.discover_controller._rows
    assert parts.discover_controller.manager.status(task_id).state == State.CANCELLED
    assert Library().entries() == []


def test_bytes_already_in_the_library_are_offered_not_downloaded(
    qtbot, local_hub: LocalHub, tiny_model: Path
) -> None:
    Library().import_model(tiny_model, copy=False)  # linked in place: its hash is read later
    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    try:
        _open(qtbot, parts, "slmtest/popular-GGUF", 1)
        qtbot.waitUntil(
            lambda: _shows(parts, "popular", "In library as tiny-llama-F16", "Use it"),
            timeout=TIMEOUT,
        )
        with qtbot.waitSignal(parts.discover_controller.chat_requested, timeout=TIMEOUT) as asked:
            _cell(parts, "popular").primary.click()
        assert asked.args == ["tiny-llama-F16"]

        # a download asked for anyway (the welcome page, a click before the hash was known)
        controller = parts.discover_controller
        model = controller.repo.models[0]
        with qtbot.waitSignal(controller.model_ready, timeout=TIMEOUT) as ready:
            controller.download(model)
        assert ready.args == ["tiny-llama-F16"]
        assert "already in your library as" in controller.view.notice_text.text()
        (row,) = controller._rows.values()
        assert "already in your library as tiny-llama-F16" in row.detail.text()
        assert _shows(parts, "popular", "In library as tiny-llama-F16", "Use it")
        assert [e.name for e in Library().entries()] == ["tiny-llama-F16"]
        assert not list(Library().models_dir.glob("*.gguf*"))
    finally:
        parts.window.close()
        parts.shutdown()


def test_a_failed_download_offers_retry(qtbot, parts, local_hub: LocalHub) -> None:
    _open(qtbot, parts, "slmtest/popular-GGUF", 1)
    local_hub.faults.corrupt = True
    _cell(parts, "popular").primary.click()
    qtbot.waitUntil(lambda: _shows(parts, "popular", "Failed", "Retry"), timeout=TIMEOUT)
    assert "verification" in _cell(parts, "popular").toolTip()
    local_hub.faults.corrupt = False
    _cell(parts, "popular").primary.click()
    qtbot.waitUntil(lambda: _shows(parts, "popular", "In library", "Open in chat"), timeout=TIMEOUT)
