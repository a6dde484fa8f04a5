"""Names for screen readers and keyboard focus, in one place.

Qt announces a widget by its accessible name; a button's text or a placeholder is not reliably
used by every screen reader, and icon or number fields have none. Views call `named` right where
they create a widget. `focus_main_field` gives a page's main field the keyboard focus when the page
is opened, so typing goes where the user looks.
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStackedWidget, QWidget

W = TypeVar("W", bound=QWidget)


def named(widget: W, name: str, description: str | None = None) -> W:
    """Give ``widget`` an accessible name and description; returns it for inline use.

    The description defaults to the widget's tooltip, which usually says what the field does.
    """
    widget.setAccessibleName(name)
    text = description if description is not None else widget.toolTip()
    if text:
        widget.setAccessibleDescription(text)
    return widget


def takes_keyboard_focus(widget: QWidget) -> bool:
    """Whether Tab can stop at ``widget`` right now (shown, enabled, accepting Tab focus)."""
    policy = widget.focusPolicy().value & Qt.FocusPolicy.TabFocus.value
    return bool(policy) and widget.isVisible() and widget.isEnabled()


def current_page(page: QWidget) -> QWidget:
    """The widget actually shown for ``page`` (stacked widgets are followed down)."""
    while isinstance(page, QStackedWidget) and page.currentWidget() is not None:
        page = page.currentWidget()
    return page


def focus_main_field(page: QWidget) -> bool:
    """Focus the main field of ``page`` (or its first focusable widget); True when focused.

    A page names its main field with a ``main_field()`` method; a field that is hidden or
    disabled at the moment falls back to the first widget Tab would reach on the page.
    """
    page = current_page(page)
    main = getattr(page, "main_field", None)
    target = main() if callable(main) else None
    if isinstance(target, QWidget):
        target = current_page(target)
    if not isinstance(target, QWidget) or not takes_keyboard_focus(target):
        target = _first_focusable(page)
    if target is None:
        return False
    target.setFocus(Qt.FocusReason.ShortcutFocusReason)
    return True


def _first_focusable(page: QWidget) -> QWidget | None:
    widget = page.nextInFocusChain()
    while widget is not None and widget is not page:
        if page.isAncestorOf(widget) and takes_keyboard_focus(widget):
            return widget
        widget = widget.nextInFocusChain()
    return None
