"""A page whose feature is still being built: it says what is coming, with no dead controls."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class ComingPage(QWidget):
    """Title and a short description of what the page will do."""

    def __init__(self, title: str, description: str) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 16)
        heading = QLabel(title)
        heading.setProperty("role", "title")
        text = QLabel(description)
        text.setWordWrap(True)
        text.setProperty("role", "muted")
        text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(heading)
        layout.addWidget(text)
        layout.addStretch(1)
