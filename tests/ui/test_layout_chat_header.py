"""The Chat page's header at 1366×768 with the settings panel open: nothing drawn over anything,
long texts shortened with "…" and readable in full in their tooltip."""

from __future__ import annotations

from pathlib import Path

import pytest
from layout_checks import rect_in
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from slmdesk.common.settings import SettingsStore
from slmdesk.ui.chat.view import ChatView
from slmdesk.ui.elided import ElidedLabel
from slmdesk.ui.main_window import PAGES, MainWindow
from slmdesk.ui.theme import apply_theme
from slmdesk.ui.window_fit import first_geometry

LAPTOP = (1366, 768 - 40)  # a 768-pixel screen less a taskbar
MODELS = (
    "gemma-3-270m-Q4_K_M  ·  Q4_K_M  ·  253.1 MB",
    "gemma-3-270m-tiny-synthesized-F16  ·  F16  ·  5.2 MB",
    "gemma-3-270m-tiny-synthesized-pruned  ·  F16  ·  5.2 MB",
)
STATE = "Ready · 4,096 tokens of context"
START = first_geometry(QRect(0, 0, *LAPTOP))
TITLE = "Write a Python function that reverses the words of a sentence, with tests"


@pytest.fixture
def chat_window(qtbot, tmp_path: Path, qapp):  # type: ignore[no-untyped-def]
    """The real Chat view in the main window (light theme), sized as on a 1366×768 laptop."""
    look = qapp.style().name(), qapp.palette(), qapp.styleSheet()
    apply_theme(qapp, "light")
    view = ChatView()
    pages: dict[str, QWidget] = {name: QLabel(name) for name in PAGES}
    pages["Chat"] = view
    state = SettingsStore(tmp_path / "settings.json", delay=0.0, max_delay=0.0)
    window = MainWindow(pages, state)
    window.setMinimumSize(0, 0)
    window.setGeometry(START)
    for label in MODELS:
        view.model_picker.addItem(label, label.split()[0])
    view.model_picker.setCurrentIndex(2)
    view.model_state.setText(STATE)
    view.title.setText(TITLE)
    window.show()
    qtbot.waitExposed(window)
    yield window, view
    window.close()
    assert state.flush(10.0)
    qapp.setStyleSheet(look[2])
    qapp.setPalette(look[1])
    qapp.setStyle(look[0])


def _header_widgets(view: ChatView) -> list[QWidget]:
    header = view.middle.layout().itemAt(0).layout()
    found = []
    for index in range(header.count()):
        widget = header.itemAt(index).widget()
        if widget is not None and widget.isVisible():
            found.append(widget)
    return found


def _problems(window: MainWindow, view: ChatView) -> list[str]:
    """What a user would see cut off or drawn over something else in the header."""
    found = []
    if window.width() > START.width():
        found.append(f"the window grew from {START.width()} to {window.width()} pixels wide")
    widgets = _header_widgets(view)
    for widget in widgets:
        if widget.width() < widget.minimumSizeHint().width():
            found.append(f"{type(widget).__name__} is squeezed below its minimum width")
    for index, first in enumerate(widgets):
        for second in widgets[index + 1 :]:
            a, b = rect_in(first, window), rect_in(second, window)
            if a.intersects(b):
                found.append(
                    f"{type(first).__name__} {a.getRect()} overlaps {type(second).__name__} "
                    f"{b.getRect()}"
                )
    column = rect_in(view.middle, window)
    for part in (view.middle, view.settings_panel):
        if part.isVisible() and rect_in(part, window).right() >= window.width():
            found.append(f"{type(part).__name__} runs past the window's right edge")
    for widget in [*widgets, view.title]:
        if rect_in(widget, window).right() > column.right():
            found.append(f"{type(widget).__name__} runs past the column's right edge")
    for label in (view.model_state, view.title):
        full = label.text()
        if isinstance(label, ElidedLabel) and label.is_elided():
            if not (label.shown_text().endswith("…") and full in label.toolTip()):
                found.append(f"{full!r} is shortened without an ellipsis and a tooltip")
        elif label.fontMetrics().horizontalAdvance(full) > label.contentsRect().width():
            found.append(f"{full!r} is cut off")
    return found


def _assert_laid_out(qtbot, window: MainWindow, view: ChatView) -> None:  # type: ignore[no-untyped-def]
    """Wait for the layout to settle without problems; fail with the problems left."""
    QApplication.sendPostedEvents()  # pending layout requests: lay out before looking
    QApplication.processEvents()
    try:
        qtbot.waitUntil(lambda: not _problems(window, view), timeout=3000)
    except qtbot.TimeoutError:
        pass
    assert not _problems(window, view)
    assert view.model_state.text() == STATE
    assert view.title.text() == TITLE


def test_the_header_fits_with_the_settings_panel_open(qtbot, chat_window) -> None:
    window, view = chat_window
    view.settings_button.setChecked(True)
    qtbot.waitUntil(lambda: view.settings_panel.isVisible() and view.settings_panel.x() > 0)
    _assert_laid_out(qtbot, window, view)


def test_the_header_fits_with_the_settings_panel_closed(qtbot, chat_window) -> None:
    window, view = chat_window
    _assert_laid_out(qtbot, window, view)
    assert not view.model_state.is_elided(), "with room to spare the state is shown in full"


def test_an_elided_label_keeps_its_own_tooltip_too(qtbot) -> None:
    label = ElidedLabel("A long model state that cannot fit in a narrow label")
    label.setToolTip("llama.cpp 0.3.36, CPU variant AVX2")
    qtbot.addWidget(label)
    label.show()
    label.resize(60, 20)
    assert label.is_elided()
    assert label.toolTip().startswith("A long model state that cannot fit in a narrow label")
    assert "CPU variant" in label.toolTip()
    label.resize(label.sizeHint())
    assert not label.is_elided()
    assert label.toolTip() == "llama.cpp 0.3.36, CPU variant AVX2"
