"""A finished download is announced by the library and listed once, not once per page."""

from __future__ import annotations

import threading

from PySide6.QtWidgets import QApplication

from slmdesk.app import build_window
from slmdesk.models.library import Library

TIMEOUT = 60_000


def test_a_finished_download_triggers_one_scan(qtbot, local_hub, monkeypatch) -> None:
    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    controller = parts.discover_controller
    chat = parts.chat_controller
    assert controller is not None and chat is not None
    controller.open_repo("slmtest/popular-GGUF")
    qtbot.waitUntil(lambda: controller.view.files.rowCount() == 1, timeout=TIMEOUT)
    parts.tasks.wait()
    QApplication.processEvents()

    scans: list[str] = []
    listing = Library.entries

    def counted(self: Library) -> list:
        scans.append(threading.current_thread().name)
        return listing(self)

    monkeypatch.setattr(Library, "entries", counted)
    try:
        with qtbot.waitSignal(controller.model_ready, timeout=TIMEOUT):
            controller.view.files.cellWidget(0, 5).primary.click()
        (entry,) = Library().entries()  # the test's own look, on this thread: not counted
        qtbot.waitUntil(lambda: chat.view.model_picker.findData(entry.name) >= 0, timeout=TIMEOUT)
        for _ in range(3):  # let any further scan that was asked for start and finish
            parts.tasks.wait()
            QApplication.processEvents()
        library_rows = parts.library_controller.view.table_model.entries()
        assert [e.name for e in library_rows] == [entry.name]
        assert entry.provenance["repo"] == "slmtest/popular-GGUF"
        others = [name for name in scans if name != threading.current_thread().name]
        assert len(others) == 1, scans
    finally:
        parts.window.close()
        parts.shutdown()
