"""Remote servers in the window: Settings → Connections, the chat's picker, replies streamed
from llama-cpp-python's own server on the inference thread, and failures as sentences.

Real components throughout: ``python -m llama_cpp.server`` on the tiny model, real SQLite, the
real worker thread and task pool; a fake local server where a server must misbehave.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from PySide6.QtCore import Qt

from slmdesk.app import AppParts, build_window
from slmdesk.chat.connections import Connection, ConnectionStore, remote_ref
from slmdesk.chat.conversations import ConversationStore
from slmdesk.ui.chat.controller import ChatController
from slmdesk.ui.settings.page import SettingsPage
from tests.remote_servers import (
    FakeServer,
    RunningServer,
    free_port,
)

TIMEOUT = 60_000


def _open(qtbot) -> tuple[AppParts, ChatController]:
    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    parts.window.show_page("Chat")
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: controller.store.is_open, timeout=TIMEOUT)
    return parts, controller


def _close(parts: AppParts) -> None:
    parts.window.close()
    parts.shutdown()


def _pick(controller: ChatController, ref: str) -> None:
    """Choose ``ref`` in the model picker as a user would."""
    picker = controller.view.model_picker
    index = picker.findData(ref)
    assert index >= 0, [picker.itemText(i) for i in range(picker.count())]
    picker.setCurrentIndex(index)
    picker.activated.emit(index)


def _send(qtbot, controller: ChatController, text: str) -> None:
    controller.view.composer.setPlainText(text)
    qtbot.keyClick(controller.view.composer, Qt.Key.Key_Return)


def _saved(gui_guard) -> list:
    with gui_guard.allowed():
        store = ConversationStore()
        conversations = store.list_conversations()
        result = [(c, store.get(c.id).messages) for c in conversations]
        store.close()
    return result


def test_a_connection_added_in_settings_chats_streams_stops_and_regenerates(
    qtbot, llama_server: RunningServer, gui_guard
) -> None:
    parts, controller = _open(qtbot)
    page = parts.window.pages["Settings"]
    assert isinstance(page, SettingsPage)
    section = page.connections
    parts.window.show_page("Settings")
    section.name_edit.setText("box")
    section.url_edit.setText(llama_server.url)
    qtbot.mouseClick(section.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: section.status.text().startswith("It works"), timeout=TIMEOUT)
    assert "1 model(s): tiny" in section.status.text()
    qtbot.mouseClick(section.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: section.list.count() == 1, timeout=TIMEOUT)
    with gui_guard.allowed():
        path = ConnectionStore().path
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    # the chat's picker lists the server's model, marked as remote
    parts.window.show_page("Chat")
    ref = remote_ref("box", llama_server.model)
    picker = controller.view.model_picker
    qtbot.waitUntil(lambda: picker.findData(ref) >= 0, timeout=TIMEOUT)
    assert picker.itemText(picker.findData(ref)) == "tiny — on box"
    _pick(controller, ref)
    qtbot.waitUntil(lambda: controller.loaded_name == ref, timeout=TIMEOUT)
    assert controller.view.model_state.text() == "Ready · remote, on box"

    # a streamed reply, saved with the conversation remembering the remote model
    controller.view.settings_panel.max_tokens.setValue(12)
    _send(qtbot, controller, "Hello over there")
    qtbot.waitUntil(lambda: controller.generating, timeout=5000)
    qtbot.waitUntil(lambda: not controller.generating, timeout=TIMEOUT)
    widgets = controller.view.messages.widgets()
    assert [w.role for w in widgets] == ["user", "assistant"] and widgets[1].text
    assert "tiny — on box" in widgets[1].speaker.text()
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)
    ((conversation, messages),) = _saved(gui_guard)
    assert conversation.model == ref
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].finished and messages[1].text == widgets[1].text

    # stop mid-reply: kept and marked
    controller.view.settings_panel.max_tokens.setValue(150)
    _send(qtbot, controller, "Now a very long story")
    qtbot.waitUntil(lambda: len(controller.view.messages.widgets()) == 4, timeout=TIMEOUT)
    reply = controller.view.messages.widgets()[3]
    qtbot.waitUntil(lambda: bool(reply.text) or not controller.generating, timeout=TIMEOUT)
    qtbot.keyClick(controller.view.composer, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not controller.generating, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)
    ((_, messages),) = _saved(gui_guard)
    assert messages[-1].timings["finish_reason"] == "cancelled"
    assert messages[-1].timings["generated_tokens"] < 150

    # regenerate the stopped reply (llama-cpp-python's server finishes the stopped one first:
    # it notices a closed connection only when it next writes)
    controller.view.settings_panel.max_tokens.setValue(8)
    qtbot.waitUntil(lambda: controller.view.messages.widgets()[-1].regenerate_button.isVisible())
    qtbot.mouseClick(
        controller.view.messages.widgets()[-1].regenerate_button, Qt.MouseButton.LeftButton
    )
    qtbot.waitUntil(lambda: controller.generating, timeout=5000)
    qtbot.waitUntil(lambda: not controller.generating, timeout=3 * TIMEOUT)
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)
    ((_, messages),) = _saved(gui_guard)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[-1].timings["finish_reason"] in ("stop", "length")

    # after an unload, reopening the chat goes back to the same server
    controller.client.unload()
    qtbot.waitUntil(lambda: controller.loaded_name is None, timeout=TIMEOUT)
    controller.new_chat()
    controller.open_conversation(conversation.id)
    qtbot.waitUntil(lambda: controller.loaded_name == ref, timeout=TIMEOUT)
    _close(parts)


def test_an_unreachable_server_says_so_and_keeps_the_typed_text(
    qtbot, gui_guard, slmdesk_home: Path
) -> None:
    port = free_port()
    ref = remote_ref("gone", "m")
    ConnectionStore().save(Connection("gone", f"http://127.0.0.1:{port}"))
    with ConversationStore() as store:
        conversation = store.create(model=ref)
    parts, controller = _open(qtbot)
    picker = controller.view.model_picker
    qtbot.waitUntil(lambda: "no saved server answered" in picker.itemText(0), timeout=TIMEOUT)
    controller.open_conversation(conversation.id)
    qtbot.waitUntil(lambda: controller.loaded_name == ref, timeout=TIMEOUT)
    _send(qtbot, controller, "are you there?")
    qtbot.waitUntil(lambda: not controller.generating, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)
    expected = "Cannot reach gone: connection refused."
    qtbot.waitUntil(lambda: controller.view.notice.text() == expected, timeout=TIMEOUT)
    assert controller.view.notice.isVisible()
    # the question was saved before the failure, so nothing typed is lost
    ((_, messages),) = _saved(gui_guard)
    assert [(m.role, m.text) for m in messages] == [("user", "are you there?")]
    _close(parts)


def test_a_failing_server_shows_its_sentence_in_the_chat(
    qtbot, fake: FakeServer, gui_guard
) -> None:
    with gui_guard.allowed():
        ConnectionStore().save(Connection("flaky", fake.url))
    parts, controller = _open(qtbot)
    ref = remote_ref("flaky", "fake-model")
    picker = controller.view.model_picker
    qtbot.waitUntil(lambda: picker.findData(ref) >= 0, timeout=TIMEOUT)
    assert picker.itemText(picker.findData(ref)) == "fake-model — on flaky"
    _pick(controller, ref)
    qtbot.waitUntil(lambda: controller.loaded_name == ref, timeout=TIMEOUT)
    fake.mode = "status-500"
    _send(qtbot, controller, "hello")
    qtbot.waitUntil(lambda: not controller.generating, timeout=TIMEOUT)
    qtbot.waitUntil(
        lambda: "flaky failed with a server error (HTTP 500)" in controller.view.notice.text(),
        timeout=TIMEOUT,
    )
    _close(parts)
