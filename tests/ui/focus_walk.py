"""Walking a window's focus chain with real Tab presses, for the accessibility tests.

`page_problems` lists, as sentences, what keeps a keyboard or screen-reader user from a page: a
visible, enabled interactive widget without an accessible name (or a label naming it as its
buddy), one that Tab never reaches, and Tab stuck in one widget.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QRadioButton,
    QScrollBar,
    QTextEdit,
    QWidget,
)

INTERACTIVE = (
    QAbstractButton,
    QLineEdit,
    QTextEdit,
    QPlainTextEdit,
    QComboBox,
    QAbstractSpinBox,
    QAbstractItemView,
    QAbstractSlider,
)
TAB_LIMIT = 400


def _is_part_of_another(widget: QWidget) -> bool:
    """Sub-controls Qt builds inside a composite widget (a spin box's editor, a line edit's clear
    button, scroll bars, table headers): the composite widget is the one users meet."""
    if isinstance(widget, QScrollBar | QHeaderView):
        return True
    if widget.metaObject().className() == "QTableCornerButton":
        return True
    parent = widget.parentWidget()
    return isinstance(parent, QAbstractSpinBox | QComboBox | QLineEdit)


def interactive_widgets(page: QWidget) -> list[QWidget]:
    return [
        w
        for w in page.findChildren(QWidget)
        if isinstance(w, INTERACTIVE)
        and w.isVisible()
        and w.isEnabled()
        and not _is_part_of_another(w)
    ]


def _takes_tab(widget: QWidget) -> bool:
    policy = widget.focusPolicy().value
    return bool(policy & Qt.FocusPolicy.TabFocus.value)


def first_focus_widget(page: QWidget) -> QWidget:
    """The first widget of ``page`` in the window's focus chain that Tab can stop at."""
    widget = page.nextInFocusChain()
    while widget is not page:
        if (
            page.isAncestorOf(widget)
            and widget.isVisible()
            and widget.isEnabled()
            and _takes_tab(widget)
            and widget.focusProxy() is None
        ):
            return widget
        widget = widget.nextInFocusChain()
    raise AssertionError(f"{type(page).__name__} has no widget that takes keyboard focus")


def label_buddies(root: QWidget) -> set[int]:
    return {id(label.buddy()) for label in root.findChildren(QLabel) if label.buddy() is not None}


def describe(widget: QWidget) -> str:
    text = ""
    if isinstance(widget, QAbstractButton | QLineEdit):
        text = widget.text()
    elif isinstance(widget, QPlainTextEdit | QTextEdit):
        text = widget.placeholderText()
    tip = widget.toolTip()
    return f"{type(widget).__name__}({text!r}{', tip ' + repr(tip) if tip else ''})"


def focus_and_wait(qtbot, widget: QWidget) -> None:
    window = widget.window()
    if QApplication.activeWindow() is not window:  # a closed popup may leave none active
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    widget.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=5000)


def tab_walk(qtbot, start: QWidget) -> tuple[list[QWidget], str]:
    """Press Tab from ``start`` until focus comes back to it; returns what got focus, and a
    problem ("" when none): Tab stuck in one widget, or never coming back."""
    focus_and_wait(qtbot, start)
    reached = [start]
    for _ in range(TAB_LIMIT):
        current = QApplication.focusWidget()
        QTest.keyClick(current, Qt.Key.Key_Tab)
        following = QApplication.focusWidget()
        if following is start:
            return reached, ""
        if following is current or following is None:
            return reached, f"Tab does not leave {describe(current)}"
        reached.append(following)
    return reached, f"Tab never comes back to {describe(start)} after {TAB_LIMIT} presses"


def _group_reached(radio: QRadioButton, reached: list[QWidget]) -> bool:
    """Tab stops at one radio button of an exclusive group; the arrows move within it."""
    group = radio.group()
    members = (
        group.buttons() if group is not None else radio.parentWidget().findChildren(QRadioButton)
    )
    return any(member in reached for member in members)


def page_problems(qtbot, window: QWidget, page: QWidget, where: str) -> list[str]:
    """Unnamed or unreachable interactive widgets of ``page`` (and Tab traps), as sentences."""
    problems: list[str] = []
    reached, trap = tab_walk(qtbot, first_focus_widget(page))
    if trap:
        problems.append(f"{where}: {trap}")
    buddies = label_buddies(window)
    candidates = interactive_widgets(page)
    for widget in reached:
        if page.isAncestorOf(widget) and widget not in candidates:
            candidates.append(widget)  # anything Tab stops at is announced: it needs a name too
    for widget in candidates:
        if not widget.accessibleName().strip() and id(widget) not in buddies:
            problems.append(f"{where}: {describe(widget)} has no accessible name")
        if not any(f is widget or widget.isAncestorOf(f) for f in reached) and not (
            isinstance(widget, QRadioButton) and _group_reached(widget, reached)
        ):
            problems.append(f"{where}: Tab never reaches {describe(widget)}")
    return problems
