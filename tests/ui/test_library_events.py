"""The pages follow the library's own change events: one scan per change, whoever made it."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from slmdesk.app import AppParts, build_window
from slmdesk.models.library import Library

TIMEOUT = 20_000


@pytest.fixture
def app_parts(qtbot) -> Iterator[AppParts]:
    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    parts.window.show_page("Library")
    qtbot.waitUntil(lambda: parts.library_controller.view.footer.text() != "", timeout=TIMEOUT)
    yield parts
    parts.window.close()
    parts.shutdown()


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every listing of the library from now on (the real one runs; it is only counted)."""
    seen: list[str] = []
    listing = Library.entries

    def counted(self: Library) -> list:
        seen.append(threading.current_thread().name)
        return listing(self)

    monkeypatch.setattr(Library, "entries", counted)
    return seen


def _names(parts: AppParts) -> list[str]:
    return [e.name for e in parts.library_controller.view.table_model.entries()]


def _idle(qtbot, parts: AppParts) -> None:
    """Until no job runs and no queued event is left (so a late extra scan would show)."""
    for _ in range(3):
        parts.tasks.wait()
        QApplication.processEvents()
    qtbot.waitUntil(lambda: parts.tasks.active() == 0, timeout=TIMEOUT)


def _picker_has(parts: AppParts, name: str) -> bool:
    assert parts.chat_controller is not None
    return parts.chat_controller.view.model_picker.findData(name) >= 0


def test_an_import_on_the_page_scans_once(
    qtbot, app_parts: AppParts, tiny_model: Path, dialog_script, scans: list[str]
) -> None:
    dialog_script.answers.update(import_mode="copy")
    app_parts.library_controller.import_paths([tiny_model])
    qtbot.waitUntil(lambda: _picker_has(app_parts, "tiny-llama-F16"), timeout=TIMEOUT)
    _idle(qtbot, app_parts)
    assert _names(app_parts) == ["tiny-llama-F16"]
    assert app_parts.library_controller.view.selected_entry().name == "tiny-llama-F16"
    assert len(scans) == 1, scans
    assert dialog_script.errors == []


def test_changes_made_on_other_threads_reach_every_page(
    qtbot, app_parts: AppParts, tiny_model: Path, scans: list[str], gui_guard
) -> None:
    """What a download or the optimizer does on its own thread shows up, one scan a change."""
    models_dir = Library().models_dir
    target = models_dir / "from-elsewhere.gguf"
    with gui_guard.allowed():  # the test puts the file in place, as a download would
        shutil.copyfile(tiny_model, target)

    def worker() -> None:  # a download's last step, on the download's own thread
        Library().add_managed_file(target, provenance={"source": "hub", "repo": "a/b"})

    thread = threading.Thread(target=worker, name="not-the-gui")
    thread.start()
    thread.join(timeout=TIMEOUT / 1000)
    qtbot.waitUntil(lambda: _picker_has(app_parts, "from-elsewhere"), timeout=TIMEOUT)
    _idle(qtbot, app_parts)
    assert len(scans) == 1, scans
    optimize = next(c for c in app_parts.controllers if type(c).__name__ == "OptimizeController")
    assert optimize.view.model_step.table.rowCount() == 1

    thread = threading.Thread(target=lambda: Library().rename("from-elsewhere", "Renamed"))
    thread.start()
    thread.join(timeout=TIMEOUT / 1000)
    qtbot.waitUntil(lambda: _names(app_parts) == ["Renamed"], timeout=TIMEOUT)
    thread = threading.Thread(target=lambda: Library().remove("Renamed"))
    thread.start()
    thread.join(timeout=TIMEOUT / 1000)
    qtbot.waitUntil(lambda: _names(app_parts) == [], timeout=TIMEOUT)
    _idle(qtbot, app_parts)
    assert len(scans) == 3, scans
    assert not _picker_has(app_parts, "Renamed")


def test_cancelling_an_import_on_the_page_leaves_nothing(
    qtbot, app_parts: AppParts, tiny_model: Path, dialog_script
) -> None:
    controller = app_parts.library_controller
    view = controller.view
    gate = threading.Event()
    # Hold the copy after its first chunk until the user has clicked Cancel (a direct
    # connection runs on the copying thread, inside the library's progress callback).
    controller._copy_progress.connect(
        lambda _done, _total: gate.wait(TIMEOUT / 1000), Qt.ConnectionType.DirectConnection
    )
    dialog_script.answers.update(import_mode="copy")
    controller.import_paths([tiny_model])
    qtbot.waitUntil(view.cancel_import.isVisible, timeout=TIMEOUT)
    qtbot.mouseClick(view.cancel_import, Qt.MouseButton.LeftButton)
    gate.set()
    qtbot.waitUntil(lambda: view.import_button.isEnabled(), timeout=TIMEOUT)
    _idle(qtbot, app_parts)
    assert "cancelled" in view.footer.text()
    assert not view.cancel_import.isVisible()
    assert dialog_script.errors == []
    assert [p.name for p in Library().models_dir.iterdir()] == []
    assert Library().entries() == []


def test_the_page_stops_listening_at_shutdown(qtbot, tiny_model: Path) -> None:
    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    parts.tasks.wait()
    parts.window.close()
    parts.shutdown()
    heard: list[object] = []
    parts.library_controller.events.changed.connect(heard.append)
    Library().import_model(tiny_model)  # must not reach a page that is gone
    QApplication.processEvents()
    assert heard == []
