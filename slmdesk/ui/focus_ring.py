"""A clearly visible keyboard-focus ring, the same for every widget in both themes.

Why: Fusion marks keyboard focus with a faint, partly transparent outline (and some of the
style sheet's widgets with none), so a keyboard user loses track of where they are. One overlay
per window draws a 2-pixel accent ring around whichever widget has focus, while focus moves by
keyboard (Tab, shortcuts); a mouse click hides it, as in most desktop apps.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QApplication, QWidget

RING_WIDTH = 2
RING_GAP = 1  # between the widget and the ring: an accent-coloured button keeps its ring visible
_OUTSET = RING_WIDTH + RING_GAP
_TRACKED = (QEvent.Type.Move, QEvent.Type.Resize, QEvent.Type.Show, QEvent.Type.Hide)


class FocusRing(QWidget):
    """Draws the ring over ``window``'s focused widget; lives as a child of the window."""

    def __init__(self, window: QWidget, color: str) -> None:
        super().__init__(window)
        self._color = QColor(color)
        self._target: QWidget | None = None
        self._watched: list[QWidget] = []
        self._ring = QRect()
        self.setObjectName("focusRing")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.hide()
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        app.focusChanged.connect(self._on_focus_changed)

    def set_color(self, color: str) -> None:
        """Change the ring's colour (for a theme)."""
        self._color = QColor(color)
        self.update()

    def target(self) -> QWidget | None:
        """The widget the ring is drawn around, when shown."""
        return self._target if self.isVisible() else None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _TRACKED:
            self._place()
        return False

    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        self._unwatch()
        window = self.parentWidget()
        if new is None or window is None or new.window() is not window:
            self.hide()
            return
        # Qt marks the window when focus moved by Tab or a shortcut, and clears the mark on a
        # mouse press: the ring is for keyboard users and does not follow clicks
        if not window.testAttribute(Qt.WidgetAttribute.WA_KeyboardFocusChange):
            self.hide()
            return
        self._target = new
        widget: QWidget | None = new
        while widget is not None and widget is not window:  # moves of any ancestor move it
            widget.installEventFilter(self)
            self._watched.append(widget)
            widget = widget.parentWidget()
        self._place()

    def _unwatch(self) -> None:
        for widget in self._watched:
            try:
                widget.removeEventFilter(self)
            except RuntimeError:  # already deleted
                pass
        self._watched = []
        self._target = None

    def _place(self) -> None:
        target, window = self._target, self.parentWidget()
        try:
            shown = target is not None and window is not None and target.isVisible()
        except RuntimeError:  # the focused widget was deleted
            shown = False
        if not shown or target is None or window is None:
            self.hide()
            return
        ring = QRect(target.mapTo(window, QPoint(0, 0)), target.size())
        visible = ring.adjusted(-_OUTSET, -_OUTSET, _OUTSET, _OUTSET)
        ancestor = target.parentWidget()
        while ancestor is not None and ancestor is not window:  # clip to scroll areas and such
            area = QRect(ancestor.mapTo(window, QPoint(0, 0)), ancestor.size())
            visible &= area.adjusted(-_OUTSET, -_OUTSET, _OUTSET, _OUTSET)
            ancestor = ancestor.parentWidget()
        if visible.isEmpty():
            self.hide()
            return
        self._ring = ring.adjusted(-_OUTSET, -_OUTSET, _OUTSET, _OUTSET).translated(
            -visible.topLeft()
        )
        self.setGeometry(visible)
        self.raise_()
        self.show()
        self.update()

    def _ring_rect(self) -> QRect:
        return self._ring

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self._color, RING_WIDTH)
        painter.setPen(pen)
        # the ring's rectangle in this widget (part of it may be clipped away at the edges)
        ring = QRectF(self._ring_rect()).adjusted(
            RING_WIDTH / 2, RING_WIDTH / 2, -RING_WIDTH / 2, -RING_WIDTH / 2
        )
        painter.drawRoundedRect(ring, 4, 4)
        painter.end()
