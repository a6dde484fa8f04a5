"""The Discover page against the local Hub: search, pick the recommended file, download, chat."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QPushButton

from slmdesk.app import build_window
from slmdesk.hub.downloads import State
from slmdesk.models.library import Library

TIMEOUT = 60_000


@pytest.fixture
def discover(qtbot, local_hub):
    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    parts.window.show_page("Discover")
    controller = parts.discover_controller
    assert controller is not None
    yield parts, controller
    parts.window.close()
    parts.shutdown()


def _search(qtbot, controller, text: str) -> None:
    controller.view.query.setText(text)
    controller.search()
    qtbot.waitUntil(lambda: controller.view.search_button.isEnabled(), timeout=TIMEOUT)


def test_search_open_download_and_chat(qtbot, discover, tiny_model_source: Path) -> None:
    parts, controller = discover
    view = controller.view
    _search(qtbot, controller, "tiny")
    assert view.results.rowCount() >= 1
    assert "GGUF" in view.status.text()
    names = [view.results.item(r, 0).text() for r in range(view.results.rowCount())]
    row = next(i for i, n in enumerate(names) if "tiny" in n.lower())
    view.results.selectRow(row)
    qtbot.waitUntil(lambda: view.files.rowCount() == 2, timeout=TIMEOUT)
    assert "recommended" in view.repo_meta.text()
    starred = [r for r in range(2) if view.files.item(r, 0).text().startswith("★")]
    assert len(starred) == 1
    assert view.files.cellWidget(starred[0], 4).text() == "fits"
    assert "Tiny Llama GGUF" in view.card.toPlainText()
    assert "license: apache" not in view.card.toPlainText()  # front matter hidden

    button = view.files.cellWidget(starred[0], 5).primary
    assert isinstance(button, QPushButton)
    assert button.text() == "Download"
    with qtbot.waitSignal(controller.model_ready, timeout=TIMEOUT):
        button.click()
    assert view.notice.isVisible()
    (row_widget,) = controller._rows.values()
    assert row_widget.chat_button.isVisible()
    entries = Library().entries()
    assert len(entries) == 1
    assert entries[0].provenance["source"] == "hub"
    assert entries[0].path.exists()
    assert not list(Library().models_dir.glob("*.incomplete"))
    # the Library page and the chat model picker learn about it
    qtbot.waitUntil(
        lambda: parts.chat_controller.view.model_picker.findData(entries[0].name) >= 0,
        timeout=TIMEOUT,
    )
    view.notice_chat.click()
    assert parts.window.current_page() == "Chat"


def test_offline_search_says_so(qtbot, discover, local_hub, monkeypatch) -> None:
    _parts, controller = discover
    local_hub.stop()
    _search(qtbot, controller, "tiny")
    assert "offline" in controller.view.status.text().lower() or "reach" in (
        controller.view.status.text().lower()
    )


def test_repo_without_gguf(qtbot, discover) -> None:
    _parts, controller = discover
    controller.open_repo("slmtest/safetensors-only")
    qtbot.waitUntil(lambda: "GGUF" in controller.view.repo_meta.text(), timeout=TIMEOUT)
    assert controller.view.files.rowCount() == 0


def test_hash_mismatch_is_reported_with_retry(qtbot, discover, local_hub) -> None:
    _parts, controller = discover
    local_hub.faults.corrupt = True
    controller.open_repo("slmtest/popular-GGUF")
    qtbot.waitUntil(lambda: controller.view.files.rowCount() == 1, timeout=TIMEOUT)
    controller.view.files.cellWidget(0, 5).primary.click()
    qtbot.waitUntil(lambda: len(controller._rows) == 1, timeout=TIMEOUT)
    (row,) = controller._rows.values()
    qtbot.waitUntil(row.error.isVisible, timeout=TIMEOUT)
    assert controller.manager.status(row.task_id).state == State.FAILED
    assert row.resume_button.text() == "Retry"
    assert Library().entries() == []
    local_hub.faults.corrupt = False
    with qtbot.waitSignal(controller.model_ready, timeout=TIMEOUT):
        row.resume_button.click()
    assert len(Library().entries()) == 1


def test_welcome_downloads_the_starter_from_the_hub(qtbot, local_hub, tiny_model_source) -> None:
    from hubserver import HubFile

    from slmdesk.ui.welcome import STARTER_QUANT, STARTER_REPO

    local_hub.add_repo(STARTER_REPO).add(
        HubFile.lfs(f"starter-{STARTER_QUANT}.gguf", tiny_model_source)
    )
    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    controller = parts.discover_controller
    welcome = parts.welcome_controller
    stack = parts.window.pages["Chat"]
    qtbot.waitUntil(lambda: welcome.view.download_button.isEnabled(), timeout=TIMEOUT)
    assert welcome.view.verdict.text() == "fits"
    assert "MB download" in welcome.view.starter_detail.text()
    assert stack.currentWidget() is welcome.view
    with qtbot.waitSignal(controller.model_ready, timeout=TIMEOUT):
        welcome.view.download_button.click()
    assert parts.window.current_page() == "Discover"
    qtbot.waitUntil(lambda: stack.currentWidget() is not welcome.view, timeout=TIMEOUT)
    assert [e.name for e in Library().entries()] == [f"starter-{STARTER_QUANT}"]
    parts.window.close()
    parts.shutdown()


def test_closing_during_a_download_takes_under_two_seconds(qtbot, local_hub) -> None:
    import time

    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    controller = parts.discover_controller
    controller.open_repo("slmtest/popular-GGUF")
    qtbot.waitUntil(lambda: controller.view.files.rowCount() == 1, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)  # the header estimate is in
    local_hub.faults.delay = 0.05  # a slow CDN: the download is still running when we close
    local_hub.faults.chunk = 4096
    controller.view.files.cellWidget(0, 5).primary.click()
    qtbot.waitUntil(lambda: len(controller._rows) == 1, timeout=TIMEOUT)
    (row,) = controller._rows.values()
    qtbot.waitUntil(lambda: controller.manager.status(row.task_id).done_bytes > 0, timeout=TIMEOUT)
    parts.window.close()
    started = time.monotonic()
    stuck = parts.shutdown()
    assert stuck == []
    assert time.monotonic() - started < 2.5
    # Nothing half-written is in the library; the resume file stays hidden for next time.
    models = Library().models_dir
    assert Library().entries() == []
    assert not list(models.glob("*.gguf"))
