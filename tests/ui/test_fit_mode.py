"""The Optimize page's "Make it fit" mode end to end: the real window, library, threads and
llama.cpp children on the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from slmdesk.common import paths
from slmdesk.models.library import Library
from slmdesk.optimize.fit.front import pareto
from slmdesk.optimize.worker_process import Progress
from slmdesk.ui.optimize.fit_controller import FitController
from slmdesk.ui.optimize.fit_view import TARGET_KLD, TARGET_SIZE
from tests.ui.optimize_page import close_window, open_optimize_page

TIMEOUT = 600_000  # a loaded 2-core machine


@pytest.fixture
def fit(qtbot, tiny_model: Path):
    parts = open_optimize_page(qtbot, tiny_model)
    controller = next(c for c in parts.controllers if isinstance(c, FitController))
    qtbot.waitUntil(lambda: controller.view.model.count() > 0, timeout=10_000)
    # A small space keeps the run short; the search itself is tested through the CLI.
    controller.types = ["Q4_K_M", "Q2_K"]
    controller.with_imatrix = False
    controller.max_builds = 2
    yield parts, controller
    close_window(parts)


def _open_mode(qtbot, parts, controller: FitController) -> None:
    from slmdesk.ui.optimize.view import OptimizeView

    optimize_view = parts.window.findChild(OptimizeView)
    qtbot.mouseClick(optimize_view.fit_button, Qt.MouseButton.LeftButton)
    assert controller.view.isVisible()


def test_fit_run_shows_progress_the_front_and_the_reason(qtbot, fit) -> None:
    parts, controller = fit
    _open_mode(qtbot, parts, controller)
    view = controller.view
    view.kld_radio.setChecked(True)
    assert view.target_kind() == TARGET_KLD
    view.kld_edit.setText("5")
    stages: list[str] = []
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
        assert controller.job is not None and view.cancel_button.isEnabled()
        controller.job.progress.connect(
            lambda v: stages.append(v.stage) if isinstance(v, Progress) else None
        )
    result = finished.args[0]
    assert not isinstance(result, Exception), result
    assert "fit-building" in stages and "fit-reference" in stages
    built = [o for o in result.outcomes if o.built]
    points = view.chart.points()
    assert len(points) == len(built) >= 1
    assert sum(view.chart.is_winner(p) for p in points) == 1
    assert {id(o) for o in pareto(result.outcomes)} == {
        id(o) for o in result.outcomes if o.on_front
    }
    assert result.reason and result.reason in view.reason.text()
    assert view.table.rowCount() >= len(built)
    assert not view.cancel_button.isEnabled() and view.start_button.isEnabled()
    assert result.name in {e.name for e in Library().entries()}
    # keyboard: the chart announces the focused point
    view.chart.setFocus()
    first = view.chart.accessibleName()
    assert "model 1 of" in first and "KLD" in first
    qtbot.keyClick(view.chart, Qt.Key.Key_End)
    assert f"model {len(points)} of {len(points)}" in view.chart.accessibleName()


def test_cancel_mid_build_leaves_no_partial_file(qtbot, fit) -> None:
    parts, controller = fit
    _open_mode(qtbot, parts, controller)
    view = controller.view
    view.size_radio.setChecked(True)
    assert view.target_kind() == TARGET_SIZE
    view.size_edit.setText("100MB")
    models = Library().models_dir
    before = sorted(p.name for p in models.iterdir())

    def cancel_when_building(value: object) -> None:
        if isinstance(value, Progress) and value.stage == "fit-building":
            view.cancel_button.click()

    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
        assert controller.job is not None
        controller.job.progress.connect(cancel_when_building)
    assert "Cancelled" in str(finished.args[0])
    assert "Cancelled" in view.status.text()
    assert sorted(p.name for p in models.iterdir()) == before
    assert not list(paths.cache_dir().glob("fit-*"))
    assert [e.name for e in Library().entries()] == ["tiny-llama-F16"]
    assert view.start_button.isEnabled()
