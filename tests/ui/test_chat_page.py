"""The Chat page end to end: real llama.cpp on the tiny model, real SQLite, the real worker thread."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from slmdesk.app import AppParts, build_window
from slmdesk.chat.conversations import ConversationStore
from slmdesk.common import paths
from slmdesk.models.library import Library
from slmdesk.ui.chat.controller import ChatController
from slmdesk.ui.chat.view import ChatView
from slmdesk.ui.placeholder import ComingPage

TIMEOUT = 60_000


def _open(qtbot, autoload: bool = True) -> AppParts:
    parts = build_window(autoload_model=autoload)
    qtbot.addWidget(parts.window)
    parts.window.show()
    parts.window.show_page("Chat")
    return parts


def _close(parts: AppParts) -> None:
    parts.window.close()
    parts.shutdown()


@pytest.fixture
def chat(qtbot, tiny_model: Path):
    Library().import_model(tiny_model)
    parts = _open(qtbot)
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: controller.loaded_name == "tiny-llama-F16", timeout=TIMEOUT)
    yield parts, controller
    _close(parts)


def _type_and_send(qtbot, controller: ChatController, text: str) -> None:
    controller.view.composer.setPlainText(text)
    qtbot.keyClick(controller.view.composer, Qt.Key.Key_Return)


def _wait_idle(qtbot, parts: AppParts, controller: ChatController) -> None:
    qtbot.waitUntil(lambda: not controller.generating, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)


def _set_sampling(controller: ChatController, max_tokens: int, seed: int = 7) -> None:
    panel = controller.view.settings_panel
    panel.max_tokens.setValue(max_tokens)
    panel.seed.setValue(seed)


def test_send_streams_a_reply_and_saves_it(qtbot, chat, gui_guard) -> None:
    parts, controller = chat
    _set_sampling(controller, 24)
    assert "own chat template" in controller.view.format_label.text()
    _type_and_send(qtbot, controller, "Hello there, model")
    qtbot.waitUntil(lambda: controller.generating, timeout=5000)
    assert controller.view.stop_button.isVisible()
    _wait_idle(qtbot, parts, controller)
    widgets = controller.view.messages.widgets()
    assert [w.role for w in widgets] == ["user", "assistant"]
    assert widgets[0].text == "Hello there, model"
    assert "tokens" in widgets[1].timings.text()
    assert widgets[1].regenerate_button.isVisible()
    assert controller.view.composer.toPlainText() == ""
    with gui_guard.allowed():
        store = ConversationStore()
    (conversation,) = store.list_conversations()
    saved = store.get(conversation.id).messages
    assert [m.role for m in saved] == ["user", "assistant"]
    assert saved[1].finished and saved[1].text == widgets[1].text
    assert saved[1].timings["generated_tokens"] >= 1
    assert conversation.title == "Hello there, model"
    assert controller.view.title.text() == "Hello there, model"
    assert controller.view.conversations.count() == 1


def test_stop_ends_the_reply_and_keeps_it(qtbot, chat, gui_guard) -> None:
    parts, controller = chat
    _set_sampling(controller, 4000)
    controller.view.settings_panel.temperature.setValue(1.5)
    _type_and_send(qtbot, controller, "Write a very long story")
    qtbot.waitUntil(lambda: len(controller.view.messages.widgets()) == 2, timeout=TIMEOUT)
    reply = controller.view.messages.widgets()[1]
    qtbot.waitUntil(lambda: len(reply.text) > 0 or not controller.generating, timeout=TIMEOUT)
    qtbot.keyClick(controller.view.composer, Qt.Key.Key_Escape)
    _wait_idle(qtbot, parts, controller)
    with gui_guard.allowed():
        store = ConversationStore()
    saved = store.get(store.list_conversations()[0].id).messages[-1]
    assert saved.finished
    assert saved.timings["finish_reason"] == "cancelled"
    assert saved.timings["generated_tokens"] < 4000


def test_regenerate_replaces_the_last_reply(qtbot, chat, gui_guard) -> None:
    parts, controller = chat
    _set_sampling(controller, 16, seed=-1)
    _type_and_send(qtbot, controller, "Say something")
    _wait_idle(qtbot, parts, controller)
    first_reply = controller.view.messages.widgets()[1]
    qtbot.mouseClick(
        controller.view.messages.widgets()[1].regenerate_button, Qt.MouseButton.LeftButton
    )
    qtbot.waitUntil(lambda: controller.generating, timeout=5000)
    _wait_idle(qtbot, parts, controller)
    widgets = controller.view.messages.widgets()
    assert [w.role for w in widgets] == ["user", "assistant"]
    assert widgets[1] is not first_reply
    with gui_guard.allowed():
        store = ConversationStore()
    assert len(store.get(store.list_conversations()[0].id).messages) == 2


def test_edit_and_resend(qtbot, chat, gui_guard) -> None:
    parts, controller = chat
    _set_sampling(controller, 8)
    _type_and_send(qtbot, controller, "First question")
    _wait_idle(qtbot, parts, controller)
    _type_and_send(qtbot, controller, "Second question")
    _wait_idle(qtbot, parts, controller)
    first_user = controller.view.messages.widgets()[0]
    qtbot.mouseClick(first_user.edit_button, Qt.MouseButton.LeftButton)
    assert controller.view.edit_banner.isVisible()
    assert controller.view.composer.toPlainText() == "First question"
    _type_and_send(qtbot, controller, "Edited question")
    _wait_idle(qtbot, parts, controller)
    widgets = controller.view.messages.widgets()
    assert [w.text for w in widgets if w.role == "user"] == ["Edited question"]
    with gui_guard.allowed():
        store = ConversationStore()
    messages = store.get(store.list_conversations()[0].id).messages
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[0].text == "Edited question"


def test_empty_message_is_not_sent(qtbot, chat, gui_guard) -> None:
    _parts, controller = chat
    _type_and_send(qtbot, controller, "   \n ")
    assert "Type a message" in controller.view.notice.text()
    assert not controller.generating
    with gui_guard.allowed():
        assert ConversationStore().list_conversations() == []


def test_no_model_gives_a_clear_notice(qtbot, gui_guard) -> None:
    parts = _open(qtbot)
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)
    _type_and_send(qtbot, controller, "Hello?")
    assert "No model loaded" in controller.view.notice.text()
    with gui_guard.allowed():
        assert ConversationStore().list_conversations() == []
    _close(parts)


def test_a_broken_model_file_fails_to_load_with_a_message(qtbot, tiny_model: Path) -> None:
    entry = Library().import_model(tiny_model, copy=False)
    tiny_model.write_bytes(tiny_model.read_bytes()[:4096])
    parts = _open(qtbot)
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)
    controller.load_model(entry.name)
    qtbot.waitUntil(lambda: "truncated" in controller.view.notice.text(), timeout=TIMEOUT)
    assert controller.loaded_name is None
    _close(parts)


def test_closing_mid_reply_saves_the_reply(qtbot, tiny_model: Path) -> None:
    Library().import_model(tiny_model)
    parts = _open(qtbot)
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: controller.loaded_name is not None, timeout=TIMEOUT)
    _set_sampling(controller, 4000)
    controller.view.settings_panel.temperature.setValue(1.5)
    _type_and_send(qtbot, controller, "Tell me everything")
    qtbot.waitUntil(lambda: len(controller.view.messages.widgets()) == 2, timeout=TIMEOUT)
    reply = controller.view.messages.widgets()[1]
    qtbot.waitUntil(lambda: len(reply.text) > 0, timeout=TIMEOUT)  # streaming tokens now
    started = time.monotonic()
    _close(parts)
    assert time.monotonic() - started < 3.0  # the 2 s shutdown budget, with slack for load
    assert not controller.client.thread.isRunning()
    store = ConversationStore()
    messages = store.get(store.list_conversations()[0].id).messages
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].finished


def test_conversations_survive_a_restart_and_delete_can_be_undone(qtbot, tiny_model: Path) -> None:
    Library().import_model(tiny_model)
    parts = _open(qtbot)
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: controller.loaded_name is not None, timeout=TIMEOUT)
    _set_sampling(controller, 8)
    _type_and_send(qtbot, controller, "Remember me")
    _wait_idle(qtbot, parts, controller)
    _close(parts)

    parts = _open(qtbot, autoload=False)
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: controller.view.conversations.count() == 1, timeout=10000)
    controller.view.conversations.setCurrentRow(0)
    qtbot.waitUntil(lambda: len(controller.view.messages.widgets()) == 2, timeout=10000)
    assert controller.view.messages.widgets()[0].text == "Remember me"
    cid = controller.current.id
    controller.delete_conversation(cid)
    qtbot.waitUntil(lambda: controller.view.conversations.count() == 0, timeout=10000)
    assert controller.view.undo_bar.isVisible()
    qtbot.mouseClick(controller.view.undo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: controller.view.conversations.count() == 1, timeout=10000)
    _close(parts)


def test_database_from_a_future_version_is_refused_untouched(qtbot) -> None:
    db_path = paths.database_path()
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE precious (x)")
        db.execute("INSERT INTO precious VALUES (42)")
        db.execute("PRAGMA user_version = 999")
    before = db_path.read_bytes()
    parts = _open(qtbot)
    stack = parts.window.pages["Chat"]
    # the database is opened off the GUI thread: the page changes once that has failed
    qtbot.waitUntil(lambda: isinstance(stack.widget(0), ComingPage), timeout=10000)
    texts = [label.text() for label in stack.widget(0).findChildren(QLabel)]
    assert any("newer version" in text for text in texts)
    assert parts.chat_controller is None
    assert not any(isinstance(stack.widget(i), ChatView) for i in range(stack.count()))
    _close(parts)
    assert db_path.read_bytes() == before


def test_empty_library_shows_the_welcome_screen(qtbot) -> None:
    parts = _open(qtbot)
    stack = parts.window.pages["Chat"]
    welcome = parts.welcome_controller
    assert welcome is not None
    qtbot.waitUntil(lambda: stack.currentWidget() is welcome.view, timeout=10000)
    assert welcome.view.import_button.isEnabled()
    # offline here (no Hub in this test): the starter line says why, and import still works
    qtbot.waitUntil(
        lambda: "cannot be fetched" in welcome.view.starter_detail.text(), timeout=30000
    )
    assert not welcome.view.download_button.isEnabled()
    _close(parts)


def test_chat_with_a_new_model_shows_it_in_the_picker(
    qtbot, tiny_model: Path, tmp_path: Path, gui_guard
) -> None:
    from slmdesk.models.synth import TinyModelSpec, write_tiny_llama

    library = Library()
    library.import_model(tiny_model)
    parts = _open(qtbot)
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: controller.loaded_name == "tiny-llama-F16", timeout=TIMEOUT)
    with gui_guard.allowed():
        other = library.import_model(
            write_tiny_llama(tmp_path / "second.gguf", TinyModelSpec(n_layers=2, seed=9))
        )
    parts.library_controller.chat_requested.emit(other.name)
    qtbot.waitUntil(lambda: controller.loaded_name == other.name, timeout=TIMEOUT)
    qtbot.waitUntil(
        lambda: controller.view.model_picker.currentData() == other.name, timeout=TIMEOUT
    )
    assert parts.window.current_page() == "Chat"
    _close(parts)


def test_about_box_shows_the_llama_cpu_variant_after_a_load(qtbot, chat) -> None:
    parts, controller = chat
    page = parts.window.pages["Settings"]
    qtbot.waitUntil(lambda: "shown once" not in page.cpu_variant.text(), timeout=TIMEOUT)
    assert page.cpu_variant.text() == controller.loaded_info["cpu_variant"]
    assert "CPU variant" in controller.view.model_state.toolTip()


def test_long_conversations_show_the_latest_messages_first(qtbot) -> None:
    from slmdesk.ui.chat.controller import SHOWN_MESSAGES

    store = ConversationStore()
    conversation = store.create(title="Long one")
    total = SHOWN_MESSAGES * 2 + 5
    for i in range(total):
        store.add_message(conversation.id, "user" if i % 2 == 0 else "assistant", f"message {i}")
    parts = _open(qtbot, autoload=False)
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: controller.view.conversations.count() == 1, timeout=10000)
    controller.view.conversations.setCurrentRow(0)
    messages = controller.view.messages
    qtbot.waitUntil(lambda: len(messages.widgets()) == SHOWN_MESSAGES, timeout=10000)
    assert messages.widgets()[-1].text == f"message {total - 1}"
    assert not messages.earlier_button.isHidden()
    assert str(total - SHOWN_MESSAGES) in messages.earlier_button.text()
    while not messages.earlier_button.isHidden():
        qtbot.mouseClick(messages.earlier_button, Qt.MouseButton.LeftButton)
    assert [w.text for w in messages.widgets()] == [f"message {i}" for i in range(total)]
    _close(parts)
