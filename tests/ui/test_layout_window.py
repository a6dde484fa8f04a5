"""The first window fits the screen's available area (a 1366×768 laptop with a taskbar too)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QSize
from PySide6.QtWidgets import QLabel, QWidget

from slmdesk.common.settings import SettingsStore
from slmdesk.ui.main_window import GEOMETRY_KEY, PAGES, MainWindow
from slmdesk.ui.window_fit import FRAME_ALLOWANCE, PREFERRED_SIZE, first_geometry, fits

LAPTOP = QRect(0, 0, 1366, 768 - 40)  # a 768-pixel screen less a 40-pixel taskbar


@pytest.mark.parametrize(
    "available",
    [LAPTOP, QRect(0, 32, 1280, 688), QRect(1920, 0, 1024, 600), QRect(0, 0, 800, 560)],
)
def test_the_first_geometry_and_its_frame_lie_inside_the_available_area(available) -> None:
    client = first_geometry(available)
    assert fits(client, available)
    assert client.width() <= PREFERRED_SIZE.width()
    assert client.height() <= PREFERRED_SIZE.height()
    # the frame takes what it needs and no more: the window is as large as the screen allows
    assert client.height() == min(
        PREFERRED_SIZE.height(), available.height() - FRAME_ALLOWANCE.height()
    )


def test_a_large_screen_gets_the_preferred_size_centred() -> None:
    available = QRect(0, 0, 2560, 1400)
    client = first_geometry(available)
    assert client.size() == PREFERRED_SIZE
    assert abs(client.center().x() - available.center().x()) <= 1


@pytest.fixture
def make_window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Main windows on placeholder pages, each with its own settings file; closed afterwards."""
    made: list[MainWindow] = []

    def make(geometry: bytes | None = None) -> MainWindow:
        folder = tmp_path / f"window-{len(made)}"
        folder.mkdir()
        state = SettingsStore(folder / "settings.json", delay=0.0, max_delay=0.0)
        if geometry is not None:
            state.update(**{GEOMETRY_KEY: geometry.decode("ascii")})
        pages: dict[str, QWidget] = {name: QLabel(name) for name in PAGES}
        window = MainWindow(pages, state)
        made.append(window)
        return window

    yield make
    for window in made:
        window.close()  # saves its geometry: let the store finish writing
        assert window.state.flush(10.0)


def test_the_first_window_fits_the_screen_it_opens_on(make_window) -> None:
    window = make_window()
    available = window.screen().availableGeometry()
    assert fits(window.geometry(), available), (
        f"a {window.width()}×{window.height()} window on a screen whose available area is "
        f"{available.width()}×{available.height()}"
    )
    assert window.minimumWidth() <= window.width()
    assert window.minimumHeight() <= window.height()


def test_a_remembered_size_larger_than_the_screen_is_shrunk(make_window) -> None:
    big = make_window()
    available = big.screen().availableGeometry()
    big.setMinimumSize(QSize(0, 0))
    big.setGeometry(QRect(0, 0, available.width() + 400, available.height() + 300))
    saved = bytes(big.saveGeometry().toBase64().data())
    window = make_window(saved)
    assert fits(window.geometry(), available)
