"""A keyboard cursor for the Optimize page's charts, announced through the accessible name.

Both charts (block importance, the make-it-fit front) let a keyboard user step through their
items: the arrows move one item, Home and End jump to the ends, and the chart is redrawn when it
gains or loses the focus (the cursor is only drawn while focused). After every move the chart's
own `_announce` puts the item under the cursor into the accessible name, so a screen reader
reads each step.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFocusEvent, QKeyEvent
from PySide6.QtWidgets import QWidget

# an int key; Qt.Key members are IntEnum, so they compare and hash alike
CURSOR_STEPS: dict[int, int] = {
    Qt.Key.Key_Left: -1,
    Qt.Key.Key_Up: -1,
    Qt.Key.Key_Right: 1,
    Qt.Key.Key_Down: 1,
}


class CursorChart(QWidget):
    """A chart whose items a keyboard cursor walks; subclasses say how many and announce one."""

    def __init__(self) -> None:
        super().__init__()
        self._current = 0
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def current(self) -> int:
        """Index of the item under the keyboard cursor."""
        return self._current

    def _cursor_count(self) -> int:
        """How many items the cursor can stand on."""
        raise NotImplementedError

    def _announce(self) -> None:
        """Say the item under the cursor in the accessible name."""
        raise NotImplementedError

    def _cursor_key(self, key: int) -> bool:
        """Handle a chart's own key on the current item; True when it was handled."""
        return False

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        n = self._cursor_count()
        if n and key in CURSOR_STEPS:
            self._move_to(self._current + CURSOR_STEPS[key])
        elif n and key == Qt.Key.Key_Home:
            self._move_to(0)
        elif n and key == Qt.Key.Key_End:
            self._move_to(n - 1)
        elif not (n and self._cursor_key(key)):
            super().keyPressEvent(event)
            return
        event.accept()

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.update()

    def _move_to(self, index: int) -> None:
        self._current = max(0, min(self._cursor_count() - 1, index))
        self._announce()
        self.update()
