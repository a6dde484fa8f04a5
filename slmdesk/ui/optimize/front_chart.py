"""The size-versus-KLD chart of a make-it-fit run: every built candidate as a labelled point,
the Pareto front joined by a line, the target as dashed bounds and the winner ringed."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy

from slmdesk.optimize.fit.front import Outcome
from slmdesk.optimize.fit.target import FitTarget
from slmdesk.ui.optimize.chart_cursor import CursorChart
from slmdesk.ui.theme import ACCENT

CHART_NAME = "Size and quality of the measured models"
CHART_KEYS = "Left and Right arrows move between models, smallest first."
WINNER_COLOR = "#2e8b57"
OFF_FRONT_COLOR = "#9a9ea8"
TARGET_COLOR = "#d04242"
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP, MARGIN_RIGHT = 56, 34, 12, 16


def point_text(o: Outcome, winner: bool = False) -> str:
    """What the chart says about one point (tooltip and accessible name)."""
    size = (o.size_bytes or 0) / 1e6
    text = f"{o.candidate.label()}: {size:,.1f} MB, KLD {o.kld_mean or 0:.4f}"
    if o.top1_agreement is not None:
        text += f", top-1 agreement {o.top1_agreement * 100:.1f} %"
    if winner:
        text += " (winner)"
    elif o.on_front:
        text += " (on the front)"
    return text


class FrontChart(CursorChart):
    """Measured models as points: size across, KL divergence up. Keyboard: arrows, Home, End."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._points: list[Outcome] = []
        self._winner: Outcome | None = None
        self._target: FitTarget | None = None
        self.setAccessibleDescription(CHART_KEYS)
        self._announce()

    # -- state ----------------------------------------------------------------------------------

    def set_front(
        self,
        outcomes: Sequence[Outcome],
        winner: Outcome | None = None,
        target: FitTarget | None = None,
    ) -> None:
        """Show the measured ``outcomes`` (others are ignored), smallest first."""
        self._points = sorted(
            (o for o in outcomes if o.measured), key=lambda o: (o.size_bytes, o.kld_mean)
        )
        self._winner = winner
        self._target = target
        self._current = min(self._current, max(0, len(self._points) - 1))
        self._announce()
        self.update()

    def points(self) -> list[Outcome]:
        """The plotted outcomes, smallest first."""
        return list(self._points)

    def is_winner(self, o: Outcome) -> bool:
        """Whether ``o`` is the winner (compared by candidate)."""
        return self._winner is not None and o.candidate == self._winner.candidate

    # -- geometry -------------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        return QSize(560, 260)

    def _plot(self) -> QRectF:
        return QRectF(
            MARGIN_LEFT,
            MARGIN_TOP,
            max(1, self.width() - MARGIN_LEFT - MARGIN_RIGHT),
            max(1, self.height() - MARGIN_TOP - MARGIN_BOTTOM),
        )

    def _ranges(self) -> tuple[float, float, float, float]:
        sizes = [float(o.size_bytes or 0) for o in self._points]
        klds = [float(o.kld_mean or 0) for o in self._points]
        if self._target is not None and self._target.max_size_bytes is not None:
            sizes.append(float(self._target.max_size_bytes))
        if self._target is not None and self._target.max_kld is not None:
            klds.append(self._target.max_kld)
        lo, hi = min(sizes), max(sizes)
        pad = (hi - lo) * 0.08 or hi * 0.05 or 1.0
        return lo - pad, hi + pad, 0.0, (max(klds) * 1.12) or 1.0

    def position(self, o: Outcome) -> QPointF:
        """Where ``o`` is drawn."""
        plot = self._plot()
        x0, x1, y0, y1 = self._ranges()
        x = plot.left() + ((o.size_bytes or 0) - x0) / (x1 - x0) * plot.width()
        y = plot.bottom() - ((o.kld_mean or 0) - y0) / (y1 - y0) * plot.height()
        return QPointF(x, y)

    # -- painting -------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().color(self.foregroundRole())
        plot = self._plot()
        painter.setPen(QPen(QColor(OFF_FRONT_COLOR), 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.bottomLeft(), plot.topLeft())
        font = painter.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        painter.setPen(text)
        painter.drawText(
            QRectF(plot.left(), plot.bottom() + 16, plot.width(), 16),
            Qt.AlignmentFlag.AlignCenter,
            "file size (MB) →",
        )
        painter.save()
        painter.translate(12, plot.center().y())
        painter.rotate(-90)
        painter.drawText(QRectF(-60, -8, 120, 16), Qt.AlignmentFlag.AlignCenter, "KLD ↑ (worse)")
        painter.restore()
        if not self._points:
            painter.drawText(
                plot, Qt.AlignmentFlag.AlignCenter, "Measured models appear here as they are built."
            )
            return
        x0, x1, y0, y1 = self._ranges()
        for value, where in ((x0, plot.left()), (x1, plot.right() - 40)):
            painter.drawText(
                QRectF(where, plot.bottom() + 2, 48, 14),
                Qt.AlignmentFlag.AlignLeft,
                f"{max(0.0, value) / 1e6:,.1f}",
            )
        painter.drawText(
            QRectF(0, plot.top() - 4, MARGIN_LEFT - 6, 14), Qt.AlignmentFlag.AlignRight, f"{y1:.3g}"
        )
        self._draw_target(painter, plot, x0, x1, y0, y1)
        front = [o for o in self._points if o.on_front]
        painter.setPen(QPen(QColor(ACCENT), 1.5))
        for a, b in pairwise(front):
            painter.drawLine(self.position(a), self.position(b))
        for i, o in enumerate(self._points):
            self._draw_point(painter, o, i, text)

    def _draw_target(
        self, painter: QPainter, plot: QRectF, x0: float, x1: float, y0: float, y1: float
    ) -> None:
        if self._target is None:
            return
        painter.setPen(QPen(QColor(TARGET_COLOR), 1, Qt.PenStyle.DashLine))
        if self._target.max_size_bytes is not None:
            x = plot.left() + (self._target.max_size_bytes - x0) / (x1 - x0) * plot.width()
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        if self._target.max_kld is not None:
            y = plot.bottom() - (self._target.max_kld - y0) / (y1 - y0) * plot.height()
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))

    def _draw_point(self, painter: QPainter, o: Outcome, index: int, text: QColor) -> None:
        p = self.position(o)
        winner = self.is_winner(o)
        color = QColor(WINNER_COLOR if winner else ACCENT if o.on_front else OFF_FRONT_COLOR)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        radius = 6.0 if winner else 4.5
        painter.drawEllipse(p, radius, radius)
        if winner:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(color, 2))
            painter.drawEllipse(p, radius + 4, radius + 4)
        if index == self._current and self.hasFocus():
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(text, 1.5, Qt.PenStyle.DashLine))
            painter.drawRect(QRectF(p.x() - 11, p.y() - 11, 22, 22))
        painter.setPen(text)
        label = o.candidate.type + ("+im" if o.candidate.imatrix else "")
        if o.candidate.embedding_type:
            label += f"/{o.candidate.embedding_type}"
        painter.drawText(QPointF(p.x() + 8, p.y() - 6 - (index % 2) * 10), label)

    # -- keyboard -------------------------------------------------------------------------------

    def _cursor_count(self) -> int:
        return len(self._points)

    def _announce(self) -> None:
        """The focused point in the accessible name, so a screen reader reads each move."""
        if not self._points:
            self.setAccessibleName(f"{CHART_NAME}: none measured yet")
            self.setToolTip("")
            return
        o = self._points[self._current]
        head = f"model {self._current + 1} of {len(self._points)}"
        text = point_text(o, self.is_winner(o))
        self.setAccessibleName(f"{CHART_NAME}, {head}: {text}")
        self.setToolTip(text)
