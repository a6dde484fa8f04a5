"""The main window: navigation on the left (Chat | Library | Discover | Optimize | Settings),
one page at a time on the right, window geometry remembered between runs.

The geometry and the page on show are kept in the settings store (in memory, saved on its writer
thread), so closing the window does not write a file on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QByteArray, QRect, QSize, Signal, Slot
from PySide6.QtGui import QCloseEvent, QGuiApplication, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QWidget,
)

from slmdesk.common import settings
from slmdesk.common.settings import SettingsStore
from slmdesk.ui.accessibility import focus_main_field, named
from slmdesk.ui.focus_ring import FocusRing
from slmdesk.ui.theme import ACCENT, icon
from slmdesk.ui.window_fit import first_geometry, fits, minimum_size

PAGES = ("Chat", "Library", "Discover", "Optimize", "Settings")
GEOMETRY_KEY = "window_geometry"  # base64 of QWidget.saveGeometry()
PAGE_KEY = "window_page"


class MainWindow(QMainWindow):
    """Holds the pages; knows nothing of what they do."""

    closing = Signal()

    def __init__(self, pages: dict[str, QWidget], state: SettingsStore | None = None) -> None:
        """Lay out ``pages``; ``state`` keeps the geometry (default: the user's settings)."""
        super().__init__()
        self.state = state if state is not None else settings.store()
        self.setWindowTitle("slmdesk")
        self.setWindowIcon(icon("app"))
        self.setMinimumSize(minimum_size(self._available()))
        self._shutdown_hooks: list[Callable[[], None]] = []
        self._focused_once = False
        self.navigation = QListWidget()
        self.navigation.setObjectName("navigation")
        self.navigation.setFixedWidth(170)
        self.navigation.setIconSize(QSize(20, 20))
        named(self.navigation, "Pages", "Chat, Library, Discover, Optimize, Settings (Ctrl+1 to 5)")
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
        quit_shortcut = QShortcut(QKeySequence("Ctrl+Q"), self)
        quit_shortcut.activated.connect(self.close)  # closeEvent runs the normal shutdown
        self._restore_geometry()
        self.focus_ring = FocusRing(self, ACCENT)

    def show_page(self, name: str) -> None:
        """Switch to the page called ``name`` and put the keyboard focus in its main field."""
        self.navigation.setCurrentRow(PAGES.index(name))
        focus_main_field(self.stack.currentWidget())

    def current_page(self) -> str:
        """Name of the page on show."""
        return PAGES[self.stack.currentIndex()]

    def on_shutdown(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` when the window closes (stop workers, save state)."""
        self._shutdown_hooks.append(hook)

    @Slot(str)
    def show_problem(self, message: str) -> None:
        """Show a lasting problem (a failed settings save) in the status bar; "" clears it."""
        if message:
            self.statusBar().showMessage(message)
        elif self.statusBar().currentMessage():
            self.statusBar().clearMessage()

    def _available(self) -> QRect:
        """The screen area a window may use (without taskbars and docks)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else QRect(0, 0, 1200, 820)

    def _restore_geometry(self) -> None:
        encoded = self.state.get(GEOMETRY_KEY)
        geometry = QByteArray.fromBase64(str(encoded or "").encode("utf-8"))
        available = self._available()
        if not geometry.isEmpty() and self.restoreGeometry(geometry):
            page = self.state.get(PAGE_KEY)
            self.show_page(page if page in PAGES else "Chat")
            if not self.isMaximized() and not fits(self.geometry(), available):
                self.setGeometry(first_geometry(available, self.size()))
        else:
            self.setGeometry(first_geometry(available))
            self.show_page("Chat")

    def showEvent(self, event: QShowEvent) -> None:
        """The first time the window appears, typing goes to the page's main field."""
        super().showEvent(event)
        if not self._focused_once:
            self._focused_once = focus_main_field(self.stack.currentWidget())

    def closeEvent(self, event: QCloseEvent) -> None:
        geometry = bytes(self.saveGeometry().toBase64().data()).decode("ascii")
        self.state.update(**{GEOMETRY_KEY: geometry, PAGE_KEY: self.current_page()})
        self.hide()  # gone at once, while the shutdown hooks wait for the workers
        self.closing.emit()
        for hook in self._shutdown_hooks:
            hook()
        self._shutdown_hooks.clear()
        event.accept()
