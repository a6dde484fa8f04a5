"""Step 2's plan choices on the real page: the importance matrix switch changes which types are
offered, the embedding type changes the predicted sizes, and the report says what was used."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.models.quant_types import OFFERED_TYPES, offered_types
from slmdesk.optimize.sizes import tensor_bytes
from slmdesk.ui.optimize.controller import (
    MODE_NONE,
    STEP_PRUNE,
    STEP_REPORT,
    STEP_RUN,
    STEP_TYPE,
    OptimizeController,
)
from tests.ui.optimize_page import optimize_page

TIMEOUT = 600_000  # a loaded two-core machine: the run evaluates and times the result


@pytest.fixture
def page(qtbot, tiny_model: Path):
    yield from optimize_page(qtbot, tiny_model)


def _names(controller: OptimizeController) -> list[str]:
    table = controller.view.type_step.table
    return [table.item(r, 0).text() for r in range(table.rowCount())]


def _about(controller: OptimizeController, name: str) -> str:
    table = controller.view.type_step.table
    return table.item(_names(controller).index(name), 5).text()


@pytest.mark.timeout(1200)
def test_plan_choices_change_the_type_table_and_reach_the_report(
    qtbot, page, tiny_model: Path
) -> None:
    _parts, controller = page
    qtbot.mouseClick(controller.view.next_button, Qt.MouseButton.LeftButton)
    assert controller.step == STEP_TYPE
    qtbot.waitUntil(lambda: controller.view.type_step.table.rowCount() > 0, timeout=60_000)
    plan = controller.view.type_step.plan
    assert plan.imatrix.isChecked()
    assert _names(controller) == list(offered_types(True))
    assert _about(controller, "IQ2_XXS").startswith("Importance matrix · ")
    assert _about(controller, "Q3_K_M").startswith("Importance matrix · ")
    assert not _about(controller, "Q8_0").startswith("Importance matrix")

    plan.imatrix.setChecked(False)
    qtbot.waitUntil(lambda: _names(controller) == list(OFFERED_TYPES), timeout=60_000)
    assert not _about(controller, "Q3_K_M").startswith("Importance matrix")
    plan.imatrix.setChecked(True)
    qtbot.waitUntil(lambda: "IQ2_XXS" in _names(controller), timeout=60_000)

    before = {o.name: o.predicted_size_bytes for o in controller.options}
    offered = [plan.embedding.itemData(i) for i in range(plan.embedding.count())]
    assert offered[0] is None and "Q4_0" in offered and "Q4_K" in offered
    plan.embedding.setCurrentIndex(offered.index("Q4_0"))
    qtbot.waitUntil(
        lambda: {o.name: o.predicted_size_bytes for o in controller.options} != before,
        timeout=60_000,
    )
    info = read_gguf_info(tiny_model)
    n = next(t.n_elements for t in info.tensors if t.name == "token_embd.weight")
    saved = tensor_bytes(n, "Q8_0") - tensor_bytes(n, "Q4_0")
    after = {o.name: o.predicted_size_bytes for o in controller.options}
    assert before["Q8_0"] - after["Q8_0"] == pytest.approx(saved, abs=64)

    assert controller.select_type("Q3_K_M")
    qtbot.mouseClick(controller.view.next_button, Qt.MouseButton.LeftButton)
    assert controller.step == STEP_PRUNE
    controller.set_prune_mode(MODE_NONE)
    qtbot.mouseClick(controller.view.next_button, Qt.MouseButton.LeftButton)
    assert controller.step == STEP_RUN
    request = controller.request()
    assert (request.imatrix, request.embedding_type, request.output_type) == (None, "Q4_0", None)
    qtbot.mouseClick(controller.view.run_step.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: controller.step == STEP_REPORT, timeout=TIMEOUT)
    subtitle = controller.view.report_step.subtitle.text()
    assert "Importance matrix: yes; embedding type Q4_0; output type default." in subtitle
    assert controller.result.report["imatrix"] is True
