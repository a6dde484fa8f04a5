"""The real window opened on the Optimize page with the tiny model in the library, for the
Optimize page's GUI tests (step by step, plan choices, make it fit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from slmdesk.app import AppParts, build_window
from slmdesk.models.library import Library
from slmdesk.ui.optimize.controller import OptimizeController

TINY_NAME = "tiny-llama-F16"


def open_optimize_page(qtbot, tiny_model: Path) -> AppParts:
    """Import ``tiny_model``, build and show the window and go to the Optimize page."""
    Library().import_model(tiny_model)
    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    parts.window.show_page("Optimize")
    return parts


def tiny_model_chosen(qtbot, parts: AppParts) -> OptimizeController:
    """The page's controller once the tiny model is chosen and step 1 can go on."""
    controller = next(c for c in parts.controllers if isinstance(c, OptimizeController))
    qtbot.waitUntil(lambda: controller.select_model(TINY_NAME), timeout=10_000)
    qtbot.waitUntil(lambda: controller.view.next_button.isEnabled(), timeout=10_000)
    return controller


def close_window(parts: AppParts) -> None:
    """Close the window and stop everything it started."""
    parts.window.close()
    parts.shutdown()


def optimize_page(qtbot, tiny_model: Path) -> Iterator[tuple[AppParts, OptimizeController]]:
    """Fixture body: the page on step 1 with the tiny model chosen; closed afterwards."""
    parts = open_optimize_page(qtbot, tiny_model)
    yield parts, tiny_model_chosen(qtbot, parts)
    close_window(parts)
