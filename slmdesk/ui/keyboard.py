"""Keyboard equivalents of the mouse on item views: rename, delete and the context menu.

F2 renames and Delete deletes the selected item; Shift+F10 and the Menu key open the view's
context menu at the selected item (through ``customContextMenuRequested``, the signal a right
click emits, so both paths show the same menu). The shortcuts act only while the view has focus.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QAbstractItemView

RENAME_KEYS = ("F2",)
DELETE_KEYS = ("Delete",)
MENU_KEYS = ("Shift+F10", "Menu")


def item_shortcuts(
    view: QAbstractItemView,
    rename: Callable[[], object] | None = None,
    delete: Callable[[], object] | None = None,
) -> list[QShortcut]:
    """Bind F2 to ``rename``, Delete to ``delete`` and the menu keys to the context menu."""
    bound: list[tuple[tuple[str, ...], Callable[[], object] | None]] = [
        (RENAME_KEYS, rename),
        (DELETE_KEYS, delete),
        (MENU_KEYS, lambda: open_context_menu(view)),
    ]
    shortcuts = []
    for keys, action in bound:
        if action is None:
            continue
        for key in keys:
            shortcut = QShortcut(QKeySequence(key), view, context=Qt.ShortcutContext.WidgetShortcut)
            shortcut.activated.connect(action)
            shortcuts.append(shortcut)
    return shortcuts


def open_context_menu(view: QAbstractItemView) -> None:
    """Ask for the context menu at the current item (viewport coordinates, as a right click)."""
    if view.contextMenuPolicy() != Qt.ContextMenuPolicy.CustomContextMenu:
        return
    index = view.currentIndex()
    if index.isValid():
        view.scrollTo(index)
        point = view.visualRect(index).center()
    else:
        point = QPoint(view.viewport().width() // 2, view.viewport().height() // 2)
    view.customContextMenuRequested.emit(point)
