"""Name columns stretch and shorten names in the middle, so similar names stay tellable apart
(Library's models, Discover's repositories), with the whole name in the tooltip."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QAbstractItemView, QApplication, QLabel, QTableWidgetItem, QWidget

from slmdesk.common.settings import SettingsStore
from slmdesk.models.library import ModelEntry
from slmdesk.ui.discover.view import DiscoverView
from slmdesk.ui.library.view import LibraryView
from slmdesk.ui.main_window import PAGES, MainWindow
from slmdesk.ui.theme import apply_theme
from slmdesk.ui.window_fit import first_geometry

START = first_geometry(QRect(0, 0, 1366, 768 - 40))  # a 768-pixel laptop screen with a taskbar
MODELS = (
    "gemma-3-270m-Q4_K_M",
    "gemma-3-270m-tiny-synthesized-F16",
    "gemma-3-270m-tiny-synthesized-pruned",
)
REPOS = (
    "unsloth/gemma-3-270m-it-GGUF",
    "ggml-org/gemma-3-270m-it-qat-GGUF",
    "bartowski/google_gemma-3-270m-it-GGUF",
)


@pytest.fixture
def page_window(qtbot, qapp, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Show one real page in the main window (light theme) at the laptop's first size."""
    look = qapp.style().name(), qapp.palette(), qapp.styleSheet()
    apply_theme(qapp, "light")
    windows: list[MainWindow] = []

    def show(name: str, page: QWidget) -> MainWindow:
        pages: dict[str, QWidget] = {n: QLabel(n) for n in PAGES}
        pages[name] = page
        state = SettingsStore(tmp_path / "settings.json", delay=0.0, max_delay=0.0)
        window = MainWindow(pages, state)
        window.setGeometry(START)
        window.show_page(name)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield show
    for window in windows:
        window.close()
        assert window.state.flush(10.0)
    qapp.setStyleSheet(look[2])
    qapp.setPalette(look[1])
    qapp.setStyle(look[0])


def _settle() -> None:
    QApplication.sendPostedEvents()
    QApplication.processEvents()


def shown_text(view: QAbstractItemView, row: int, column: int) -> str:
    """The text the item delegate draws in a cell: elided like the view elides it."""
    index = view.model().index(row, column)
    text = str(index.data(Qt.ItemDataRole.DisplayRole))
    margin = 2 * (view.style().pixelMetric(view.style().PixelMetric.PM_FocusFrameHMargin) + 1)
    width = view.visualRect(index).width() - margin
    return view.fontMetrics().elidedText(text, view.textElideMode(), width)


def _library_entry(name: str) -> ModelEntry:
    facts = {
        "architecture": "gemma3",
        "parameters": 268_098_176,
        "context_length": 32_768,
        "quantization": name.rsplit("-", 1)[-1],
    }
    return ModelEntry(
        name=name,
        path=Path("models") / f"{name}.gguf",
        size_bytes=253_000_000,
        managed=True,
        added_at=time.time(),
        facts=facts,
    )


def test_library_names_stay_distinct_and_the_name_column_stretches(qtbot, page_window) -> None:
    view = LibraryView()
    window = page_window("Library", view)
    view.show_entries([_library_entry(n) for n in MODELS], 3 * 253_000_000, Path("models"))
    _settle()
    table = view.table
    shown = [shown_text(table, row, 0) for row in range(len(MODELS))]
    assert len(set(shown)) == len(MODELS), f"names look alike: {shown}"
    for row, text in enumerate(shown):
        full = str(table.model().index(row, 0).data())
        assert text == full or "…" in text
        assert full in str(table.model().index(row, 0).data(Qt.ItemDataRole.ToolTipRole))
    narrow = table.columnWidth(0)
    window.resize(window.width() + 200, window.height())
    qtbot.waitUntil(lambda: table.columnWidth(0) >= narrow + 150)
    _settle()
    assert all(
        shown_text(table, row, 0) == table.model().index(row, 0).data() for row in range(3)
    ), "with 200 more pixels the whole names show"


def test_discover_repository_names_keep_their_ends_with_a_repository_open(
    qtbot, page_window
) -> None:
    view = DiscoverView()
    page_window("Discover", view)
    view.results.setRowCount(len(REPOS))
    for row, repo_id in enumerate(REPOS):
        item = QTableWidgetItem(repo_id)
        item.setToolTip(repo_id)
        view.results.setItem(row, 0, item)
        for column, text in enumerate(("120K", "133", "2025-01-01", "gemma"), start=1):
            view.results.setItem(row, column, QTableWidgetItem(text))
    view.repo_title.setText(REPOS[0])
    view.repo_panel.setVisible(True)
    _settle()
    shown = [shown_text(view.results, row, 0) for row in range(len(REPOS))]
    assert len(set(shown)) == len(REPOS), f"repositories look alike: {shown}"
    for text, repo_id in zip(shown, REPOS, strict=True):
        owner = repo_id.split("/")[0]
        assert text.startswith(owner[:6]) and text.endswith("GGUF"), (
            f"{text!r} hides which {repo_id!r} it is"
        )
    # the example, "unsloth/gemma-3-270m-it-GGUF", shows whole on a laptop screen
    assert shown[0] == REPOS[0]
