"""The chat header says when the model is a base model, and offers text completion by keyboard."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from slmdesk.app import AppParts, build_window
from slmdesk.chat.conversations import ConversationStore
from slmdesk.chat.session import CHAT, COMPLETE
from slmdesk.models.completion import DESCRIPTION as COMPLETION_DESCRIPTION
from slmdesk.models.library import Library
from slmdesk.ui.chat.controller import ChatController

TIMEOUT = 60_000


def _open(qtbot, model: Path) -> tuple[AppParts, ChatController]:
    Library().import_model(model)
    parts = build_window(autoload_model=True)
    qtbot.addWidget(parts.window)
    parts.window.show()
    parts.window.show_page("Chat")
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: controller.loaded_name == model.stem, timeout=TIMEOUT)
    return parts, controller


def _send(qtbot, parts: AppParts, controller: ChatController, text: str) -> None:
    controller.view.composer.setPlainText(text)
    qtbot.keyClick(controller.view.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: controller.generating, timeout=5000)
    qtbot.waitUntil(lambda: not controller.generating, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)


def test_a_base_model_is_named_as_such_and_text_completion_is_one_key_away(
    qtbot, tiny_model_no_template: Path, gui_guard
) -> None:
    parts, controller = _open(qtbot, tiny_model_no_template)
    try:
        bar = controller.view.base_model_bar
        assert bar.isVisible()
        assert "tiny-base-F16 looks like a base model" in bar.label.text()
        assert "question-and-answer format" in controller.view.format_label.text()
        toggle = bar.complete_toggle
        assert toggle.isVisible() and toggle.focusPolicy() & Qt.FocusPolicy.TabFocus
        controller.view.settings_panel.max_tokens.setValue(6)
        controller.view.settings_panel.seed.setValue(5)
        _send(qtbot, parts, controller, "what is the capital")
        assert controller.view.format_label.text().startswith("Prompt format: question-and")

        controller.view.composer.setFocus()
        qtbot.keyClick(parts.window, Qt.Key.Key_T, Qt.KeyboardModifier.AltModifier)
        qtbot.waitUntil(toggle.isChecked, timeout=5000)
        assert bar.mode() == COMPLETE and "continued as written" in bar.label.text()
        _send(qtbot, parts, controller, "the cat sat on")
        assert controller.view.format_label.text() == f"Prompt format: {COMPLETION_DESCRIPTION}"
        widgets = controller.view.messages.widgets()
        assert [w.role for w in widgets] == ["user", "assistant"] * 2
        with gui_guard.allowed():
            store = ConversationStore()
            (conversation,) = store.list_conversations()

        def stored_mode() -> object:  # settings are saved a moment after a change
            with gui_guard.allowed():
                return store.get(conversation.id).settings.get("mode")

        qtbot.waitUntil(lambda: stored_mode() == COMPLETE, timeout=TIMEOUT)
        with gui_guard.allowed():
            saved = store.get(conversation.id)
            store.close()
        assert [m.text for m in saved.messages if m.role == "user"] == [
            "what is the capital",
            "the cat sat on",
        ]
        assert not any("Question:" in m.text or "Answer:" in m.text for m in saved.messages)

        controller.new_chat()  # a new conversation starts in chat mode
        assert bar.mode() == CHAT and bar.isVisible()
    finally:
        parts.window.close()
        parts.shutdown()


def test_a_chat_model_gets_no_base_model_line(qtbot, tiny_model: Path) -> None:
    parts, controller = _open(qtbot, tiny_model)
    try:
        assert not controller.view.base_model_bar.isVisible()
        assert "own chat template" in controller.view.format_label.text()
    finally:
        parts.window.close()
        parts.shutdown()
