"""The Optimize page end to end: the real library, real llama.cpp children, the real threads."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QLabel

from slmdesk.models.library import Library
from slmdesk.models.quant_types import offered_types
from slmdesk.optimize import pipeline as core_optimize
from slmdesk.ui.optimize.controller import (
    MODE_AUTO,
    MODE_MANUAL,
    MODE_NONE,
    STEP_AB,
    STEP_PRUNE,
    STEP_REPORT,
    STEP_RUN,
    STEP_TYPE,
    OptimizeController,
)
from tests.ui.optimize_page import open_optimize_page, optimize_page, tiny_model_chosen

TIMEOUT = 180_000
CALIBRATION = (
    "the sun was out and the wind was up, so they all went to the sea. "
    "she said that it was one of the best days of the year, and he did not say no. "
) * 3


@pytest.fixture
def page(qtbot, tiny_model: Path):
    yield from optimize_page(qtbot, tiny_model)


def _click(qtbot, button) -> None:
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _to_type_step(qtbot, controller: OptimizeController) -> None:
    _click(qtbot, controller.view.next_button)
    assert controller.step == STEP_TYPE
    qtbot.waitUntil(lambda: controller.view.type_step.table.rowCount() > 0, timeout=60_000)


def _to_run_step(qtbot, controller: OptimizeController, quant: str, mode: int, n: int = 1) -> None:
    _to_type_step(qtbot, controller)
    assert controller.select_type(quant)
    _click(qtbot, controller.view.next_button)
    assert controller.step == STEP_PRUNE
    controller.set_prune_mode(mode, n)
    _click(qtbot, controller.view.next_button)
    assert controller.step == STEP_RUN


def _wait_idle(qtbot, controller: OptimizeController) -> None:
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)


def test_type_table_lists_every_offered_type(qtbot, page) -> None:
    _parts, controller = page
    _to_type_step(qtbot, controller)
    table = controller.view.type_step.table
    names = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert names == list(offered_types(True))  # with the importance matrix on
    options = {o.name: o for o in controller.options}
    assert options["Q8_0"].predicted_size_bytes < options["F16"].predicted_size_bytes
    assert options["Q4_K_M"].predicted_size_bytes < options["Q8_0"].predicted_size_bytes
    assert controller.selected_option().name == "Q4_K_M"  # the usual balance, preselected
    row = names.index("Q4_K_M")
    assert "+0.1754" in table.item(row, 3).text()
    badge = table.cellWidget(row, 2).findChild(QLabel, "verdict")
    assert badge.text() in {"fits", "tight", "too big"}
    assert not controller.view.type_step.warning.isVisible()  # F16 source: no requantize warning
    assert controller.view.next_button.isEnabled()


def test_quantize_q8_0_adds_the_model_with_a_report(qtbot, page) -> None:
    parts, controller = page
    stages: list[str] = []
    controller.job_progress.connect(lambda p: stages.append(p.stage))
    _to_run_step(qtbot, controller, "Q8_0", MODE_NONE)
    run = controller.view.run_step
    assert run.name.placeholderText() == "tiny-llama-Q8_0"
    assert not run.compare.isVisible()
    _click(qtbot, run.start_button)
    assert run.cancel_button.isVisible()
    assert not controller.view.back_button.isEnabled()
    qtbot.waitUntil(lambda: controller.step == STEP_REPORT, timeout=TIMEOUT)
    assert {"quantizing", "evaluating"} <= set(stages)
    entry = Library().get("tiny-llama-Q8_0")
    assert entry.provenance["type"] == "Q8_0"
    assert entry.quantization == "Q8_0"
    qtbot.waitUntil(
        lambda: (
            "tiny-llama-Q8_0"
            in [e.name for e in parts.library_controller.view.table_model.entries()]
        ),
        timeout=10_000,
    )
    report = controller.view.report_step
    assert report.title.text() == "tiny-llama-Q8_0 is ready"
    assert "→" in report.size_tile.value.text()
    assert float(report.kld_tile.value.text()) >= 0
    assert report.top1_tile.value.text().endswith("%")
    assert "tokens/s" in report.speed_tile.value.text()
    assert "× the speed of the source at F16" in report.speed_tile.context.text()
    titles = [title for title, _ in report.chart.groups()]
    assert titles == ["Size on disk", "KL divergence (lower is better)"]
    with qtbot.waitSignal(controller.chat_requested, timeout=5000) as signal:
        _click(qtbot, report.chat_button)
    assert signal.args == ["tiny-llama-Q8_0"]
    assert parts.window.current_page() == "Chat"


def test_measure_importance_then_prune_one_block_automatically(
    qtbot, page, tmp_path: Path, gui_guard
) -> None:
    _parts, controller = page
    calibration = tmp_path / "calibration.txt"
    with gui_guard.allowed():
        calibration.write_text(CALIBRATION, encoding="utf-8")
    controller.set_calibration(calibration)
    _to_type_step(qtbot, controller)
    assert controller.select_type("Q8_0")
    _click(qtbot, controller.view.next_button)
    prune = controller.view.prune_step
    # importance only: bars for the four blocks, with progress while measuring
    _click(qtbot, prune.measure_button)
    assert prune.measure_cancel.isVisible()
    _wait_idle(qtbot, controller)
    importance = prune.chart.importance
    assert importance is not None and len(importance) == 4 and all(v > 0 for v in importance)
    # manual mode: a click on a bar marks that block
    controller.set_prune_mode(MODE_MANUAL)
    chart = prune.chart
    x = int(chart._bar_rect(2).center().x())
    qtbot.mouseClick(chart, Qt.MouseButton.LeftButton, pos=QPoint(x, chart.height() - 40))
    assert chart.selected() == [2]
    assert controller.removed_blocks() == [2]
    assert "Remove blocks 2" in prune.summary.text()
    # automatic mode: one block chosen by measurement
    controller.set_prune_mode(MODE_AUTO, 1)
    cheapest = min(range(4), key=lambda b: importance[b])
    assert chart.selected() == [cheapest]
    _click(qtbot, controller.view.next_button)
    run = controller.view.run_step
    assert run.name.placeholderText() == "tiny-llama-pruned1-Q8_0"
    run.compare.setChecked(False)  # keep the test short: no plain-quantization comparison
    _click(qtbot, run.start_button)
    qtbot.waitUntil(lambda: controller.step == STEP_REPORT, timeout=TIMEOUT)
    entry = Library().get("tiny-llama-pruned1-Q8_0")
    assert entry.provenance["removed_blocks"] == [cheapest]
    assert entry.facts["block_count"] == 3
    assert controller.view.report_step.blocks_tile.value.text() == "4 → 3"
    # the pruned model's speed against the unpruned model at the same type, not the F16 source
    speed_context = controller.view.report_step.speed_tile.context.text()
    assert "× the speed of the source at Q8_0" in speed_context


def test_cancel_mid_run_leaves_no_partial_file(qtbot, page) -> None:
    _parts, controller = page
    _to_run_step(qtbot, controller, "Q4_K_M", MODE_NONE)
    models = Library().models_dir
    before = sorted(p.name for p in models.iterdir())
    run = controller.view.run_step
    seen: list[str] = []

    def cancel_on_first(progress) -> None:
        seen.append(progress.stage)
        if len(seen) == 1:
            _click(qtbot, run.cancel_button)

    controller.job_progress.connect(cancel_on_first)
    _click(qtbot, run.start_button)
    _wait_idle(qtbot, controller)
    assert seen
    assert run.stage.text() == "Cancelled"
    assert not controller.view.error.isVisible()
    assert sorted(p.name for p in models.iterdir()) == before  # no partial, no output
    assert [e.name for e in Library().entries()] == ["tiny-llama-F16"]
    # the page is usable again
    assert run.start_button.isVisible() and run.start_button.isEnabled()
    assert controller.view.back_button.isEnabled()
    _click(qtbot, controller.view.back_button)
    assert controller.step == STEP_PRUNE


def test_errors_are_shown_in_the_page(qtbot, page, gui_guard) -> None:
    _parts, controller = page
    _to_run_step(qtbot, controller, "Q8_0", MODE_NONE)
    run = controller.view.run_step
    # a name already in the library is refused before starting
    run.name.setText("tiny-llama-F16")
    assert "already in your library" in run.name_hint.text()
    assert not run.start_button.isEnabled()
    run.name.clear()
    assert run.start_button.isEnabled()
    # an output file that exists (not in the library) is refused by the core: shown in the page
    existing = Library().models_dir / "tiny-llama-Q8_0.gguf"
    with gui_guard.allowed():
        existing.write_bytes(b"keep me")
    _click(qtbot, run.start_button)
    _wait_idle(qtbot, controller)
    assert controller.view.error.isVisible()
    assert "already exists" in controller.view.error.text()
    assert "Traceback" not in controller.view.error.text()
    assert existing.read_bytes() == b"keep me"
    assert run.start_button.isEnabled()
    assert controller.step == STEP_RUN


def test_side_by_side_chat_streams_both_and_shuts_down(
    qtbot, page, tmp_path: Path, gui_guard
) -> None:
    _parts, controller = page
    source = Library().get("tiny-llama-F16").path
    with gui_guard.allowed():  # the test prepares the optimized model itself
        optimized = core_optimize.quantize(source, tmp_path / "tiny-q8.gguf", "Q8_0")
    ab = controller.ab
    view = controller.view.ab_view
    writers: set[str] = set()  # threads that appended streamed text to a transcript
    for pane in (view.original, view.optimized):
        append = pane.append_text
        pane.append_text = lambda text, append=append: (  # type: ignore[method-assign]
            writers.add(threading.current_thread().name),
            append(text),
        )
    ab.open(source, optimized, ("tiny-llama-F16", "tiny-q8"))
    controller.view.show_step(STEP_AB)
    qtbot.waitUntil(lambda: ab.ready, timeout=60_000)
    threads = [side.client.thread for side in ab.sides.values()]
    assert sorted(t.objectName() for t in threads) == [
        "slmdesk-ab-optimized",
        "slmdesk-ab-original",
    ]
    view.max_tokens.setValue(12)
    view.greedy.setChecked(True)
    view.prompt.setText("Hello, who are you?")
    _click(qtbot, view.send_button)
    assert ab.generating
    qtbot.waitUntil(lambda: not ab.generating, timeout=60_000)
    for pane in (view.original, view.optimized):
        assert "You: Hello, who are you?" in pane.transcript.toPlainText()
        assert "tokens/s" in pane.status.text()
    assert all(side.exchanges == 1 for side in ab.sides.values())
    assert writers == {threading.current_thread().name}  # widgets touched on the GUI thread only
    # a second prompt, stopped at once
    view.max_tokens.setValue(2000)
    view.prompt.setText("Tell me a long story")
    _click(qtbot, view.send_button)
    _click(qtbot, view.stop_button)
    qtbot.waitUntil(lambda: not ab.generating, timeout=60_000)
    _click(qtbot, view.back_button)
    assert controller.step == STEP_REPORT
    assert all(t.isFinished() for t in threads)
    assert ab.sides == {}


def test_closing_the_window_mid_run_is_bounded_and_leaves_no_partial_file(
    qtbot, tiny_model: Path
) -> None:
    parts = open_optimize_page(qtbot, tiny_model)
    controller = tiny_model_chosen(qtbot, parts)
    _to_run_step(qtbot, controller, "Q4_K_M", MODE_NONE)
    models = Library().models_dir
    before = sorted(p.name for p in models.iterdir())
    seen: list[str] = []
    controller.job_progress.connect(lambda p: seen.append(p.stage))
    _click(qtbot, controller.view.run_step.start_button)
    qtbot.waitUntil(lambda: bool(seen), timeout=TIMEOUT)  # a child process is working
    job = controller.job
    assert job is not None and job.running
    started = time.monotonic()
    parts.window.close()  # runs the shutdown: cancel, kill the child, remove partial output
    elapsed = time.monotonic() - started
    assert elapsed < 2.5  # the 2 s budget plus slack for a loaded machine
    assert job.wait(0)  # the job's thread returned within the budget
    assert sorted(p.name for p in models.iterdir()) == before  # no partial, no output
    assert [e.name for e in Library().entries()] == ["tiny-llama-F16"]
    parts.shutdown()


@pytest.fixture
def q4_entry(tiny_model: Path, tmp_path: Path) -> str:
    """A Q4_K_M copy of the tiny model in the library (imported before the window opens)."""
    q4 = core_optimize.quantize(tiny_model, tmp_path / "tiny-q4.gguf", "Q4_K_M")
    return Library().import_model(q4).name


def test_a_type_that_grows_the_source_is_named_and_never_preselected(
    qtbot, q4_entry: str, page
) -> None:
    _parts, controller = page
    step = controller.view.type_step
    _to_type_step(qtbot, controller)
    assert controller.select_type("Q8_0")  # fine for the F16 source: no warning
    assert not step.warning.isVisible()
    _click(qtbot, controller.view.back_button)
    assert controller.select_model(q4_entry)
    qtbot.waitUntil(
        lambda: controller.facts is not None and controller.facts.entry.name == q4_entry,
        timeout=10_000,
    )
    _to_type_step(qtbot, controller)  # the rows of the Q4_K_M source
    chosen = controller.selected_option()
    assert chosen is not None and chosen.name not in {"Q8_0", "Q4_K_M"}  # neither grows it
    assert chosen.size_warning == ""
    source_size = controller.facts.info.size_bytes
    assert chosen.predicted_size_bytes < 0.9 * source_size
    assert controller.select_type("Q8_0")
    assert step.warning.isVisible()
    assert "Q8_0 would make this model" in step.warning.text()
    assert "larger than its Q4_K_M source" in step.warning.text()
    # made anyway: the report says it, and the next pass does not offer Q8_0 again
    _click(qtbot, controller.view.next_button)
    _click(qtbot, controller.view.next_button)
    _click(qtbot, controller.view.run_step.start_button)
    qtbot.waitUntil(lambda: controller.step == STEP_REPORT, timeout=TIMEOUT)
    report = controller.view.report_step
    assert "Q8_0 would make this model" in report.warnings.text()
    _click(qtbot, report.again_button)
    _click(qtbot, controller.view.next_button)
    assert controller.step == STEP_TYPE
    assert controller.selected_option().name not in {"Q8_0", "Q4_K_M"}


def test_writing_the_model_shows_a_percentage(qtbot, page) -> None:
    _parts, controller = page
    _to_run_step(qtbot, controller, "Q4_K_M", MODE_NONE)
    run = controller.view.run_step
    shown: list[tuple[str, str, str]] = []  # (stage, detail, bar text) after each update
    _click(qtbot, run.start_button)
    assert controller.job is not None  # connected after the page's own handler: sees its result
    controller.job.progress.connect(
        lambda _p: shown.append((run.stage.text(), run.detail.text(), run.progress.text()))
    )
    qtbot.waitUntil(lambda: controller.step == STEP_REPORT, timeout=TIMEOUT)
    writing = [s for s in shown if s[0] == "Writing the new model" and s[1] != "starting…"]
    assert writing, shown
    assert all(re.match(r"\d+ % · ", detail) for _, detail, _ in writing), writing
    assert all(text.endswith("%") for *_, text in writing)


def test_importance_bars_fill_in_as_each_block_is_measured(qtbot, page) -> None:
    _parts, controller = page
    _to_type_step(qtbot, controller)
    _click(qtbot, controller.view.next_button)
    prune = controller.view.prune_step
    drawn: list[list[float | None]] = []  # what the chart shows after each update
    _click(qtbot, prune.measure_button)
    assert controller.job is not None  # connected after the page's own handler: sees its result
    controller.job.progress.connect(lambda _p: drawn.append(list(prune.chart.importance or [])))
    _wait_idle(qtbot, controller)
    final = prune.chart.importance
    assert final is not None and None not in final
    partial = [d for d in drawn if d and None in d and any(v is not None for v in d)]
    assert partial, drawn  # some bars were drawn while others were still being measured
    for shown in drawn:  # every bar drawn early is the figure the measurement ends with
        assert [v for v in shown if v is not None] == pytest.approx(
            [f for f, v in zip(final, shown, strict=True) if v is not None]
        )


def test_discard_removes_the_result_after_confirmation(qtbot, page, dialog_script) -> None:
    _parts, controller = page
    _to_run_step(qtbot, controller, "Q8_0", MODE_NONE)
    _click(qtbot, controller.view.run_step.start_button)
    qtbot.waitUntil(lambda: controller.step == STEP_REPORT, timeout=TIMEOUT)
    report = controller.view.report_step
    path = Path(controller.result.path)
    dialog_script.answers["confirm"] = False  # asked, declined: nothing changes
    _click(qtbot, report.discard_button)
    assert dialog_script.asked == ["confirm"]
    assert "tiny-llama-Q8_0" in [e.name for e in Library().entries()]
    dialog_script.answers["confirm"] = True
    _click(qtbot, report.discard_button)
    qtbot.waitUntil(lambda: report.title.text() == "tiny-llama-Q8_0 was discarded", timeout=10_000)
    assert [e.name for e in Library().entries()] == ["tiny-llama-F16"]
    assert not path.exists()
    assert not report.discard_button.isEnabled() and not report.chat_button.isEnabled()


def test_a_heavily_degraded_result_offers_the_recommended_plan(qtbot, page) -> None:
    _parts, controller = page
    _to_type_step(qtbot, controller)
    assert controller.select_type("Q8_0")
    _click(qtbot, controller.view.next_button)
    controller.set_prune_mode(MODE_MANUAL)
    controller.view.prune_step.chart.set_selected([0])  # the first block: costly to remove
    controller._on_prune_changed()
    _click(qtbot, controller.view.next_button)
    controller.view.run_step.compare.setChecked(False)
    _click(qtbot, controller.view.run_step.start_button)
    qtbot.waitUntil(lambda: controller.step == STEP_REPORT, timeout=TIMEOUT)
    report = controller.view.report_step
    assert "heavily degraded" in report.kld_tile.context.text()
    assert report.recommended_button.isEnabled()
    assert "Build Q8_0 without pruning instead" in report.recommended_button.toolTip()
    _click(qtbot, report.recommended_button)
    assert controller.running and controller.step == STEP_RUN
    qtbot.waitUntil(
        lambda: controller.step == STEP_REPORT and not controller.running, timeout=TIMEOUT
    )
    assert controller.result.name == "tiny-llama-Q8_0"
    assert Library().get("tiny-llama-Q8_0").provenance["removed_blocks"] == []
    assert "tiny-llama-pruned1-Q8_0" in [e.name for e in Library().entries()]  # not discarded
