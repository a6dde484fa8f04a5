"""Wires the Optimize wizard to `slmdesk.optimize.pipeline`.

Short jobs (header reads, the size preview) run on the task pool. The long ones (measuring block
importance, the whole optimize pipeline) are jobs of the same pool on their own dedicated
``slmdesk-optimize`` thread, one at a time; their progress (throttled, stage changes at once),
results and errors come back as the job's signals, handled here on the GUI thread. Cancel (and
closing the window) sets the job's cancel event: the core kills its child process and removes
partial files.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QTableWidgetItem, QWidget

from slmdesk.common import settings as app_settings
from slmdesk.common.errors import SlmdeskError
from slmdesk.models.gguf_info import GGUFInfo
from slmdesk.models.library import Library, ModelEntry
from slmdesk.optimize.guardrails import Recommendation, preselected_type, recommended_plan
from slmdesk.optimize.worker_process import OptimizeCancelled, Progress
from slmdesk.ui import dialogs
from slmdesk.ui.format import human_duration, human_size
from slmdesk.ui.optimize.ab_chat import ABChatController
from slmdesk.ui.optimize.report import fill_report
from slmdesk.ui.optimize.view import OptimizeView
from slmdesk.ui.runtime.jobs import SHUTDOWN_BUDGET, Deadline, Job, JobContext, stop_all
from slmdesk.ui.runtime.tasks import TaskRunner
from slmdesk.ui.theme import verdict_style

log = logging.getLogger("slmdesk.ui.optimize")

STEP_MODEL, STEP_TYPE, STEP_PRUNE, STEP_RUN, STEP_REPORT, STEP_AB = range(6)
DEFAULT_TYPE = "Q4_K_M"
MODE_NONE, MODE_AUTO, MODE_MANUAL = range(3)

# What each pipeline stage is called on screen, in the order they happen.
STAGE_WORDS: dict[str, str] = {
    "reference": "Making a full-precision reference copy of the original",
    "planning": "Measuring which blocks matter least",
    "importance": "Measuring which weights matter most (importance matrix)",
    "quantizing": "Writing the new model",
    "evaluating": "Measuring quality against the original",
    "speed": "Measuring speed against the original",
    "compare": "Measuring plain quantization of the same size, for comparison",
}
PREVIEW_WORDS = "Predicting the size of each type"
CAUTION_COLOR = "#b26a00"  # a predicted size that is not meaningfully smaller than the source


@dataclass
class SourceFacts:
    """What the wizard needs to know about the chosen model (read off the GUI thread)."""

    entry: ModelEntry
    info: GGUFInfo
    stem: str  # default-name stem, e.g. "gemma-3-270m-it"
    prunable: bool
    prune_reason: str
    global_flags: list[bool] | None  # per block: full attention (True) vs sliding window
    block_bytes: list[int]  # bytes of each block's tensors in the source
    requantize_warning: str | None


def read_source_facts(entry: ModelEntry) -> SourceFacts:
    """Read the chosen model's header and its pruning rules (blocking: run on the pool)."""
    from slmdesk.optimize.pipeline import default_name, requantize_warning, source_info
    from slmdesk.optimize.prune import check_prunable, swa_layers

    info = source_info(entry.path)
    check = check_prunable(info)
    flags = swa_layers(info)
    block_bytes = [0] * info.block_count
    for tensor in info.tensors:
        if tensor.name.startswith("blk."):
            index = tensor.name.split(".")[1]
            if index.isdigit() and int(index) < info.block_count:
                block_bytes[int(index)] += tensor.n_bytes
    stem = default_name(info, "Q", [])[: -len("-Q")]
    return SourceFacts(
        entry=entry,
        info=info,
        stem=stem,
        prunable=check.allowed,
        prune_reason=check.reason,
        global_flags=[not f for f in flags] if flags is not None else None,
        block_bytes=block_bytes,
        requantize_warning=requantize_warning(info),
    )


def percent(fraction: float) -> str:
    """``42 %``: whole percents, never 100 % before the end."""
    value = int(fraction * 100) if fraction < 1 else 100
    return f"{value} %"


def verdict_badge(option: Any) -> QWidget:
    """A small coloured pill with the memory verdict, centred in its table cell."""
    cell = QWidget()
    layout = QHBoxLayout(cell)
    layout.setContentsMargins(4, 2, 4, 2)
    badge = QLabel(option.verdict)
    badge.setObjectName("verdict")
    badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
    badge.setStyleSheet(verdict_style(option.verdict if option.available else ""))
    badge.setToolTip(f"needs about {human_size(option.memory_total_bytes)} of memory to run")
    badge.setEnabled(option.available)
    layout.addWidget(badge, 0, Qt.AlignmentFlag.AlignCenter)
    return cell


class OptimizeController(QObject):
    """The Optimize page's behaviour."""

    chat_requested = Signal(str)  # library name of the new model
    job_progress = Signal(object)  # Progress of the running measurement or run, as shown

    def __init__(self, view: OptimizeView, library: Library, tasks: TaskRunner) -> None:
        super().__init__()
        self.view = view
        self.library = library
        self.tasks = tasks
        self.job: Job | None = None  # the measurement or optimize run in progress
        self.ab = ABChatController(view.ab_view)
        self._entries: list[ModelEntry] = []
        self.facts: SourceFacts | None = None
        self.options: list[Any] = []  # TypeOption of the current source
        self._previews: dict[str, list[Any]] = {}
        self._preview_job: Job | None = None
        self.importance: list[float] | None = None
        self._measured: list[float | None] = []  # importance arriving block by block
        self.calibration: Path | None = None
        self.result: Any = None  # OptimizeResult
        self.recommendation: Recommendation | None = None  # what to build instead of the result
        self._discard_job: Job | None = None
        self._job = ""  # "measure" | "optimize" | ""
        self._started = 0.0
        self._stage_key = ""
        self._stage_mark: tuple[str, float, int] = ("", 0.0, 0)  # stage, when, done then
        self._stages_seen: list[str] = []
        self._planned: list[str] = []
        self._evaluated = False
        self._closed = False
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._on_tick)

        view.next_button.clicked.connect(self._on_next)
        view.back_button.clicked.connect(self._on_back)
        view.model_step.table.itemSelectionChanged.connect(self._on_model_selected)
        view.model_step.table.doubleClicked.connect(self._on_next)
        view.type_step.table.itemSelectionChanged.connect(self._update_nav)
        view.type_step.table.itemSelectionChanged.connect(self._show_type_warning)
        view.type_step.table.doubleClicked.connect(self._on_next)
        view.type_step.plan.changed.connect(self._on_plan_changed)
        prune = view.prune_step
        prune.mode_group.idClicked.connect(self._on_mode_changed)
        prune.count.valueChanged.connect(self._on_prune_changed)
        prune.chart.toggled.connect(self._on_block_toggled)
        prune.measure_button.clicked.connect(self._on_measure)
        prune.measure_cancel.clicked.connect(self._cancel_job)
        prune.calibration_button.clicked.connect(self._on_pick_calibration)
        prune.calibration_reset.clicked.connect(lambda: self.set_calibration(None))
        run = view.run_step
        run.name.textChanged.connect(self._on_name_changed)
        run.start_button.clicked.connect(self.start)
        run.cancel_button.clicked.connect(self.cancel)
        report = view.report_step
        report.chat_button.clicked.connect(self._on_chat)
        report.compare_button.clicked.connect(self._on_compare)
        report.again_button.clicked.connect(self._on_again)
        report.discard_button.clicked.connect(self._on_discard)
        report.recommended_button.clicked.connect(self._on_build_recommended)
        self.ab.closed.connect(lambda: self.go(STEP_REPORT))
        self.set_calibration(None)
        self.go(STEP_MODEL)

    # -- navigation ------------------------------------------------------------------------------

    @property
    def step(self) -> int:
        """The step on show."""
        return self.view.stack.currentIndex()

    def go(self, step: int) -> None:
        """Show ``step`` and prepare it."""
        self.view.show_error("")
        self.view.show_step(step)
        if step == STEP_TYPE:
            self._show_type_step()
        elif step == STEP_PRUNE:
            self._show_prune_step()
        elif step == STEP_RUN:
            self._show_run_step()
        self._update_nav()

    @Slot()
    def _on_next(self) -> None:
        if self.view.next_button.isEnabled() and self.view.next_button.isVisible():
            self.go(self.step + 1)

    @Slot()
    def _on_back(self) -> None:
        if self.step > STEP_MODEL and not self.running:
            self.go(self.step - 1)

    @Slot()
    def _update_nav(self) -> None:
        step = self.step
        busy = self.running
        nav_visible = step <= STEP_RUN
        self.view.back_button.setVisible(nav_visible)
        self.view.next_button.setVisible(step < STEP_RUN)
        self.view.back_button.setEnabled(step > STEP_MODEL and not busy)
        ok = False
        if step == STEP_MODEL:
            ok = self.facts is not None and self.selected_entry() is not None
        elif step == STEP_TYPE:
            option = self.selected_option()
            ok = option is not None and option.available
        elif step == STEP_PRUNE:
            ok = not busy and self._prune_choice_valid()
        self.view.next_button.setEnabled(ok)

    # -- step 1: the model -----------------------------------------------------------------------

    @Slot(list)
    def set_models(self, entries: list[ModelEntry]) -> None:
        """Fill the model list from the library (after every library refresh)."""
        self._entries = [e for e in entries if e.status == "ok"]
        table = self.view.model_step.table
        current = self.facts.entry.name if self.facts else None
        table.blockSignals(True)
        table.setRowCount(len(self._entries))
        for row, entry in enumerate(self._entries):
            cells = (
                entry.name,
                entry.quantization or "?",
                human_size(entry.size_bytes),
                str(entry.facts.get("block_count") or "?"),
                entry.architecture or "?",
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, entry.name)
                table.setItem(row, column, item)
        table.blockSignals(False)
        self.view.model_step.empty.setVisible(not self._entries)
        names = [e.name for e in self._entries]
        if current in names:
            table.selectRow(names.index(current))
        elif current is None and names and not table.selectionModel().selectedRows():
            table.selectRow(0)  # one click less: most people have one or two models
        elif self.facts is not None and not self.running:
            self.facts = None
        self._update_nav()

    def selected_entry(self) -> ModelEntry | None:
        """The model chosen in step 1."""
        rows = self.view.model_step.table.selectionModel().selectedRows()
        if not rows:
            return None
        name = self.view.model_step.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)
        return next((e for e in self._entries if e.name == name), None)

    def select_model(self, name: str) -> bool:
        """Select ``name`` in step 1 (False when it is not in the list)."""
        names = [e.name for e in self._entries]
        if name not in names:
            return False
        self.view.model_step.table.selectRow(names.index(name))
        return True

    @Slot()
    def _on_model_selected(self) -> None:
        entry = self.selected_entry()
        if entry is None or (self.facts is not None and self.facts.entry.path == entry.path):
            self._update_nav()
            return
        self.facts = None
        self.importance = None
        self.view.prune_step.chart.set_selected([])
        self._update_nav()
        self.tasks.run(
            lambda: read_source_facts(entry),
            self._on_facts,
            lambda exc: self._show_failure(exc),
            name="optimize-source",
        )

    def _on_facts(self, facts: SourceFacts) -> None:
        entry = self.selected_entry()
        if entry is None or entry.path != facts.entry.path:
            return  # the user picked another model meanwhile
        self.facts = facts
        self.view.type_step.plan.set_model(facts.info)
        self._start_preview(facts)
        self._update_nav()

    # -- step 2: the type ------------------------------------------------------------------------

    def _preview_key(self, facts: SourceFacts) -> str:
        return f"{facts.info.path}|{self.view.type_step.plan.key()}"

    @Slot()
    def _on_plan_changed(self) -> None:
        facts = self.facts
        if facts is None:
            return
        options = self._previews.get(self._preview_key(facts))
        if options is not None:
            self._fill_types(options)
        else:
            self.view.type_step.status.setText(f"{PREVIEW_WORDS}…")
            self._start_preview(facts)

    def _start_preview(self, facts: SourceFacts) -> None:
        key = self._preview_key(facts)
        if key in self._previews:
            return
        if self._preview_job is not None:
            self._preview_job.cancel()
        imatrix, embedding, output = self.view.type_step.plan.choices()

        def work(context: JobContext) -> list[Any]:
            from slmdesk.optimize.pipeline import size_preview

            return size_preview(
                facts.info.path,
                cancel=context.cancelled,
                embedding_type=embedding,
                output_type=output,
                imatrix=imatrix,
            )

        def done(options: list[Any]) -> None:
            self._previews[key] = options
            if self.facts is not None and self._preview_key(self.facts) == key:
                self._fill_types(options)

        def failed(exc: BaseException) -> None:
            if self.facts is not None and self._preview_key(self.facts) == key:
                self.view.type_step.status.setText("")
                self._show_failure(exc)

        self._preview_job = self.tasks.start(work, "optimize-preview")
        self._preview_job.succeeded.connect(done)
        self._preview_job.failed.connect(failed)

    def _show_type_step(self) -> None:
        step = self.view.type_step
        facts = self.facts
        if facts is None:
            return
        step.source.setText(
            f"{facts.entry.name}: {facts.info.quantization}, "
            f"{human_size(facts.info.size_bytes)}, {facts.info.block_count} blocks"
        )
        self._show_type_warning()
        options = self._previews.get(self._preview_key(facts))
        if options is None:
            step.table.setRowCount(0)
            step.status.setText(f"{PREVIEW_WORDS}…")
        elif options is not self.options:
            self._fill_types(options)

    def _fill_types(self, options: list[Any]) -> None:
        step = self.view.type_step
        previous = self.selected_option()
        wanted = preselected_type(options, previous.name if previous else None, DEFAULT_TYPE)
        self.options = options
        step.status.setText("")
        table = step.table
        table.blockSignals(True)
        table.clearSelection()
        table.setRowCount(len(options))
        grey = QBrush(QColor("#9a9ea8"))
        for row, option in enumerate(options):
            quality = (
                f"+{option.ppl_increase:.4f} ppl"
                if option.ppl_increase is not None and option.ppl_increase >= 0
                else (f"{option.ppl_increase:.4f} ppl" if option.ppl_increase is not None else "—")
            )
            about = option.description if option.available else f"Unavailable: {option.reason}"
            if option.available and getattr(option, "uses_imatrix", False):
                about = f"Importance matrix · {about}"
            cells = (
                option.name,
                human_size(option.predicted_size_bytes),
                "",
                quality,
                f"{option.bits_per_weight:g}" if option.bits_per_weight else "—",
                about,
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, option.name)
                if not option.available:
                    item.setFlags(Qt.ItemFlag.NoItemFlags)
                    item.setForeground(grey)
                    item.setToolTip(option.reason)
                elif option.size_warning:
                    item.setToolTip(option.size_warning)
                    if column == 1:
                        item.setForeground(QBrush(QColor(CAUTION_COLOR)))
                table.setItem(row, column, item)
            table.setCellWidget(row, 2, verdict_badge(option))
        table.blockSignals(False)
        if wanted is not None:
            table.selectRow([o.name for o in options].index(wanted))
        self._show_type_warning()
        self._update_nav()

    @Slot()
    def _show_type_warning(self) -> None:
        """The chosen type's own size warning, else the source's re-quantize warning."""
        step = self.view.type_step
        option = self.selected_option()
        generic = self.facts.requantize_warning if self.facts is not None else None
        text = (option.size_warning if option is not None else "") or generic or ""
        step.warning.setText(text)
        step.warning.setVisible(bool(text))

    def selected_option(self) -> Any:
        """The `TypeOption` chosen in step 2."""
        rows = self.view.type_step.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.options):
            return None
        return self.options[rows[0].row()]

    def select_type(self, name: str) -> bool:
        """Select type ``name`` in step 2 (False when it is not offered or unavailable)."""
        for row, option in enumerate(self.options):
            if option.name == name and option.available:
                self.view.type_step.table.selectRow(row)
                return True
        return False

    # -- step 3: pruning -------------------------------------------------------------------------

    def _show_prune_step(self) -> None:
        step = self.view.prune_step
        facts = self.facts
        if facts is None:
            return
        n = facts.info.block_count
        step.count.setRange(1, max(1, n - 1))
        for radio in (step.auto_radio, step.manual_radio, step.count):
            radio.setEnabled(facts.prunable)
        step.unavailable.setVisible(not facts.prunable)
        step.unavailable.setText(
            f"{facts.entry.name} cannot be pruned: {facts.prune_reason}. You can still quantize it."
        )
        if not facts.prunable:
            step.none_radio.setChecked(True)
        notes = [
            "At least one block must remain; the first and last blocks are usually the most "
            "important."
        ]
        if facts.global_flags is not None:
            notes.append(
                f"{facts.info.architecture} alternates sliding-window layers with full-attention "
                "layers (marked G) by position. slmdesk writes each kept block's attention type "
                "into the new file, so removing a block does not shift the pattern."
            )
        step.arch_note.setText(" ".join(notes))
        step.measure_button.setEnabled(facts.prunable and not self.running)
        step.chart.set_blocks(n, self.importance, facts.global_flags)
        self._on_mode_changed(step.mode_group.checkedId())

    def prune_mode(self) -> int:
        """MODE_NONE, MODE_AUTO or MODE_MANUAL."""
        return self.view.prune_step.mode_group.checkedId()

    def set_prune_mode(self, mode: int, count: int = 1) -> None:
        """Choose a pruning mode (as clicking the radio buttons does)."""
        step = self.view.prune_step
        step.count.setValue(count)
        button = step.mode_group.button(mode)
        button.setChecked(True)
        self._on_mode_changed(mode)

    @Slot(int)
    def _on_mode_changed(self, mode: int) -> None:
        step = self.view.prune_step
        step.chart.set_interactive(mode == MODE_MANUAL)
        if mode != MODE_MANUAL:
            step.chart.set_selected(self._auto_guess() if mode == MODE_AUTO else [])
        self._on_prune_changed()

    def _auto_guess(self) -> list[int]:
        """The cheapest single blocks, as a preview of what measurement will likely choose."""
        if self.importance is None:
            return []
        count = self.view.prune_step.count.value()
        ranked = sorted(range(len(self.importance)), key=lambda b: self.importance[b])
        return sorted(ranked[:count])

    @Slot(int)
    def _on_block_toggled(self, block: int) -> None:
        if self.prune_mode() != MODE_MANUAL or self.facts is None:
            return
        chosen = set(self.view.prune_step.chart.selected())
        if block in chosen:
            chosen.discard(block)
        elif len(chosen) + 1 >= self.facts.info.block_count:
            self.view.prune_step.summary.setText("At least one block must remain.")
            return
        else:
            chosen.add(block)
        self.view.prune_step.chart.set_selected(chosen)
        self._on_prune_changed()

    def removed_blocks(self) -> list[int]:
        """Blocks chosen by hand (manual mode)."""
        return self.view.prune_step.chart.selected() if self.prune_mode() == MODE_MANUAL else []

    def _prune_choice_valid(self) -> bool:
        mode = self.prune_mode()
        if mode == MODE_MANUAL:
            return bool(self.removed_blocks())
        return mode in (MODE_NONE, MODE_AUTO)

    def _removed_count(self) -> int:
        mode = self.prune_mode()
        if mode == MODE_AUTO:
            return self.view.prune_step.count.value()
        return len(self.removed_blocks())

    def _predicted_size(self) -> int | None:
        option = self.selected_option()
        if option is None or self.facts is None:
            return None
        size = option.predicted_size_bytes
        blocks = self.facts.block_bytes
        total = sum(blocks) or 1
        mode = self.prune_mode()
        if mode == MODE_MANUAL:
            share = sum(blocks[b] for b in self.removed_blocks()) / total
        elif mode == MODE_AUTO:
            share = self._removed_count() * (total / max(1, len(blocks))) / total
        else:
            share = 0.0
        block_part = total / max(1, self.facts.info.size_bytes) * size
        return int(size - block_part * share)

    @Slot()
    def _on_prune_changed(self) -> None:
        step = self.view.prune_step
        if self.prune_mode() == MODE_AUTO:
            step.chart.set_selected(self._auto_guess())
        facts = self.facts
        text = ""
        if facts is not None:
            size = self._predicted_size()
            option = self.selected_option()
            size_text = f" — about {human_size(size)} at {option.name}" if size and option else ""
            mode = self.prune_mode()
            if mode == MODE_NONE:
                text = f"All {facts.info.block_count} blocks are kept{size_text}."
            elif mode == MODE_AUTO:
                n = step.count.value()
                text = (
                    f"{n} of {facts.info.block_count} blocks will be chosen by measuring the "
                    f"model on the calibration text{size_text}."
                )
                if self.importance is not None:
                    text += " The red bars show the cheapest single blocks; the search also "
                    text += "tests them together, so its final choice may differ."
            else:
                removed = self.removed_blocks()
                text = (
                    f"Remove blocks {', '.join(map(str, removed))}{size_text}."
                    if removed
                    else "Click bars in the chart to mark blocks for removal."
                )
        step.summary.setText(text)
        self._update_nav()

    def set_calibration(self, path: Path | None) -> None:
        """Use ``path`` (None: the shipped text) to measure block importance."""
        self.calibration = path
        step = self.view.prune_step
        step.calibration_label.setText(
            f"Calibration text: {path.name}"
            if path
            else "Calibration text: the shipped sample of prose and code"
        )
        step.calibration_reset.setVisible(path is not None)
        if self.importance is not None:
            self.importance = None
            if self.facts is not None:
                step.chart.set_blocks(self.facts.info.block_count, None, self.facts.global_flags)

    @Slot()
    def _on_pick_calibration(self) -> None:
        path = dialogs.pick_text_file(self.view, "Calibration text")
        if path is not None:
            self.set_calibration(path)

    @Slot()
    def _on_measure(self) -> None:
        facts = self.facts
        if facts is None or self.running:
            return
        source, calibration = facts.info.path, self.calibration

        def run(progress: Any, cancel: Any) -> Any:
            from slmdesk.optimize.pipeline import plan_pruning

            return plan_pruning(
                source, 0, calibration, self._threads(), progress=progress, cancel=cancel
            )

        step = self.view.prune_step
        self._job = "measure"
        self._measured = [None] * facts.info.block_count
        self._begin_progress()
        step.measure_button.setVisible(False)
        step.measure_cancel.setVisible(True)
        step.measure_progress.setVisible(True)
        step.measure_progress.setRange(0, 0)
        step.measure_status.setText("Starting…")
        self.view.show_error("")
        self._start_job(run)
        self._update_nav()

    # -- step 4: run -----------------------------------------------------------------------------

    def _default_name(self) -> str:
        facts = self.facts
        option = self.selected_option()
        if facts is None or option is None:
            return ""
        count = self._removed_count()
        middle = f"-pruned{count}" if count else ""
        return f"{facts.stem}{middle}-{option.name}"

    def _show_run_step(self) -> None:
        step = self.view.run_step
        facts = self.facts
        option = self.selected_option()
        if facts is None or option is None:
            return
        mode = self.prune_mode()
        if mode == MODE_AUTO:
            prune = f"remove {self._removed_count()} block(s), chosen by measurement"
        elif mode == MODE_MANUAL:
            prune = f"remove blocks {', '.join(map(str, self.removed_blocks()))}"
        else:
            prune = "keep every block"
        size = self._predicted_size()
        step.summary.setText(
            f"<b>{facts.entry.name}</b> ({facts.info.quantization}, "
            f"{human_size(facts.info.size_bytes)}) → <b>{option.name}</b>, {prune}; "
            f"about <b>{human_size(size or 0)}</b>.<br>The result is checked against the "
            "original on a held-out text: KL divergence, top-1 agreement, perplexity, speed."
        )
        step.name.setPlaceholderText(self._default_name())
        step.compare.setVisible(mode != MODE_NONE)
        if not self.running:
            step.progress_card.setVisible(False)
        self._on_name_changed()

    @Slot()
    def _on_name_changed(self) -> None:
        step = self.view.run_step
        name = step.name.text().strip()
        problem = ""
        if name:
            if "/" in name or "\\" in name or name.startswith("."):
                problem = "A name cannot contain / or \\ or start with a dot."
            elif name.removesuffix(".gguf") in {e.name for e in self._entries} or any(
                e.path.name == f"{name.removesuffix('.gguf')}.gguf" for e in self._entries
            ):
                problem = f"A model named {name} is already in your library: choose another name."
        step.name_hint.setText(problem or "Leave empty to use the suggested name.")
        step.start_button.setEnabled(not problem and not self.running)

    def request(self) -> Any:
        """The `OptimizeRequest` the current choices describe."""
        from slmdesk.optimize.pipeline import OptimizeRequest

        facts = self.facts
        option = self.selected_option()
        if facts is None or option is None:
            raise SlmdeskError("Choose a model and a type first.")
        mode = self.prune_mode()
        name = self.view.run_step.name.text().strip() or None
        imatrix, embedding, output = self.view.type_step.plan.choices()
        return OptimizeRequest(
            source=facts.info.path,
            quant=option.name,
            prune_layers=self.removed_blocks() if mode == MODE_MANUAL else None,
            prune_count=self.view.prune_step.count.value() if mode == MODE_AUTO else None,
            calibration=self.calibration,
            name=name,
            n_threads=self._threads(),
            evaluate=True,
            compare=self.view.run_step.compare.isChecked(),
            importance=self.importance if mode == MODE_AUTO else None,
            imatrix=imatrix,
            embedding_type=embedding,
            output_type=output,
        )

    @staticmethod
    def _threads() -> int:
        return int(app_settings.get("threads") or 0) or max(1, os.cpu_count() or 2)

    @Slot()
    def start(self) -> None:
        """Run the whole pipeline on the optimize thread."""
        if self.running:
            return
        try:
            request = self.request()
        except SlmdeskError as exc:
            self.view.show_error(str(exc))
            return
        facts = self.facts
        assert facts is not None
        quantized_source = facts.info.quantization.upper() not in {"F32", "F16", "BF16"}
        pruning = bool(request.prune_layers or request.prune_count)
        self._planned = (
            (["reference"] if quantized_source else [])
            + (["planning"] if request.prune_count else [])
            + (["importance"] if getattr(self.selected_option(), "uses_imatrix", False) else [])
            + ["quantizing", "evaluating", "speed"]
            + (["compare"] if pruning and request.compare else [])
        )

        def run(progress: Any, cancel: Any) -> Any:
            from slmdesk.optimize.pipeline import optimize

            return optimize(request, progress, cancel)

        self._job = "optimize"
        self.result = None
        self._evaluated = False
        step = self.view.run_step
        self.view.show_error("")
        step.progress_card.setVisible(True)
        step.start_button.setVisible(False)
        step.cancel_button.setVisible(True)
        step.cancel_button.setEnabled(True)
        step.name.setEnabled(False)
        step.compare.setEnabled(False)
        step.stage.setText("Starting…")
        step.detail.setText("")
        step.progress.setRange(0, 0)
        self._begin_progress()
        self._render_stages()
        self._start_job(run)
        self._update_nav()

    @property
    def running(self) -> bool:
        """Whether a measurement or an optimize run is in progress (False once it reports)."""
        return self.job is not None and self.job.running

    def _start_job(
        self, run: Callable[[Callable[[Progress], None], Callable[[], bool]], Any]
    ) -> None:
        """Run ``run(progress, cancel)`` on the dedicated ``slmdesk-optimize`` thread."""

        def work(context: JobContext) -> Any:
            stage = ""

            def report(p: Progress) -> None:
                nonlocal stage
                # a measured block is never merged away by the throttle: its bar needs it
                urgent = p.stage != stage or p.done >= p.total or p.kld_mean is not None
                context.report(p, urgent=urgent)
                stage = p.stage

            return run(report, context.cancelled)

        job = self.tasks.start(work, "optimize", dedicated=True)
        job.progress.connect(self._on_progress)
        job.succeeded.connect(self._on_job_finished)
        job.failed.connect(self._on_job_failed)
        job.cancelled.connect(
            lambda: self._on_job_failed(OptimizeCancelled("Cancelled; partial output removed."))
        )
        self.job = job

    @Slot()
    def _cancel_job(self) -> None:
        if self.job is not None:
            self.job.cancel()

    @Slot()
    def cancel(self) -> None:
        """Cancel the running job (partial files are removed by the core)."""
        if not self.running:
            return
        self._cancel_job()
        self.view.run_step.cancel_button.setEnabled(False)
        self.view.run_step.stage.setText("Cancelling…")

    def _begin_progress(self) -> None:
        self._started = time.monotonic()
        self._stage_key = ""
        self._stage_mark = ("", 0.0, 0)
        self._stages_seen = []
        self._timer.start()
        self._on_tick()

    @Slot()
    def _on_tick(self) -> None:
        elapsed = f"Elapsed {human_duration(time.monotonic() - self._started)}"
        if self._job == "optimize":
            self.view.run_step.elapsed.setText(elapsed)
        elif self._job == "measure":
            self.view.prune_step.measure_status.setText(
                f"{self.view.prune_step.measure_status.text().split(' · Elapsed')[0]} · {elapsed}"
            )

    def _stage_key_for(self, p: Progress) -> str:
        if p.stage == "evaluating" and p.done >= p.total and not self._evaluated:
            self._evaluated = True
            return "evaluating"
        if self._evaluated and p.stage in {"preview", "quantizing", "evaluating"}:
            return "compare"
        return p.stage

    @Slot(object)
    def _on_progress(self, p: Progress) -> None:
        if self._closed:
            return
        self.job_progress.emit(p)
        key = self._stage_key_for(p)
        if key not in self._stages_seen:
            self._stages_seen.append(key)
        self._stage_key = key
        words = STAGE_WORDS.get(key, PREVIEW_WORDS if key == "preview" else key.capitalize())
        if self._stage_mark[0] != p.stage:
            self._stage_mark = (p.stage, time.monotonic(), p.done)
        if p.stage == "planning" and p.detail:
            detail = f"trying without {p.detail} ({p.done} of {p.total}){self._eta(p)}"
        elif p.fraction is not None:
            detail = f"{percent(p.fraction)} · {p.detail} (tensor {p.done} of {p.total} done)"
        elif p.stage in {"quantizing", "reference"} and p.total > 1:
            detail = f"tensor {p.done} of {p.total}: {p.detail}"
        else:
            detail = p.detail
        upcoming = self._next_stage(key) if p.total > 1 and p.done >= p.total else None
        if upcoming is not None and self._job == "optimize":
            # the next stage starts with quiet set-up work: say so instead of a full bar
            key, words, detail = upcoming, STAGE_WORDS[upcoming], "starting…"
            self._stage_key = key
            p = Progress(key, 0, 0)
        if self._job == "measure":
            step = self.view.prune_step
            bar = step.measure_progress
            step.measure_status.setText(f"{words}: {detail}" if detail else words)
            self._show_measured(p)
        else:
            step_run = self.view.run_step
            bar = step_run.progress
            step_run.stage.setText(words)
            step_run.detail.setText(detail)
            self._render_stages()
        if p.fraction is not None:
            bar.setRange(0, 1000)  # the bar's own text shows the same percentage
            bar.setValue(round(p.fraction * 1000))
        elif p.total > 1 and p.done < p.total:
            bar.setRange(0, p.total)
            bar.setValue(p.done)
        elif p.total > 1:
            bar.setRange(0, p.total)
            bar.setValue(p.total)
        else:
            bar.setRange(0, 0)  # a busy bar: this stage reports no counts

    def _show_measured(self, p: Progress) -> None:
        """Draw a block's bar as soon as its importance is measured."""
        if len(p.blocks) != 1 or p.kld_mean is None or self.facts is None:
            return
        block = p.blocks[0]
        if 0 <= block < len(self._measured):
            self._measured[block] = p.kld_mean
            self.view.prune_step.chart.set_blocks(
                len(self._measured), self._measured, self.facts.global_flags
            )

    def _eta(self, p: Progress) -> str:
        """``, about 3 min left`` once a stage has timed a couple of its steps."""
        stage, started, first = self._stage_mark
        if stage != p.stage or p.done - first < 2 or p.total <= p.done:
            return ""
        spent = time.monotonic() - started
        left = spent / (p.done - first) * (p.total - p.done)
        return f", about {human_duration(left)} left" if left >= 5 else ""

    def _next_stage(self, key: str) -> str | None:
        """The planned stage after ``key`` (None for the last one or the comparison)."""
        if key == "compare" or key not in self._planned:
            return None
        index = self._planned.index(key)
        return self._planned[index + 1] if index + 1 < len(self._planned) else None

    def _render_stages(self) -> None:
        lines = []
        current = self._stage_key
        seen = self._stages_seen
        for key in self._planned:
            if key == current:
                mark, style = "●", "font-weight:600"
            elif key in seen or (
                current in self._planned and self._planned.index(key) < self._planned.index(current)
            ):
                mark, style = "✓", "color:#2e9d5b"
            else:
                mark, style = "○", "color:#9a9ea8"
            lines.append(f"<span style='{style}'>{mark} {STAGE_WORDS[key]}</span>")
        self.view.run_step.stages.setText("<br>".join(lines))

    @Slot(object)
    def _on_job_finished(self, value: Any) -> None:
        if self._closed:
            return
        job, self._job = self._job, ""
        self._timer.stop()
        if job == "measure":
            self._end_measure()
            self.importance = list(value.importance)
            if self.facts is not None:
                self.view.prune_step.chart.set_blocks(
                    len(self.importance), self.importance, self.facts.global_flags
                )
            self.view.prune_step.measure_status.setText(
                f"Measured in {human_duration(value.seconds)}. Hover a bar for its figure."
            )
            self._on_prune_changed()
            return
        self.result = value
        self._end_run()
        self._show_report(value)
        self.go(STEP_REPORT)

    @Slot(object)
    def _on_job_failed(self, exc: BaseException) -> None:
        if self._closed:
            return
        job, self._job = self._job, ""
        self._timer.stop()
        if job == "measure":
            self._end_measure()
            if self.facts is not None:  # an unfinished measurement is not a measurement
                self.view.prune_step.chart.set_blocks(
                    self.facts.info.block_count, self.importance, self.facts.global_flags
                )
            if isinstance(exc, OptimizeCancelled):
                self.view.prune_step.measure_status.setText("Measurement cancelled.")
            else:
                self.view.prune_step.measure_status.setText("")
                self._show_failure(exc)
            self._update_nav()
            return
        self._end_run()
        step = self.view.run_step
        step.progress_card.setVisible(True)
        step.progress.setRange(0, 1)
        step.progress.setValue(0)
        if isinstance(exc, OptimizeCancelled):
            step.stage.setText("Cancelled")
            step.detail.setText("Nothing was added to your library; partial files were removed.")
        else:
            step.stage.setText("Not finished")
            step.detail.setText("")
            self._show_failure(exc)

    def _end_measure(self) -> None:
        step = self.view.prune_step
        step.measure_button.setVisible(True)
        step.measure_button.setText("Measure again")
        step.measure_cancel.setVisible(False)
        step.measure_progress.setVisible(False)
        self._update_nav()

    def _end_run(self) -> None:
        step = self.view.run_step
        step.start_button.setVisible(True)
        step.cancel_button.setVisible(False)
        step.name.setEnabled(True)
        step.compare.setEnabled(True)
        self._on_name_changed()
        self._update_nav()

    def _show_failure(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, SlmdeskError) else f"Unexpected problem: {exc}"
        self.view.show_error(message)

    @property
    def busy(self) -> bool:
        """Whether a measurement or an optimize run is in progress."""
        return self.running or bool(self._job)

    # -- step 5: the report ----------------------------------------------------------------------

    def _show_report(self, result: Any) -> None:
        facts = self.facts
        fill_report(
            self.view.report_step,
            result,
            facts.entry.name if facts else Path(result.report["source"]).stem,
            facts.info.block_count if facts else None,
        )
        report = self.view.report_step
        self.recommendation = recommended_plan(result.report)
        for button in (report.chat_button, report.compare_button, report.discard_button):
            button.setEnabled(True)
        report.discard_button.setToolTip(
            f"Remove {result.name} from your library and delete its file"
        )
        rec = self.recommendation
        report.recommended_button.setEnabled(rec is not None)
        report.recommended_button.setToolTip(
            f"{rec.label}: {rec.reason}."
            if rec is not None
            else "Nothing better to suggest for this model: this result is the recommended one."
        )

    @Slot()
    def _on_discard(self) -> None:
        result = self.result
        if result is None or (self._discard_job is not None and self._discard_job.running):
            return
        if not dialogs.confirm(
            self.view,
            "Discard the new model",
            f"Remove {result.name} from your library and delete {Path(result.path).name}? "
            "This cannot be undone.",
            "Discard",
        ):
            return
        self.ab.shutdown()  # the side-by-side view may still hold the file open
        self.view.report_step.discard_button.setEnabled(False)
        name = result.name

        def done(_removed: Any) -> None:
            report = self.view.report_step
            report.title.setText(f"{name} was discarded")
            report.subtitle.setText("It was removed from your library and its file deleted.")
            for button in (report.chat_button, report.compare_button, report.discard_button):
                button.setEnabled(False)

        def failed(exc: BaseException) -> None:
            self.view.report_step.discard_button.setEnabled(True)
            self._show_failure(exc)

        self._discard_job = self.tasks.run(
            lambda: self.library.remove(name, delete_file=True), done, failed, "optimize-discard"
        )

    @Slot()
    def _on_build_recommended(self) -> None:
        """Start the recommended plan: its type, every block kept, the suggested name."""
        rec = self.recommendation
        if rec is None or self.running or self.facts is None:
            return
        if not self.select_type(rec.quant):
            self.view.show_error(f"{rec.quant} is not available for {self.facts.entry.name}.")
            return
        self.set_prune_mode(MODE_NONE)
        self.ab.shutdown()
        self.view.run_step.name.clear()
        self.go(STEP_RUN)
        self.start()

    @Slot()
    def _on_chat(self) -> None:
        if self.result is not None:
            self.chat_requested.emit(self.result.name)

    @Slot()
    def _on_compare(self) -> None:
        if self.result is None or self.facts is None:
            return
        self.ab.open(
            self.facts.info.path, Path(self.result.path), (self.facts.entry.name, self.result.name)
        )
        self.go(STEP_AB)

    @Slot()
    def _on_again(self) -> None:
        self.ab.shutdown()
        self.result = None
        self.view.run_step.name.clear()
        self.view.run_step.progress_card.setVisible(False)
        self._preselect_type()
        self.go(STEP_MODEL)

    def _preselect_type(self) -> None:
        """Keep the last type for the next pass only if it still shrinks this source."""
        option = self.selected_option()
        wanted = preselected_type(self.options, option.name if option else None, DEFAULT_TYPE)
        if wanted is None:
            self.view.type_step.table.clearSelection()
        elif option is None or wanted != option.name:
            self.select_type(wanted)

    # -- shutdown --------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Cancel the running job (the core kills its child) and stop the A/B threads."""
        self._closed = True
        self._timer.stop()
        for job in (self._preview_job, self.job):
            if job is not None:
                job.close()
        self.ab.request_stop()

    def wait_stopped(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the job's thread (its child killed, partial
        output removed) and the A/B threads."""
        deadline = Deadline(timeout)
        stopped = self.job is None or self.job.wait(deadline.remaining())
        return self.ab.wait_stopped(deadline.remaining()) and stopped

    def shutdown(self, budget: float = SHUTDOWN_BUDGET) -> bool:
        """`request_stop` and `wait_stopped` within ``budget`` seconds. Idempotent."""
        return not stop_all([self], Deadline(budget))
