"""A one-line label that shortens its text with "…" to fit, and shows the whole text as a tooltip.

Why: a plain QLabel asks for its full text width as its minimum, so a long model state or chat
title forces the page wider than the window and the layout draws widgets over each other (or cuts
the text mid-word). This label can shrink to a few characters; nothing is lost, the tooltip has it.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtWidgets import QComboBox, QLabel, QSizePolicy, QWidget

# The narrowest the label gets: a few characters and the ellipsis.
MINIMUM_TEXT = "Mmmm…"


class ElidedLabel(QLabel):
    """Plain text on one line, elided where it does not fit; `text()` is always the full text."""

    def __init__(
        self,
        text: str = "",
        parent: QWidget | None = None,
        mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
        whole_up_to: int = 0,
    ) -> None:
        """``whole_up_to``: a text at most this many pixels wide is never shortened."""
        super().__init__(parent)
        self._whole_up_to = whole_up_to
        self._full = ""
        self._mode = mode
        self._own_tooltip = ""  # set by the label's users; the full text is added when elided
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(False)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def text(self) -> str:  # type: ignore[override]
        """The full text, however much of it is shown."""
        return self._full

    def shown_text(self) -> str:
        """What is drawn: the text, or its elided form."""
        return super().text()

    def setText(self, text: str) -> None:  # type: ignore[override]
        """Show ``text``, elided to the label's width."""
        self._full = text
        self._elide()
        self.updateGeometry()

    def is_elided(self) -> bool:
        """Whether part of the text is hidden."""
        return self.shown_text() != self._full

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._full) + margins.left() + margins.right()
        return QSize(width + 2 * self.margin() + 2, hint.height())

    def minimumSizeHint(self) -> QSize:
        whole = self.sizeHint()
        if whole.width() <= self._whole_up_to:
            return whole
        margins = self.contentsMargins()
        width = (
            self.fontMetrics().horizontalAdvance(MINIMUM_TEXT) + margins.left() + margins.right()
        )
        return QSize(width, super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        super().resizeEvent(event)
        self._elide()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._elide()
            self.updateGeometry()

    def _elide(self) -> None:
        width = self.contentsRect().width() - 2 * self.margin()
        shown = self.fontMetrics().elidedText(self._full, self._mode, max(width, 0))
        if shown != super().text():
            super().setText(shown)
        self._show_tooltip()

    def setToolTip(self, tip: str) -> None:  # type: ignore[override]
        """Set the label's own tooltip; the full text goes first while it is elided."""
        self._own_tooltip = tip
        self._show_tooltip()

    def _show_tooltip(self) -> None:
        parts = [self._full] if self.is_elided() else []
        if self._own_tooltip:
            parts.append(self._own_tooltip)
        tip = "\n".join(parts)
        if tip != self.toolTip():
            super().setToolTip(tip)


class ShrinkingComboBox(QComboBox):
    """A combo box as wide as its longest item when there is room, down to `minimum_width`.


    QComboBox with ``AdjustToContents`` refuses to be narrower than its longest item, which
    pushes its neighbours over each other in a narrow header; this one shortens the shown text
    with "…" instead (the style elides it) and puts the whole choice in its tooltip.
    """

    def __init__(self, minimum_width: int = 160, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._minimum_width = minimum_width
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.currentTextChanged.connect(lambda _text: self._show_tooltip())
        model = self.model()
        for signal in (model.rowsInserted, model.rowsRemoved, model.modelReset, model.dataChanged):
            signal.connect(self._fit_to_items)

    def _fit_to_items(self, *_args: object) -> None:
        """Never wider than the longest item: extra room goes to the widgets beside it."""
        self.setMaximumWidth(self.sizeHint().width())

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), self._minimum_width), hint.height())

    def is_elided(self) -> bool:
        """Whether the shown choice is cut short."""
        return self.width() < self.sizeHint().width()

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        super().resizeEvent(event)
        self._show_tooltip()

    def _show_tooltip(self) -> None:
        self.setToolTip(self.currentText() if self.is_elided() else "")
