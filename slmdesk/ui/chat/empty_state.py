"""What the Chat page says where there is nothing to show: an empty chat, list or search.

Why: a blank area reads as "broken" or "still loading"; one muted sentence says what is going on
and what to do next. The texts live here, beside the one widget that shows them, so the view
only places the widgets and the controller only picks the state.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

__all__ = ["EmptyState", "chat_body_text", "list_text"]

SEARCH_SHOWN_CHARS = 40


def chat_body_text(model: str | None) -> str:
    """The empty chat's text: invite a first message, naming the model that will answer."""
    if model:
        return f"Ask something…\n{model} will answer."
    return "Ask something…\nChoose a model above first: it loads before the reply."


def list_text(search: str) -> str:
    """The empty conversation list's text, for no chats at all or a search without matches."""
    shown = " ".join(search.split())
    if not shown:
        return "No conversations yet.\nYour chats appear here once you send a message."
    if len(shown) > SEARCH_SHOWN_CHARS:
        shown = shown[: SEARCH_SHOWN_CHARS - 1] + "…"
    return f"No conversations match “{shown}”."


class EmptyState(QLabel):
    """A centred, muted, wrapped sentence shown in place of empty content."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.setObjectName("emptyState")
        self.setProperty("role", "muted")
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setTextFormat(Qt.TextFormat.PlainText)  # titles and search text are not markup
