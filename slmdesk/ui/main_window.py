"""The main window: navigation on the left (Chat | Library | Discover | Optimize | Settings),
one page at a time on the right, window geometry remembered between runs."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QByteArray, QSettings, QSize, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QWidget,
)

from slmdesk.common import paths
from slmdesk.ui.theme import icon

PAGES = ("Chat", "Library", "Discover", "Optimize", "Settings")


def ui_state() -> QSettings:
    """Window geometry and splitter positions, stored in the config folder."""
    return QSettings(str(paths.config_dir() / "window.ini"), QSettings.Format.IniFormat)


class MainWindow(QMainWindow):
    """Holds the pages; knows nothing of what they do."""

    closing = Signal()

    def __init__(self, pages: dict[str, QWidget]) -> None:
        super().__init__()
        self.setWindowTitle("slmdesk")
        self.setWindowIcon(icon("app"))
        self.setMinimumSize(QSize(900, 600))
        self._shutdown_hooks: list[Callable[[], None]] = []
        self.navigation = QListWidget()
        self.navigation.setObjectName("navigation")
        self.navigation.setFixedWidth(170)
        self.navigation.setIconSize(QSize(20, 20))
        self.stack = QStackedWidget()
        self.pages = pages
        for name in PAGES:
            item = QListWidgetItem(icon(name.lower()), name)
            self.navigation.addItem(item)
            self.stack.addWidget(pages[name])
        self.navigation.currentRowChanged.connect(self.stack.setCurrentIndex)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.navigation)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        for index, name in enumerate(PAGES, start=1):
            shortcut = QShortcut(QKeySequence(f"Ctrl+{index}"), self)
            shortcut.activated.connect(lambda page=name: self.show_page(page))
        self._restore_geometry()

    def show_page(self, name: str) -> None:
        """Switch to the page called ``name``."""
        self.navigation.setCurrentRow(PAGES.index(name))

    def current_page(self) -> str:
        """Name of the page on show."""
        return PAGES[self.stack.currentIndex()]

    def on_shutdown(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` when the window closes (stop workers, save state)."""
        self._shutdown_hooks.append(hook)

    def _restore_geometry(self) -> None:
        state = ui_state()
        geometry = state.value("main/geometry")
        if isinstance(geometry, QByteArray) and self.restoreGeometry(geometry):
            page = state.value("main/page", "Chat")
            self.show_page(page if page in PAGES else "Chat")
        else:
            self.resize(1200, 780)
            self.show_page("Chat")

    def closeEvent(self, event: QCloseEvent) -> None:
        state = ui_state()
        state.setValue("main/geometry", self.saveGeometry())
        state.setValue("main/page", self.current_page())
        state.sync()
        self.closing.emit()
        for hook in self._shutdown_hooks:
            hook()
        self._shutdown_hooks.clear()
        event.accept()
