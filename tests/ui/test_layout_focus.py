"""Keyboard focus is clearly visible in both themes: a ring of 3:1 contrast around the widget."""

from __future__ import annotations

from pathlib import Path

import pytest
from layout_checks import contrast, grab_image, rect_in
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from slmdesk.common.settings import SettingsStore
from slmdesk.ui.main_window import PAGES, MainWindow
from slmdesk.ui.theme import apply_theme

# WCAG 2.2 "focus appearance": the indicator changes at least a 2-pixel-thick perimeter of the
# control with 3:1 contrast between its focused and unfocused states.
MIN_CONTRAST = 3.0


def _band(rect: QRect, distance: int) -> list[tuple[int, int]]:
    """Pixel positions on a rectangle ``distance`` pixels outside ``rect`` (corners left out)."""
    outer = rect.adjusted(-distance, -distance, distance, distance)
    corner = 6
    points = []
    for x in range(outer.left() + corner, outer.right() - corner + 1):
        points += [(x, outer.top()), (x, outer.bottom())]
    for y in range(outer.top() + corner, outer.bottom() - corner + 1):
        points += [(outer.left(), y), (outer.right(), y)]
    return points


@pytest.fixture
def focus_page(qtbot, qapp, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A main window whose Chat page holds a text field, a primary and a plain button."""
    look = qapp.style().name(), qapp.palette(), qapp.styleSheet()
    page = QWidget()
    layout = QVBoxLayout(page)
    field = QLineEdit("a text field")
    primary = QPushButton("Send")
    primary.setProperty("role", "primary")
    plain = QPushButton("Unload")
    for widget in (field, primary, plain):
        layout.addWidget(widget)
    layout.addStretch(1)
    pages: dict[str, QWidget] = {name: QLabel(name) for name in PAGES}
    pages["Chat"] = page
    state = SettingsStore(tmp_path / "settings.json", delay=0.0, max_delay=0.0)
    window = MainWindow(pages, state)
    window.resize(1000, 640)
    yield window, field, primary, plain
    window.close()
    assert state.flush(10.0)
    qapp.setStyleSheet(look[2])
    qapp.setPalette(look[1])
    qapp.setStyle(look[0])


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_tab_shows_a_clear_focus_ring(qtbot, qapp, focus_page, theme) -> None:
    window, field, primary, plain = focus_page
    apply_theme(qapp, theme)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.navigation.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.navigation)
    for target in (field, primary, plain):
        QApplication.processEvents()
        before = grab_image(window)
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        qtbot.waitUntil(lambda target=target: QApplication.focusWidget() is target)
        QApplication.processEvents()
        after = grab_image(window)
        rect = rect_in(target, window)
        for distance in (2, 3):  # a ring two pixels thick, one pixel off the widget
            band = _band(rect, distance)
            strong = [
                (x, y)
                for x, y in band
                if contrast(before.pixelColor(x, y), after.pixelColor(x, y)) >= MIN_CONTRAST
            ]
            assert len(strong) >= 0.9 * len(band), (
                f"{theme}: focus on {type(target).__name__} {target.text()!r} changes only "
                f"{len(strong)} of {len(band)} pixels {distance} px around it by 3:1"
            )


def test_a_mouse_click_shows_no_ring(qtbot, qapp, focus_page) -> None:
    window, field, _primary, plain = focus_page
    apply_theme(qapp, "light")
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    field.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is field)
    qtbot.keyClick(field, Qt.Key.Key_Tab)
    qtbot.waitUntil(lambda: window.focus_ring.target() is not None)
    qtbot.mouseClick(plain, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is plain)
    assert window.focus_ring.target() is None
