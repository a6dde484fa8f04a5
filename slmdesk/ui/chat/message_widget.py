"""One message in the conversation view.

Streaming appends to this widget only: `append` re-renders just the last segment of this message
(prose as Markdown, code blocks in a monospace font with a Copy button), never the conversation.
A reply is untrusted: its prose goes through `rich_text` (Markdown only, HTML shown as text,
nothing loaded, control tokens removed); a code block is coloured once, when it is complete.
Messages are at most `reading_width` wide, so lines stay readable in a wide window.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from slmdesk.ui.accessibility import named
from slmdesk.ui.chat.highlight import highlighted_html, warm_up
from slmdesk.ui.chat.markdown import Segment, split_segments
from slmdesk.ui.chat.rich_text import markdown_html
from slmdesk.ui.theme import icon

READING_CHARACTERS = 96  # the widest line of prose, in average characters of the font


def reading_width(widget: QWidget) -> int:
    """The widest a message may be: about `READING_CHARACTERS` characters of prose."""
    return READING_CHARACTERS * widget.fontMetrics().averageCharWidth() + 24  # + margins


def _is_dark(widget: QWidget) -> bool:
    return widget.palette().color(QPalette.ColorRole.Base).lightness() < 128


class CodeBlock(QFrame):
    """A fenced code block: language, a Copy button, monospace text."""

    def __init__(self, segment: Segment, complete: bool = False) -> None:
        super().__init__()
        self.setProperty("role", "card")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 8)
        header = QHBoxLayout()
        self.language = QLabel(segment.language or "code")
        self.language.setProperty("role", "muted")
        self.copy_button = QPushButton(icon("copy"), "Copy")
        self.copy_button.setFlat(True)
        self.copy_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.copy_button.clicked.connect(self._copy)
        named(self.copy_button, "Copy code")
        header.addWidget(self.language)
        header.addStretch(1)
        header.addWidget(self.copy_button)
        self.code = QLabel()
        self.code.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.code.setWordWrap(True)
        self.code.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addLayout(header)
        layout.addWidget(self.code)
        self._segment = segment
        self._coloured_dark: bool | None = None  # the theme of the colours shown, None: plain
        self.set_segment(segment, complete)

    @property
    def source(self) -> str:
        """The block's code, exactly as written (what Copy copies)."""
        return self._segment.text

    @property
    def highlighted(self) -> bool:
        """Whether the block is shown with syntax colours."""
        return self._coloured_dark is not None

    def set_segment(self, segment: Segment, complete: bool = False) -> None:
        """Show new content: plain while the block grows, coloured once it is ``complete``.

        A block is complete when its closing fence arrived or its message is finished;
        colouring costs pygments time, so it happens once rather than per streamed update.
        """
        self._segment = segment
        self.language.setText(segment.language or "code")
        if complete or segment.closed:
            self._colour()
        else:
            warm_up(segment.language)  # the lexer loads off the GUI thread while the block grows
            self._coloured_dark = None
            self.code.setTextFormat(Qt.TextFormat.PlainText)
            self.code.setText(segment.text)

    def _colour(self) -> None:
        dark = _is_dark(self)
        self.code.setTextFormat(Qt.TextFormat.RichText)
        self.code.setText(highlighted_html(self._segment.text, self._segment.language, dark))
        self._coloured_dark = dark

    def changeEvent(self, event: QEvent) -> None:
        """Re-colour for the other theme when the palette switches between light and dark."""
        super().changeEvent(event)
        if (
            event.type() == QEvent.Type.PaletteChange
            and self._coloured_dark is not None
            and self._coloured_dark != _is_dark(self)
        ):
            self._colour()

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self.source)
        self.copy_button.setText("Copied")


def _prose_label() -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText)  # only ever the output of `markdown_html`
    label.setWordWrap(True)
    label.setOpenExternalLinks(True)
    label.setTextInteractionFlags(
        Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.LinksAccessibleByMouse
    )
    return label


def timings_text(timings: dict[str, Any] | None) -> str:
    """``128 tokens · 24.1 tokens/s · first token 0.21 s`` under a reply."""
    if not timings:
        return ""
    parts = [f"{timings.get('generated_tokens', 0)} tokens"]
    if timings.get("tokens_per_second"):
        parts.append(f"{timings['tokens_per_second']:.1f} tokens/s")
    if timings.get("time_to_first_token"):
        parts.append(f"first token {timings['time_to_first_token']:.2f} s")
    reason = timings.get("finish_reason")
    if reason in ("stopped", "cancelled"):
        parts.append("stopped")
    elif reason == "length":
        parts.append("reached the length limit")
    elif reason == "error":
        parts.append("interrupted by an error")
    elif reason == "interrupted":
        return "interrupted (the app closed while this reply was written)"
    return " · ".join(parts)


class MessageWidget(QFrame):
    """A user or assistant message, with its actions and (for replies) timings."""

    edit_requested = Signal(int)  # message id
    regenerate_requested = Signal(int)
    copy_requested = Signal(str)

    def __init__(
        self,
        role: str,
        text: str,
        message_id: int | None,
        speaker: str,
        timings: dict[str, Any] | None = None,
        finished: bool = True,
    ) -> None:
        super().__init__()
        self.role = role
        self.message_id = message_id
        self._text = ""
        self._finished = finished
        self._segments: list[tuple[Segment, QWidget]] = []
        self.setObjectName("message")
        self.setProperty("speaker", role)
        self.setFrameShape(QFrame.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(4)
        self.speaker = QLabel(f"<b>{html.escape(speaker)}</b>")
        layout.addWidget(self.speaker)
        self.body = QVBoxLayout()
        self.body.setSpacing(6)
        layout.addLayout(self.body)
        footer = QHBoxLayout()
        self.timings = QLabel("")
        self.timings.setProperty("role", "muted")
        footer.addWidget(self.timings)
        footer.addStretch(1)
        self.copy_button = self._action(
            "copy", "Copy", lambda: self.copy_requested.emit(self._text)
        )
        self.edit_button = self._action("chat", "Edit", lambda: self._emit(self.edit_requested))
        self.regenerate_button = self._action(
            "regenerate", "Regenerate", lambda: self._emit(self.regenerate_requested)
        )
        for button in (self.copy_button, self.edit_button, self.regenerate_button):
            footer.addWidget(button)
        named(self.copy_button, "Copy message")
        named(self.edit_button, "Edit message", "Sending the edit replaces it and what follows")
        named(self.regenerate_button, "Regenerate reply")
        layout.addLayout(footer)
        self.edit_button.setVisible(role == "user")
        self.regenerate_button.setVisible(False)
        self.set_text(text)
        self.set_finished(finished, timings)

    def _action(self, icon_name: str, text: str, slot: Any) -> QPushButton:
        button = QPushButton(icon(icon_name), text)
        button.setFlat(True)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.clicked.connect(slot)
        return button

    def _emit(self, signal: Any) -> None:
        if self.message_id is not None:
            signal.emit(self.message_id)

    @property
    def text(self) -> str:
        """The message's full text."""
        return self._text

    def append(self, piece: str) -> None:
        """Add streamed text; only the changed tail of this message is re-rendered."""
        self.set_text(self._text + piece)

    def set_text(self, text: str) -> None:
        """Show ``text``, reusing the widgets of segments that did not change."""
        self._text = text
        segments = split_segments(text) if self.role == "assistant" else [Segment("text", text)]
        for index, segment in enumerate(segments):
            if index < len(self._segments):
                old, widget = self._segments[index]
                if old == segment:
                    continue
                if old.kind == segment.kind:
                    self._fill(widget, segment)
                    self._segments[index] = (segment, widget)
                    continue
                self._drop_from(index)
            widget = (
                CodeBlock(segment, complete=self._finished)
                if segment.kind == "code"
                else _prose_label()
            )
            if segment.kind == "text":
                self._fill(widget, segment)
            self.body.addWidget(widget)
            self._segments.append((segment, widget))
        self._drop_from(len(segments))

    def _fill(self, widget: QWidget, segment: Segment) -> None:
        if isinstance(widget, CodeBlock):
            widget.set_segment(segment, complete=self._finished)
        elif isinstance(widget, QLabel):
            if self.role == "user":
                widget.setTextFormat(Qt.TextFormat.PlainText)
                widget.setText(segment.text)
            else:
                widget.setText(markdown_html(segment.text, widget.font()))

    def _drop_from(self, index: int) -> None:
        for _segment, widget in self._segments[index:]:
            self.body.removeWidget(widget)
            widget.deleteLater()
        del self._segments[index:]

    def set_finished(self, finished: bool, timings: dict[str, Any] | None = None) -> None:
        """Show the reply's timings (or that it is still being written)."""
        if finished and not self._finished:
            for segment, widget in self._segments:  # a block the reply left open is complete now
                if isinstance(widget, CodeBlock) and not widget.highlighted:
                    widget.set_segment(segment, complete=True)
        self._finished = finished
        self.copy_button.setEnabled(finished)
        self.edit_button.setEnabled(finished)
        if self.role != "assistant":
            return
        if not finished:
            self.timings.setText("writing…")
        else:
            self.timings.setText(timings_text(timings))

    def set_regenerate_visible(self, visible: bool) -> None:
        """Only the last reply offers Regenerate."""
        self.regenerate_button.setVisible(visible and self.role == "assistant")
