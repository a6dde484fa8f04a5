"""Other apps' folders in the window: listed, greyed when unplugged, noticed by the poll, forgotten
or deleted from the Library page, switched in Settings; all disk work off the GUI thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from slmdesk.app import AppParts, build_window
from slmdesk.models.library import Library
from slmdesk.ui.library import source_dialogs
from slmdesk.ui.library.table_model import ENTRY_ROLE
from slmdesk.ui.settings.page import SettingsPage
from tests.models.source_layouts import ollama_model, put_file

WAIT = 20_000


@pytest.fixture
def apps_home() -> Path:
    return Path(os.environ["SLMDESK_APP_FOLDERS_HOME"])


@pytest.fixture
def parts(qtbot, apps_home: Path, tiny_model: Path, tmp_path: Path) -> AppParts:
    ollama_model(apps_home / ".ollama" / "models", tiny_model, "llama3.2", "1b")
    put_file(tiny_model, tmp_path / "usb" / "on-the-drive.gguf")
    Library().add_source_folder(tmp_path / "usb")
    built = build_window(autoload_model=False)
    qtbot.addWidget(built.window)
    built.library_controller.source_poller.set_interval(100)
    built.window.show()
    built.window.show_page("Library")
    qtbot.waitUntil(lambda: len(_rows(built)) == 2, timeout=WAIT)
    yield built
    built.window.close()
    built.shutdown()


def _rows(parts: AppParts) -> dict[str, str]:
    return {e.name: e.status for e in parts.library_controller.view.table_model.entries()}


def test_an_unplugged_drive_greys_its_models_and_they_come_back(
    qtbot, parts: AppParts, tmp_path: Path, gui_guard
) -> None:
    model = parts.library_controller.view.table_model
    assert _rows(parts) == {"llama3.2:1b": "ok", "on-the-drive": "ok"}

    with gui_guard.allowed():
        (tmp_path / "usb").rename(tmp_path / "unplugged")
    qtbot.waitUntil(lambda: _rows(parts)["on-the-drive"] == "unavailable", timeout=WAIT)

    row = model.row_of("on-the-drive")
    name = model.data(model.index(row, 0), Qt.ItemDataRole.DisplayRole)
    assert name == "on-the-drive  (drive or folder not available)"
    brush = model.data(model.index(row, 0), Qt.ItemDataRole.ForegroundRole)
    disabled = parts.window.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
    assert brush.color() == disabled
    entry = model.data(model.index(row, 0), ENTRY_ROLE)
    assert entry.error.startswith("Drive or folder not available")

    with gui_guard.allowed():
        (tmp_path / "unplugged").rename(tmp_path / "usb")
    qtbot.waitUntil(lambda: _rows(parts)["on-the-drive"] == "ok", timeout=WAIT)


def test_files_added_and_removed_outside_are_noticed_without_a_restart(
    qtbot, parts: AppParts, tmp_path: Path, tiny_model: Path, gui_guard
) -> None:
    with gui_guard.allowed():
        put_file(tiny_model, tmp_path / "usb" / "dropped-later.gguf")
    qtbot.waitUntil(lambda: "dropped-later" in _rows(parts), timeout=WAIT)

    with gui_guard.allowed():
        (tmp_path / "usb" / "dropped-later.gguf").unlink()
    qtbot.waitUntil(lambda: "dropped-later" not in _rows(parts), timeout=WAIT)


@pytest.mark.parametrize("answer", ["forget", "delete"])
def test_removing_another_apps_model_asks_and_forgets_by_default(
    qtbot, parts: AppParts, apps_home: Path, monkeypatch, answer: str, gui_guard
) -> None:
    asked: list[tuple[str, str | None]] = []

    def ask(_parent, name, _path, app):
        asked.append((name, app))
        return answer

    monkeypatch.setattr(source_dialogs, "ask_remove_source", ask)
    view = parts.library_controller.view
    view.select_name("llama3.2:1b")
    with gui_guard.allowed():
        (blob,) = (apps_home / ".ollama" / "models" / "blobs").iterdir()

    view.details.remove_button.click()

    qtbot.waitUntil(lambda: "llama3.2:1b" not in _rows(parts), timeout=WAIT)
    assert asked == [("llama3.2:1b", "ollama")]
    with gui_guard.allowed():
        assert blob.exists() == (answer == "forget")


def test_settings_lists_the_apps_and_switches_them(
    qtbot, parts: AppParts, tmp_path: Path, tiny_model: Path, monkeypatch, gui_guard
) -> None:
    page = parts.window.pages["Settings"]
    assert isinstance(page, SettingsPage) and page.sources is not None
    settings = page.sources
    parts.window.show_page("Settings")
    qtbot.waitUntil(lambda: "ollama" in settings.checks, timeout=WAIT)
    assert set(settings.checks) == {"huggingface", "lmstudio", "ollama", "gpt4all", "jan"}
    assert settings.checks["ollama"].isChecked() and settings.checks["ollama"].isEnabled()
    assert not settings.checks["lmstudio"].isEnabled()  # not found on this computer
    assert str(tmp_path / "usb") in settings.remove_buttons

    settings.checks["ollama"].setChecked(False)
    qtbot.waitUntil(lambda: "llama3.2:1b" not in _rows(parts), timeout=WAIT)

    with gui_guard.allowed():
        put_file(tiny_model, tmp_path / "more" / "another.gguf")
    monkeypatch.setattr(source_dialogs, "pick_folder", lambda _p: str(tmp_path / "more"))
    settings.add_button.click()
    qtbot.waitUntil(lambda: "another" in _rows(parts), timeout=WAIT)
    qtbot.waitUntil(lambda: str(tmp_path / "more") in settings.remove_buttons, timeout=WAIT)

    settings.remove_buttons[str(tmp_path / "usb")].click()
    qtbot.waitUntil(lambda: "on-the-drive" not in _rows(parts), timeout=WAIT)
