""" "Server on :8765" in the main window's status bar while the local server runs.

The label is added the first time the server starts, so a window that never runs the server
keeps its layout (no status bar).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QLabel, QMainWindow

from slmdesk.ui.accessibility import named
from slmdesk.ui.runtime.local_server import LocalServer, Running


class ServerIndicator(QObject):
    """Shows and hides the status bar's server label."""

    def __init__(self, window: QMainWindow, server: LocalServer) -> None:
        super().__init__(window)
        self.window = window
        self.label: QLabel | None = None
        server.started.connect(self._on_started)
        server.stopped.connect(self._on_stopped)

    @Slot(object)
    def _on_started(self, running: Running) -> None:
        if self.label is None:
            self.label = QLabel()
            self.window.statusBar().addPermanentWidget(self.label)
        text = f"Server on :{running.port}" + (
            " (other computers allowed)" if running.exposed else ""
        )
        self.label.setText(text)
        self.label.setToolTip(running.url)
        named(self.label, "Local server", running.url)
        self.label.setVisible(True)

    @Slot()
    def _on_stopped(self) -> None:
        if self.label is not None:
            self.label.setVisible(False)

    def text(self) -> str:
        """What the status bar says about the server ("" when it says nothing)."""
        # not isVisible(): a status bar created while the window is shown appears one event later
        return self.label.text() if self.label is not None and not self.label.isHidden() else ""
