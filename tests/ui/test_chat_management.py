"""Managing chats in the window: search, empty states, reopening, export names, notices, titles.

Real SQLite, the real window and its task pool; the tiny real model where a reply is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from slmdesk.app import AppParts, build_window
from slmdesk.chat.conversations import ConversationStore
from slmdesk.common import settings as app_settings
from slmdesk.models.library import Library
from slmdesk.ui import dialogs
from slmdesk.ui.chat.controller import LAST_CONVERSATION, ChatController
from slmdesk.ui.theme import apply_theme

TIMEOUT = 60_000


def _open(qtbot, autoload: bool = False) -> tuple[AppParts, ChatController]:
    parts = build_window(autoload_model=autoload)
    qtbot.addWidget(parts.window)
    parts.window.show()
    parts.window.show_page("Chat")
    controller = parts.chat_controller
    assert controller is not None
    return parts, controller


def _close(parts: AppParts) -> None:
    parts.window.close()
    parts.shutdown()


def _listed(controller: ChatController) -> list[str]:
    lst = controller.view.conversations
    return [lst.item(row).text() for row in range(lst.count())]


def _filled_store() -> dict[str, int]:
    with ConversationStore() as store:
        volcano = store.create()
        store.add_message(volcano.id, "user", "Tell me about volcanoes")
        store.add_message(volcano.id, "assistant", "Basalt magma rises through long fissures.")
        bread = store.create(title="Bread")
        store.add_message(bread.id, "user", "How long does dough rise?")
        return {"volcano": volcano.id, "bread": bread.id}


def test_search_finds_words_inside_messages_and_says_when_nothing_matches(qtbot) -> None:
    _filled_store()
    parts, controller = _open(qtbot)
    view = controller.view
    qtbot.waitUntil(lambda: view.conversations.count() == 2, timeout=10000)
    assert view.conversations_empty.isHidden()
    view.search.setText("fissures magma")
    qtbot.waitUntil(lambda: view.conversations.count() == 1, timeout=10000)
    (text,) = _listed(controller)
    assert text.startswith("Tell me about volcanoes\n")  # the title, then where it matched
    assert "magma rises through long fissures" in text
    view.search.setText('lava "NEAR -(')
    qtbot.waitUntil(lambda: view.conversations.count() == 0, timeout=10000)
    assert not view.conversations_empty.isHidden() and view.conversations.isHidden()
    assert view.conversations_empty.text() == 'No conversations match “lava "NEAR -(”.'
    assert view.notice.isHidden()  # hostile text is searched for, never an error
    view.search.clear()
    qtbot.waitUntil(lambda: view.conversations.count() == 2, timeout=10000)
    assert view.conversations_empty.isHidden() and not view.conversations.isHidden()
    _close(parts)


def test_an_empty_list_and_an_empty_chat_say_what_to_do(qtbot) -> None:
    parts, controller = _open(qtbot)
    view = controller.view
    qtbot.waitUntil(lambda: not view.conversations_empty.isHidden(), timeout=10000)
    assert view.conversations_empty.text().startswith("No conversations yet.")
    empty_chat = view.messages.empty
    assert not empty_chat.isHidden()
    assert empty_chat.text().startswith("Ask something…")
    assert "Choose a model" in empty_chat.text()
    _close(parts)


def test_the_empty_chat_names_the_loaded_model_and_hides_once_a_message_is_sent(
    qtbot, tiny_model: Path
) -> None:
    Library().import_model(tiny_model)
    parts, controller = _open(qtbot, autoload=True)
    view = controller.view
    qtbot.waitUntil(lambda: controller.loaded_name == "tiny-llama-F16", timeout=TIMEOUT)
    assert view.messages.empty.text() == "Ask something…\ntiny-llama-F16 will answer."
    assert not view.messages.empty.isHidden()
    view.settings_panel.max_tokens.setValue(4)
    view.composer.setPlainText("Hello")
    qtbot.keyClick(view.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(view.messages.widgets()) == 2, timeout=TIMEOUT)
    assert view.messages.empty.isHidden()
    qtbot.waitUntil(lambda: not controller.generating and parts.tasks.idle, timeout=TIMEOUT)
    controller.new_chat()
    assert not view.messages.empty.isHidden()
    _close(parts)


def test_the_chat_open_last_time_is_reopened(qtbot) -> None:
    ids = _filled_store()
    parts, controller = _open(qtbot)
    qtbot.waitUntil(lambda: controller.view.conversations.count() == 2, timeout=10000)
    assert controller.current is None  # nothing remembered yet: a new chat
    controller.view.conversations.setCurrentRow(1)  # the older one, not the first in the list
    qtbot.waitUntil(
        lambda: controller.current is not None and controller.current.id == ids["volcano"],
        timeout=10000,
    )
    _close(parts)
    assert app_settings.flush()

    parts, controller = _open(qtbot)
    qtbot.waitUntil(
        lambda: controller.current is not None and controller.current.id == ids["volcano"],
        timeout=10000,
    )
    qtbot.waitUntil(lambda: len(controller.view.messages.widgets()) == 2, timeout=10000)
    assert controller.view.title.text() == "Tell me about volcanoes"
    assert (
        controller.view.conversations.currentItem().data(Qt.ItemDataRole.UserRole) == ids["volcano"]
    )
    _close(parts)


def test_a_deleted_last_chat_falls_back_to_a_new_chat(qtbot) -> None:
    ids = _filled_store()
    with ConversationStore() as store:
        store.delete(ids["volcano"])
    app_settings.update(**{LAST_CONVERSATION: ids["volcano"]})
    assert app_settings.flush()
    parts, controller = _open(qtbot)
    qtbot.waitUntil(lambda: controller.view.conversations.count() == 1, timeout=10000)
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=10000)
    assert controller.current is None
    assert controller.view.title.text() == "New chat"
    assert controller.view.messages.widgets() == []
    _close(parts)


@pytest.fixture
def themed() -> Iterator[QApplication]:
    """The app's real theme applied (and the test default restored afterwards)."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    style, palette, sheet = app.style().name(), app.palette(), app.styleSheet()
    yield app
    app.setStyleSheet(sheet)
    app.setPalette(palette)
    app.setStyle(style)


def _notice_colour(qtbot, controller: ChatController, kind: str) -> QColor:
    controller.view.show_notice(f"A {kind} notice", kind=kind)
    notice = controller.view.notice
    qtbot.waitUntil(notice.isVisible, timeout=5000)
    return notice.grab().toImage().pixelColor(notice.width() // 2, 2)


def test_export_suggests_the_chat_title_and_success_is_not_a_warning(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, themed: QApplication
) -> None:
    ids = _filled_store()
    with ConversationStore() as store:
        store.rename(ids["bread"], 'Bread: "sourdough" / rye?')
    suggested: list[str] = []
    target = tmp_path / "exported.md"

    def ask_save_path(_parent: object, _title: str, name: str) -> Path:
        suggested.append(name)
        return target

    monkeypatch.setattr(dialogs, "ask_save_path", ask_save_path)
    parts, controller = _open(qtbot)
    qtbot.waitUntil(lambda: controller.view.conversations.count() == 2, timeout=10000)
    controller.export_conversations(ids["bread"])
    qtbot.waitUntil(lambda: controller.view.notice.text().startswith("Saved to"), timeout=10000)
    assert suggested == ["Bread sourdough rye.md"]
    assert controller.view.notice.property("kind") == "success"
    controller.export_conversations(None)
    assert suggested[-1] == "slmdesk-chats.md"
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=10000)
    parts.window.pages["Chat"].setCurrentWidget(controller.view)  # not the welcome page
    for theme in ("light", "dark"):
        apply_theme(themed, theme)
        success = _notice_colour(qtbot, controller, "success")
        warning = _notice_colour(qtbot, controller, "warning")
        assert success.green() > success.red(), (theme, success.name())  # green, not amber
        assert warning.red() > warning.blue(), (theme, warning.name())
        assert success != warning
    _close(parts)


def test_editing_the_first_message_retitles_the_chat(qtbot, tiny_model: Path) -> None:
    Library().import_model(tiny_model)
    parts, controller = _open(qtbot, autoload=True)
    view = controller.view
    qtbot.waitUntil(lambda: controller.loaded_name == "tiny-llama-F16", timeout=TIMEOUT)
    view.settings_panel.max_tokens.setValue(4)
    view.composer.setPlainText("Old question about rain")
    qtbot.keyClick(view.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not controller.generating and parts.tasks.idle, timeout=TIMEOUT)
    assert view.title.text() == "Old question about rain"
    qtbot.mouseClick(view.messages.widgets()[0].edit_button, Qt.MouseButton.LeftButton)
    view.composer.setPlainText("New question about snow")
    qtbot.keyClick(view.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.title.text() == "New question about snow", timeout=TIMEOUT)
    qtbot.waitUntil(lambda: _listed(controller) == ["New question about snow"], timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not controller.generating and parts.tasks.idle, timeout=TIMEOUT)
    _close(parts)
