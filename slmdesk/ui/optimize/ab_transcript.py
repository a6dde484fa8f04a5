"""One side's transcript in the side-by-side view, shown exactly like the chat.

Prompts and replies are the chat's `MessageWidget`s, so a reply is rendered the same way in both
places (Markdown only, nothing loaded, control tokens removed, coloured code). Streaming appends
to the newest reply only. Nothing here is saved: there are no message ids, so no Edit or
Regenerate.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from slmdesk.ui.chat.message_widget import MessageWidget


class ABTranscript(QScrollArea):
    """Prompts and replies of one side; sticks to the bottom while a reply streams."""

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        self.column = QVBoxLayout(body)
        self.column.setContentsMargins(0, 0, 0, 0)
        self.column.setSpacing(4)
        self.placeholder = QLabel("Replies appear here.")
        self.placeholder.setProperty("role", "muted")
        self.column.addWidget(self.placeholder)
        self.column.addStretch(1)
        self.setWidget(body)
        self._messages: list[MessageWidget] = []
        self._stick = True
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range_changed)
        bar.valueChanged.connect(self._on_scrolled)

    def _on_scrolled(self, value: int) -> None:
        self._stick = value >= self.verticalScrollBar().maximum() - 24

    def _on_range_changed(self, _low: int, high: int) -> None:
        if self._stick:
            self.verticalScrollBar().setValue(high)

    @property
    def messages(self) -> list[MessageWidget]:
        """The prompts and replies shown, in order."""
        return list(self._messages)

    def _add(self, widget: MessageWidget) -> None:
        widget.edit_button.setVisible(False)
        widget.copy_requested.connect(QGuiApplication.clipboard().setText)
        self.column.insertWidget(self.column.count() - 1, widget)  # above the stretch
        self._messages.append(widget)
        self.placeholder.setVisible(False)
        self._stick = True

    def add_exchange(self, prompt: str, speaker: str) -> None:
        """Show the user's prompt and an empty reply from ``speaker`` that is being written."""
        self._add(MessageWidget("user", prompt, None, "You"))
        self._add(MessageWidget("assistant", "", None, speaker, finished=False))

    def append(self, text: str) -> None:
        """Add streamed text to the newest reply (only its last segment is re-rendered)."""
        if self._messages and self._messages[-1].role == "assistant":
            self._messages[-1].append(text)

    def finish(self, timings: dict[str, Any] | None = None) -> None:
        """The newest reply is complete (or stopped): show its timings, colour its code."""
        if self._messages and self._messages[-1].role == "assistant":
            self._messages[-1].set_finished(True, timings)

    def clear(self) -> None:
        """Remove every message."""
        for widget in self._messages:
            self.column.removeWidget(widget)
            widget.deleteLater()
        self._messages.clear()
        self.placeholder.setVisible(True)
        self._stick = True

    def toPlainText(self) -> str:  # the name of the plain-text box this replaced
        """The transcript as text: ``You: prompt`` lines, then each reply as written."""
        parts = [f"You: {m.text}" if m.role == "user" else m.text for m in self._messages]
        return "\n\n".join(parts)
