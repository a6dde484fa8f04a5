"""Keyboard and screen-reader access to the real window, as `app.build_window` composes it.

For every page the focus chain is walked with real Tab key presses from the page's first focus
widget. A page fails when a visible, enabled interactive widget has no accessible name (and no
label naming it as its buddy), when Tab never reaches one, or when Tab gets stuck in a widget.
The keyboard shortcuts (page switching, F2, Delete, Shift+F10 / Menu, Ctrl+Q) are pressed for
real and their effect checked on the library index and the conversation database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from focus_walk import (
    describe,
    first_focus_widget,
    focus_and_wait,
    interactive_widgets,
    label_buddies,
    page_problems,
    tab_walk,
)
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QLineEdit,
    QMenu,
    QWidget,
)

from slmdesk.app import AppParts, build_window
from slmdesk.chat.conversations import ConversationStore
from slmdesk.models.library import Library
from slmdesk.ui import dialogs
from slmdesk.ui.main_window import PAGES

WAIT = 30_000


def _window(qtbot, parts: AppParts) -> None:
    window = parts.window
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=WAIT)


@pytest.fixture
def stocked(qtbot, tiny_model: Path) -> Iterator[AppParts]:
    """The window over a library with one model and a conversation with two messages."""
    Library().import_model(tiny_model, copy=False)
    store = ConversationStore()
    conversation = store.create("First chat")
    store.add_message(conversation.id, "user", "Hello")
    store.add_message(conversation.id, "assistant", "Hi! Here is `code`.")
    store.close()
    parts = build_window(autoload_model=False)
    _window(qtbot, parts)
    library_view = parts.library_controller.view
    qtbot.waitUntil(lambda: library_view.table_model.rowCount() == 1, timeout=WAIT)
    assert parts.chat_controller is not None
    conversations = parts.chat_controller.view.conversations
    qtbot.waitUntil(lambda: conversations.count() == 1, timeout=WAIT)
    yield parts
    parts.window.close()
    parts.shutdown()


@pytest.fixture
def empty(qtbot) -> Iterator[AppParts]:
    """The window over an empty library: the Chat page shows the welcome screen."""
    parts = build_window(autoload_model=False)
    _window(qtbot, parts)
    yield parts
    parts.window.close()
    parts.shutdown()


# -- names and the focus chain ----------------------------------------------------------------


def test_every_page_is_named_and_reachable_by_tab(qtbot, stocked: AppParts) -> None:
    window = stocked.window
    chat = stocked.chat_controller
    assert chat is not None
    problems: list[str] = []
    for name in PAGES:
        window.show_page(name)
        page = window.stack.currentWidget()
        if name == "Chat":
            chat.view.conversations.setCurrentRow(0)
            qtbot.waitUntil(lambda: len(chat.view.messages.widgets()) == 2, timeout=WAIT)
            chat.view.settings_button.setChecked(True)  # the chat settings panel too
            problems += page_problems(qtbot, window, page, name)
        elif name == "Optimize":
            optimize = stocked.window.pages["Optimize"]
            for step in range(optimize.stack.count()):
                optimize.show_step(step)
                problems += page_problems(qtbot, window, page, f"Optimize step {step + 1}")
            optimize.show_step(0)
        else:
            problems += page_problems(qtbot, window, page, name)
    assert not problems, "\n".join(problems)


def test_welcome_screen_is_named_and_reachable_by_tab(qtbot, empty: AppParts) -> None:
    window = empty.window
    assert empty.welcome_controller is not None
    welcome = empty.welcome_controller.view
    window.show_page("Chat")
    qtbot.waitUntil(welcome.isVisible, timeout=WAIT)
    problems = page_problems(qtbot, window, window.stack.currentWidget(), "Welcome")
    assert not problems, "\n".join(problems)


def test_library_tab_leaves_the_table_for_the_buttons(qtbot, stocked: AppParts) -> None:
    view = stocked.library_controller.view
    stocked.window.show_page("Library")
    focus_and_wait(qtbot, view.table)
    QTest.keyClick(view.table, Qt.Key.Key_Tab)
    after = QApplication.focusWidget()
    assert after is not view.table
    reached, trap = tab_walk(qtbot, view.table)
    assert not trap
    assert view.details.chat_button in reached
    assert view.details.remove_button in reached


# -- page switching ---------------------------------------------------------------------------


def test_page_shortcuts_focus_each_pages_main_field(qtbot, stocked: AppParts) -> None:
    window = stocked.window
    chat = stocked.chat_controller
    assert chat is not None
    expected = {
        "Chat": chat.view.composer,
        "Library": stocked.library_controller.view.table,
        "Discover": window.pages["Discover"].query,
        "Optimize": window.pages["Optimize"].model_step.table,
        "Settings": window.pages["Settings"].theme,
    }
    focus_and_wait(qtbot, window.navigation)
    for index, name in reversed(list(enumerate(PAGES, start=1))):
        key = Qt.Key(Qt.Key.Key_0.value + index)
        QTest.keyClick(QApplication.focusWidget(), key, Qt.KeyboardModifier.ControlModifier)
        assert window.current_page() == name
        qtbot.waitUntil(lambda n=name: QApplication.focusWidget() is expected[n], timeout=5000)


def test_welcome_screen_gets_focus_when_chat_opens(qtbot, empty: AppParts) -> None:
    window = empty.window
    assert empty.welcome_controller is not None
    welcome = empty.welcome_controller.view
    window.show_page("Library")
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(welcome.isVisible, timeout=WAIT)
    focus = QApplication.focusWidget()
    assert focus is not None and welcome.isAncestorOf(focus)


# -- shortcuts on lists -----------------------------------------------------------------------


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Scripted answers for the text and confirmation dialogs (modal loops cannot run here)."""
    given: dict[str, object] = {"asked": []}

    def ask_text(_parent: object, title: str, _label: str, text: str = "") -> object:
        given["asked"].append((title, text))  # type: ignore[union-attr]
        return given.get("text")

    def confirm(_parent: object, title: str, _message: str, _action: str) -> bool:
        given["asked"].append((title, ""))  # type: ignore[union-attr]
        return bool(given.get("confirm"))

    def ask_remove_linked(_parent: object, name: str, _path: object) -> object:
        given["asked"].append(("Remove model", name))  # type: ignore[union-attr]
        return given.get("remove")

    monkeypatch.setattr(dialogs, "ask_text", ask_text)
    monkeypatch.setattr(dialogs, "confirm", confirm)
    monkeypatch.setattr(dialogs, "ask_remove_linked", ask_remove_linked)
    return given


def test_f2_renames_the_selected_model(qtbot, stocked: AppParts, answers, gui_guard) -> None:
    view = stocked.library_controller.view
    stocked.window.show_page("Library")
    view.table.selectRow(0)
    focus_and_wait(qtbot, view.table)
    answers["text"] = "renamed-tiny"
    QTest.keyClick(view.table, Qt.Key.Key_F2)
    assert answers["asked"] == [("Rename model", "tiny-llama-F16")]
    qtbot.waitUntil(lambda: view.table_model.entries()[0].name == "renamed-tiny", timeout=WAIT)
    with gui_guard.allowed():
        assert [e.name for e in Library().entries()] == ["renamed-tiny"]


def test_delete_removes_the_selected_model_after_asking(
    qtbot, stocked: AppParts, answers, gui_guard
) -> None:
    view = stocked.library_controller.view
    stocked.window.show_page("Library")
    view.table.selectRow(0)
    focus_and_wait(qtbot, view.table)
    QTest.keyClick(view.table, Qt.Key.Key_Delete)  # the user cancels: nothing changes
    assert answers["asked"] == [("Remove model", "tiny-llama-F16")]
    qtbot.waitUntil(lambda: stocked.tasks.idle, timeout=WAIT)
    assert view.table_model.rowCount() == 1
    answers["remove"] = "forget"
    QTest.keyClick(view.table, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: view.table_model.rowCount() == 0, timeout=WAIT)
    with gui_guard.allowed():
        assert Library().entries() == []


def test_f2_and_delete_on_the_chat_list(qtbot, stocked: AppParts, answers, gui_guard) -> None:
    chat = stocked.chat_controller
    assert chat is not None
    conversations = chat.view.conversations
    stocked.window.show_page("Chat")
    conversations.setCurrentRow(0)
    focus_and_wait(qtbot, conversations)
    answers["text"] = "Renamed chat"
    QTest.keyClick(conversations, Qt.Key.Key_F2)
    assert answers["asked"] == [("Rename chat", "First chat")]
    qtbot.waitUntil(lambda: conversations.item(0).text() == "Renamed chat", timeout=WAIT)
    conversations.setCurrentRow(0)
    focus_and_wait(qtbot, conversations)
    QTest.keyClick(conversations, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: conversations.count() == 0, timeout=WAIT)
    assert chat.view.undo_bar.isVisible()  # the usual way back
    with gui_guard.allowed():
        store = ConversationStore()
        try:
            assert store.list_conversations() == []
        finally:
            store.close()


def _menu_from_key(qtbot, view: QAbstractItemView, key: Qt.Key, modifier) -> tuple[list, QPoint]:
    """Press ``key`` on ``view``; returns the context menu's action texts and its position."""
    seen: dict[str, object] = {}

    def look() -> None:
        menu = QApplication.activePopupWidget()
        if not isinstance(menu, QMenu):
            QTimer.singleShot(20, look)
            return
        seen["actions"] = [a.text() for a in menu.actions() if a.text()]
        seen["pos"] = menu.pos()
        menu.close()

    QTimer.singleShot(0, look)
    QTest.keyClick(view, key, modifier)
    qtbot.waitUntil(lambda: "actions" in seen, timeout=5000)
    return seen["actions"], seen["pos"]  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("key", "modifier"),
    [
        (Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier),
        (Qt.Key.Key_Menu, Qt.KeyboardModifier.NoModifier),
    ],
    ids=["shift-f10", "menu-key"],
)
def test_context_menu_keys_open_the_menu_at_the_selected_item(
    qtbot, stocked: AppParts, key, modifier
) -> None:
    chat = stocked.chat_controller
    assert chat is not None
    library = stocked.library_controller.view
    lists: list[tuple[str, QAbstractItemView, Callable[[], None]]] = [
        ("Library", library.table, lambda: library.table.selectRow(0)),
        ("Chat", chat.view.conversations, lambda: chat.view.conversations.setCurrentRow(0)),
    ]
    for page, view, select in lists:
        stocked.window.show_page(page)
        select()
        focus_and_wait(qtbot, view)
        actions, pos = _menu_from_key(qtbot, view, key, modifier)
        assert any(text.startswith("Rename") for text in actions), (page, actions)
        assert any(text.startswith(("Delete", "Remove")) for text in actions), (page, actions)
        item = view.visualRect(view.currentIndex())
        top_left = view.viewport().mapToGlobal(item.topLeft())
        bottom_right = view.viewport().mapToGlobal(item.bottomRight())
        assert top_left.y() <= pos.y() <= bottom_right.y(), (page, pos, item)


def test_ctrl_q_quits_through_the_normal_shutdown(qtbot, stocked: AppParts) -> None:
    window = stocked.window
    window.show_page("Library")
    with qtbot.waitSignal(window.closing, timeout=WAIT):
        QTest.keyClick(
            QApplication.focusWidget(), Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier
        )
    assert not window.isVisible()
    assert stocked.shutdown() == []  # already done by the window's shutdown hook: nothing stuck


# -- the importance chart ---------------------------------------------------------------------


def test_importance_chart_works_from_the_keyboard(qtbot, stocked: AppParts) -> None:
    window = stocked.window
    optimize = window.pages["Optimize"]
    window.show_page("Optimize")
    optimize.show_step(2)
    chart = optimize.prune_step.chart
    chart.set_blocks(4, [0.1, 0.5, 0.25, 0.05])
    chart.set_interactive(True)
    reached, trap = tab_walk(qtbot, first_focus_widget(optimize))
    assert not trap
    assert chart in reached, "Tab never reaches the importance chart"
    focus_and_wait(qtbot, chart)
    assert "block 0" in chart.accessibleName().lower()
    QTest.keyClick(chart, Qt.Key.Key_Right)
    name = chart.accessibleName()
    assert "block 1" in name.lower() and "0.500" in name, name
    QTest.keyClick(chart, Qt.Key.Key_End)
    assert "block 3" in chart.accessibleName().lower()
    QTest.keyClick(chart, Qt.Key.Key_Left)
    with qtbot.waitSignal(chart.toggled, timeout=5000) as toggled:
        QTest.keyClick(chart, Qt.Key.Key_Space)
    assert toggled.args == [2]
    chart.set_selected({2})
    assert "marked for removal" in chart.accessibleName()


# -- dialogs ----------------------------------------------------------------------------------


def _answer_modal(qtbot, answer: Callable[[QWidget], None]) -> list[str]:
    """When a modal dialog opens, list its unnamed controls, then let ``answer`` close it."""
    problems: list[str] = []

    def look() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, look)
            return
        buddies = label_buddies(dialog)
        for widget in interactive_widgets(dialog):
            if not widget.accessibleName().strip() and id(widget) not in buddies:
                problems.append(f"{describe(widget)} has no accessible name")
        answer(dialog)

    QTimer.singleShot(0, look)
    return problems


def test_dialog_controls_are_named(qtbot) -> None:
    def type_and_accept(dialog: QWidget) -> None:
        field = dialog.findChild(QLineEdit)
        assert field is not None
        field.setText("A new title")
        dialog.accept()  # type: ignore[attr-defined]

    problems = _answer_modal(qtbot, type_and_accept)
    assert dialogs.ask_text(None, "Rename chat", "Title:", "Old title") == "A new title"
    problems += _answer_modal(qtbot, lambda dialog: dialog.reject())  # type: ignore[attr-defined]
    assert dialogs.confirm(None, "Remove model", "Delete it?", "Delete") is False
    problems += _answer_modal(qtbot, lambda dialog: dialog.reject())  # type: ignore[attr-defined]
    assert dialogs.ask_import_mode(None, Path("model.gguf")) is None
    assert not problems, "\n".join(problems)


def test_window_opens_with_the_focus_in_the_chat_composer(qtbot, stocked: AppParts) -> None:
    chat = stocked.chat_controller
    assert chat is not None
    qtbot.waitUntil(lambda: QApplication.focusWidget() is chat.view.composer, timeout=5000)
