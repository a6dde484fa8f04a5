"""The last cell of a file row on the Discover page: the file's state and what can be done now."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from slmdesk.common.format import printable
from slmdesk.ui.discover.file_state import ACTION_TEXT, DOWNLOAD, FileState


class FileActions(QWidget):
    """A state label ("Downloading 42 %", "In library") with one or two buttons.

    ``triggered`` carries the action of the clicked button (``file_state`` names them).
    """

    triggered = Signal(str)

    def __init__(self, downloadable: bool = True, recommended: bool = False) -> None:
        super().__init__()
        self.downloadable = downloadable  # vision projectors are listed, not downloaded
        self.state = FileState("", DOWNLOAD)
        # Its own background: the words stay readable on a selected (highlighted) row.
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.Base)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(6)
        self.label = QLabel()
        self.label.setProperty("role", "muted")
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # library names are user text
        # as wide as the longest progress text, so the column does not jump while it counts
        self.label.setMinimumWidth(self.label.fontMetrics().horizontalAdvance("Downloading 100 %"))
        self.primary = QPushButton()
        self.secondary = QPushButton()
        if recommended:
            self.primary.setProperty("role", "primary")
        layout.addWidget(self.label)
        layout.addWidget(self.primary)
        layout.addWidget(self.secondary)
        self.primary.clicked.connect(lambda: self.triggered.emit(self.state.primary))
        self.secondary.clicked.connect(lambda: self.triggered.emit(self.state.secondary or ""))
        self.show_state(self.state)

    def show_state(self, state: FileState) -> None:
        """Show ``state``: the label, the buttons' words, the tooltip."""
        self.state = state
        self.label.setText(printable(state.label))
        self.label.setVisible(bool(state.label))
        self.primary.setText(ACTION_TEXT[state.primary])
        self.primary.setEnabled(state.primary != DOWNLOAD or self.downloadable)
        self.secondary.setVisible(state.secondary is not None)
        if state.secondary is not None:
            self.secondary.setText(ACTION_TEXT[state.secondary])
        self.setToolTip(printable(state.tooltip, True))
