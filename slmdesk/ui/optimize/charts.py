"""Small QPainter charts for the Optimize page: per-block importance and the report's bars."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QHelpEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from slmdesk.ui.optimize.chart_cursor import CursorChart
from slmdesk.ui.theme import ACCENT

REMOVE_COLOR = "#d04242"
CHOSEN_COLOR = "#d08a00"
UNMEASURED_COLOR = "#9a9ea8"
CHART_NAME = "Block importance"
CHART_KEYS = "Left and Right arrows move between blocks."
CHART_TOGGLE = " Space marks the block for removal or keeps it."
TOGGLE_KEYS = (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter)


class ImportanceChart(CursorChart):
    """One bar per block: how much the output changes (KL divergence) when it alone is removed.

    Bar height is the square root of the KL divergence, so small differences between the cheap
    blocks (the interesting ones) stay visible next to a block that costs ten times more. In
    manual mode a click toggles a block for removal (`toggled`).

    From the keyboard: the arrows, Home and End move a cursor between bars, Space or Enter
    toggles the bar under it in manual mode. The accessible name always says which bar the cursor
    is on and its value, so a screen reader announces each move.
    """

    toggled = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(170)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self._n = 0
        self._importance: list[float | None] | None = None
        self._global: list[bool] | None = None
        self._selected: set[int] = set()
        self._interactive = False
        self._announce()

    # -- state ----------------------------------------------------------------------------------

    def set_blocks(
        self,
        n: int,
        importance: Sequence[float | None] | None = None,
        global_flags: list[bool] | None = None,
    ) -> None:
        """Show ``n`` blocks; ``importance`` None draws placeholders (not measured yet), and so
        does a None entry (that block is not measured yet, while the others arrive)."""
        self._n = n
        self._importance = list(importance) if importance is not None else None
        self._global = list(global_flags) if global_flags is not None else None
        self._selected = {b for b in self._selected if b < n}
        self._current = min(self._current, max(0, n - 1))
        self._announce()
        self.update()

    def set_selected(self, blocks: set[int] | list[int]) -> None:
        """Blocks marked for removal."""
        self._selected = set(blocks)
        self._announce()
        self.update()

    def selected(self) -> list[int]:
        """Blocks marked for removal, sorted."""
        return sorted(self._selected)

    def set_interactive(self, on: bool) -> None:
        """Whether clicks toggle blocks (manual mode)."""
        self._interactive = on
        self.setCursor(Qt.CursorShape.PointingHandCursor if on else Qt.CursorShape.ArrowCursor)
        self._announce()
        self.update()

    @property
    def importance(self) -> list[float | None] | None:
        """The measured importance, if any (None for blocks still being measured)."""
        return self._importance

    # -- geometry -------------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        return QSize(520, 190)

    def _plot(self) -> QRectF:
        return QRectF(8, 8, max(1, self.width() - 16), max(1, self.height() - 8 - 34))

    def _bar_rect(self, index: int) -> QRectF:
        plot = self._plot()
        slot = plot.width() / max(1, self._n)
        width = max(2.0, slot * 0.7)
        x = plot.left() + slot * index + (slot - width) / 2
        measured = [v for v in self._importance or () if v is not None]
        value = self._importance[index] if self._importance is not None else None
        if value is None:
            fraction = 0.12 if measured else 0.35  # low stubs while the others arrive
        else:
            top = max(measured) or 1.0
            fraction = max(0.02, math.sqrt(max(0.0, value) / top))
        height = plot.height() * fraction
        return QRectF(x, plot.bottom() - height, width, height)

    def block_at(self, x: float) -> int | None:
        """The block under horizontal position ``x``."""
        plot = self._plot()
        if self._n == 0 or not plot.left() <= x < plot.right():
            return None
        return min(self._n - 1, int((x - plot.left()) / (plot.width() / self._n)))

    # -- painting -------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text_color = self.palette().color(self.foregroundRole())
        plot = self._plot()
        painter.setPen(QPen(QColor(UNMEASURED_COLOR), 1))
        painter.drawLine(QPointF(plot.left(), plot.bottom()), QPointF(plot.right(), plot.bottom()))
        if self._n == 0:
            painter.setPen(text_color)
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "No model chosen")
            return
        font = painter.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        slot = plot.width() / self._n
        if self._importance is None:
            painter.setPen(text_color)
            painter.drawText(
                QRectF(plot.left(), plot.top(), plot.width(), plot.height() * 0.5),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                "Not measured yet: “Measure importance” scores each block on the calibration text.",
            )
        for i in range(self._n):
            rect = self._bar_rect(i)
            if i in self._selected:
                color = QColor(REMOVE_COLOR)
            elif self._importance is None or self._importance[i] is None:
                color = QColor(UNMEASURED_COLOR)
            else:
                color = QColor(ACCENT)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(rect, 2, 2)
            if i in self._selected:
                painter.setPen(QPen(QColor("white"), 2))
                inset = min(rect.width(), rect.height(), 12) / 2
                c = rect.center()
                painter.drawLine(
                    QPointF(c.x() - inset / 2, c.y() - inset / 2),
                    QPointF(c.x() + inset / 2, c.y() + inset / 2),
                )
                painter.drawLine(
                    QPointF(c.x() + inset / 2, c.y() - inset / 2),
                    QPointF(c.x() - inset / 2, c.y() + inset / 2),
                )
            painter.setPen(text_color)
            if slot >= 14 or i % 2 == 0:
                label = QRectF(plot.left() + slot * i, plot.bottom() + 2, slot, 15)
                painter.drawText(label, Qt.AlignmentFlag.AlignCenter, str(i))
            if self._global is not None and i < len(self._global) and self._global[i]:
                mark = QRectF(plot.left() + slot * i, plot.bottom() + 17, slot, 15)
                painter.setPen(QColor(CHOSEN_COLOR))
                painter.drawText(mark, Qt.AlignmentFlag.AlignCenter, "G")
        if self.hasFocus():  # the keyboard cursor: a dashed frame around its slot
            painter.setPen(QPen(text_color, 1.5, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            cursor = QRectF(plot.left() + slot * self._current, plot.top(), slot, plot.height())
            painter.drawRect(cursor.adjusted(1, 1, -1, -1))

    # -- interaction ----------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if not self._interactive or event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        block = self.block_at(event.position().x())
        if block is not None:
            self._move_to(block)
            self.toggled.emit(block)

    def _cursor_count(self) -> int:
        return self._n

    def _cursor_key(self, key: int) -> bool:
        """Space or Enter toggles the block under the cursor in manual mode."""
        if not (self._interactive and key in TOGGLE_KEYS):
            return False
        self.toggled.emit(self._current)
        return True

    def _announce(self) -> None:
        """Put the cursor's bar into the accessible name (screen readers read name changes)."""
        self.setAccessibleDescription(CHART_KEYS + (CHART_TOGGLE if self._interactive else ""))
        if self._n == 0:
            self.setAccessibleName(f"{CHART_NAME}: no model chosen")
            return
        details = self.tooltip_for(self._current).split("\n")
        head = f"block {self._current} of {self._n}"
        self.setAccessibleName(f"{CHART_NAME}, {head}: " + ", ".join(details[1:]))

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            block = self.block_at(event.pos().x())
            if block is None:
                QToolTip.hideText()
                return True
            QToolTip.showText(event.globalPos(), self.tooltip_for(block), self)
            return True
        return super().event(event)

    def tooltip_for(self, block: int) -> str:
        """The hover text of one bar."""
        parts = [f"Block {block}"]
        value = self._importance[block] if self._importance is not None else None
        if value is not None:
            parts.append(f"KL divergence when removed: {value:.3f}")
        else:
            parts.append("importance not measured yet")
        if self._global is not None and block < len(self._global):
            parts.append(
                "full (global) attention" if self._global[block] else "sliding-window attention"
            )
        if block in self._selected:
            parts.append("marked for removal")
        return "\n".join(parts)


class ReportChart(QWidget):
    """Paired horizontal bars: file size before/after, and KL divergence of the alternatives."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(150)
        self._groups: list[tuple[str, list[tuple[str, float, str, str]]]] = []

    def set_groups(self, groups: list[tuple[str, list[tuple[str, float, str, str]]]]) -> None:
        """``[(title, [(label, value, value_text, color), ...]), ...]``; bars scale per group."""
        self._groups = groups
        self.setAccessibleName("Report chart")
        self.setAccessibleDescription(
            "; ".join(
                f"{title}: " + ", ".join(f"{label} {text}" for label, _v, text, _c in bars)
                for title, bars in groups
            )
        )
        rows = sum(1 + len(bars) for _, bars in groups)
        self.setMinimumHeight(12 + rows * 22)
        self.updateGeometry()
        self.update()

    def groups(self) -> list[tuple[str, list[tuple[str, float, str, str]]]]:
        """What is drawn (for tests)."""
        return self._groups

    def sizeHint(self) -> QSize:
        return QSize(420, self.minimumHeight())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text_color = self.palette().color(self.foregroundRole())
        y = 6.0
        label_width = 150.0
        value_width = 90.0
        bar_space = max(20.0, self.width() - label_width - value_width - 16)
        for title, bars in self._groups:
            font = painter.font()
            font.setBold(True)
            painter.setFont(font)
            painter.setPen(text_color)
            painter.drawText(
                QRectF(4, y, self.width() - 8, 20), Qt.AlignmentFlag.AlignVCenter, title
            )
            font.setBold(False)
            painter.setFont(font)
            y += 22
            top = max((v for _, v, _, _ in bars), default=0.0) or 1.0
            for label, value, text, color in bars:
                painter.setPen(text_color)
                painter.drawText(
                    QRectF(12, y, label_width - 16, 18),
                    Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                    label,
                )
                width = max(2.0, bar_space * max(0.0, value) / top)
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(QColor(color))
                painter.drawRoundedRect(QRectF(label_width, y + 3, width, 13), 3, 3)
                painter.setPen(text_color)
                painter.drawText(
                    QRectF(label_width + width + 6, y, value_width, 18),
                    Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                    text,
                )
                y += 22
