"""The window does its slow work off the GUI thread: start-up, the Settings page, settings saves.

The GUI-thread guard (conftest) fails any of these tests that writes, syncs, opens the database,
starts a process or connects a socket on the GUI thread while the window is shown.
"""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

from gui_guard import any_window_shown
from PySide6.QtCore import Qt

from slmdesk.app import AppParts, build_window
from slmdesk.common import paths
from slmdesk.common.settings import SettingsStore
from slmdesk.llama import native
from slmdesk.ui.settings.page import SettingsPage

TIMEOUT = 30_000


def _open(qtbot, store: SettingsStore | None = None) -> AppParts:
    parts = build_window(autoload_model=False, settings_store=store)
    qtbot.addWidget(parts.window)
    parts.window.show()
    return parts


def _close(parts: AppParts) -> None:
    parts.window.close()
    parts.shutdown()


def _settings_page(parts: AppParts) -> SettingsPage:
    page = parts.window.pages["Settings"]
    assert isinstance(page, SettingsPage)
    return page


def test_building_the_window_does_no_blocking_work_on_the_gui_thread(qtbot, gui_guard) -> None:
    gui_guard.window_shown = lambda: True  # strict: watch the window being built, too
    try:
        parts = _open(qtbot)
        chat = parts.chat_controller
        assert chat is not None
        # the database is opened on the task pool; the chat page works once it is ready
        qtbot.waitUntil(lambda: chat.store.is_open, timeout=TIMEOUT)
        qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)  # every result shown
        assert chat.view.conversations.count() == 0
    finally:
        gui_guard.window_shown = any_window_shown
    _close(parts)


def test_the_llama_version_is_read_off_the_gui_thread(qtbot, monkeypatch) -> None:
    callers: list[str] = []
    real = native.llama_version

    def spy() -> str:
        callers.append(threading.current_thread().name)
        return real()

    monkeypatch.setattr(native, "llama_version", spy)
    parts = _open(qtbot)
    page = _settings_page(parts)
    parts.tasks.wait()
    assert callers == []  # not read while nobody looks (it would compete with start-up)
    parts.window.show_page("Settings")
    qtbot.waitUntil(
        lambda: page.llama_version.text().startswith("llama-cpp-python"), timeout=TIMEOUT
    )
    assert callers and threading.main_thread().name not in callers
    _close(parts)


def test_spin_box_steps_are_saved_once_in_the_background(qtbot) -> None:
    store = SettingsStore(paths.settings_path(), delay=1.0, max_delay=TIMEOUT / 1000)
    parts = _open(qtbot, store)
    parts.window.show_page("Settings")
    page = _settings_page(parts)
    page.threads.setValue(0)
    steps = min(page.threads.maximum(), 6)
    for _ in range(steps):
        qtbot.keyClick(page.threads, Qt.Key.Key_Up)
    assert store.get("threads") == steps  # in effect at once
    qtbot.waitUntil(lambda: not store.pending(), timeout=TIMEOUT)
    saved = json.loads(paths.settings_path().read_text(encoding="utf-8"))
    assert saved["threads"] == steps
    assert store.saves == 1
    _close(parts)


def test_a_failed_save_is_shown_in_the_window(qtbot, tmp_path: Path) -> None:
    blocker = tmp_path / "read-only"
    blocker.write_text("a file where the settings folder should be")
    store = SettingsStore(blocker / "settings.json", delay=0.05)
    parts = _open(qtbot, store)
    parts.window.show_page("Settings")
    page = _settings_page(parts)
    page.theme.setCurrentIndex(page.theme.findData("dark"))  # no exception reaches Qt
    qtbot.waitUntil(lambda: not page.save_error.isHidden(), timeout=TIMEOUT)
    message = page.save_error.text()
    assert message.startswith("Settings could not be saved to ")
    assert str(blocker / "settings.json") in message
    assert parts.window.statusBar().currentMessage() == message
    assert store.get("theme") == "dark"  # still applies for this session
    _close(parts)


def test_closing_the_window_saves_pending_settings_and_the_geometry(qtbot) -> None:
    store = SettingsStore(paths.settings_path(), delay=600.0, max_delay=600.0)
    parts = _open(qtbot, store)
    parts.window.show_page("Settings")
    page = _settings_page(parts)
    page.context.setValue(4096)
    assert not paths.settings_path().exists()  # waiting for more changes
    parts.window.resize(900, 640)  # not the first-run size (1200 x 780)
    _close(parts)
    saved = json.loads(paths.settings_path().read_text(encoding="utf-8"))
    assert saved["context_length"] == 4096
    assert saved["window_page"] == "Settings"
    assert saved["window_geometry"]

    again = _open(qtbot, SettingsStore(paths.settings_path()))
    assert again.window.current_page() == "Settings"
    # (the offscreen test screen is narrow, so only the height survives restoreGeometry as is)
    assert again.window.height() == 640
    _close(again)


def test_the_token_is_saved_and_removed_off_the_gui_thread(qtbot, monkeypatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    parts = _open(qtbot)
    page = _settings_page(parts)
    qtbot.waitUntil(lambda: page.token_state.text() == "No token set.", timeout=TIMEOUT)
    page.token_edit.setText("hf_abcdefghijklmnop1234")
    qtbot.mouseClick(page.save_token_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.token_state.text().startswith("A token is set"), timeout=TIMEOUT)
    assert "1234" in page.token_state.text() and page.token_edit.text() == ""
    token_file = paths.token_path()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    qtbot.mouseClick(page.clear_token_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.token_state.text() == "No token set.", timeout=TIMEOUT)
    assert not token_file.exists()
    _close(parts)


def test_a_bad_token_is_refused_with_a_message(qtbot, dialog_script) -> None:
    parts = _open(qtbot)
    page = _settings_page(parts)
    page.token_edit.setText("two words")
    qtbot.mouseClick(page.save_token_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(dialog_script.errors), timeout=TIMEOUT)
    assert "one word without spaces" in dialog_script.errors[0]
    _close(parts)
