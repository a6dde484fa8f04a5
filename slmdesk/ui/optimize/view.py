"""Layout of the Optimize wizard: model -> type -> pruning -> run -> report -> side by side.

Widgets only; `OptimizeController` fills them and reacts to them.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QStackedWidget,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from slmdesk.ui.accessibility import named
from slmdesk.ui.optimize.ab_chat import ABChatView
from slmdesk.ui.optimize.charts import ImportanceChart, ReportChart
from slmdesk.ui.optimize.fit_view import FitView
from slmdesk.ui.optimize.plan_options import PlanOptions
from slmdesk.ui.theme import icon

STEP_NAMES = ("Model", "Type", "Pruning", "Run", "Report", "Compare")
MODEL_COLUMNS = ("Model", "Type", "Size", "Blocks", "Architecture")
TYPE_COLUMNS = ("Type", "Predicted size", "Memory", "Expected quality", "Bits/weight", "About")


def _muted(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setProperty("role", "muted")
    label.setWordWrap(True)
    return label


def _heading(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 1.15)
    font.setBold(True)
    label.setFont(font)
    return label


def _table(columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.setShowGrid(False)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move inside it
    header = table.horizontalHeader()
    for column in range(len(columns)):
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(len(columns) - 1, QHeaderView.ResizeMode.Stretch)
    return table


class ModelStep(QWidget):
    """Step 1: which library model to shrink."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(_heading("Which model do you want to make smaller?"))
        layout.addWidget(
            _muted(
                "The original stays as it is: a new model is added to your library, with a "
                "report of what the change cost in quality."
            )
        )
        self.table = _table(MODEL_COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(
            len(MODEL_COLUMNS) - 1, QHeaderView.ResizeMode.ResizeToContents
        )
        self.empty = _muted("No models yet: add one in Library or Discover first.")
        named(self.table, "Model to make smaller")
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty)


class TypeStep(QWidget):
    """Step 2: the quantization type, with predicted size, memory verdict and expected loss."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(_heading("Pick a type"))
        self.source = _muted("")
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(
            "background: #fff4d6; color: #5c4100; border-radius: 6px; padding: 6px 10px;"
        )
        self.warning.setVisible(False)
        self.status = _muted("")
        self.table = _table(TYPE_COLUMNS)
        named(self.table, "Quantization type", "Predicted size, memory and expected quality")
        self.note = _muted(
            "Expected quality is llama.cpp's published perplexity increase for each type "
            "(measured on Llama-3-8B): a relative guide. Small models usually lose more per bit, "
            "which is why slmdesk measures the result too."
        )
        self.plan = PlanOptions()
        layout.addWidget(self.source)
        layout.addWidget(self.warning)
        layout.addWidget(self.plan)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)


class PruneStep(QWidget):
    """Step 3: remove blocks (none, chosen by measurement, or by hand on the importance chart)."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(_heading("Remove blocks?"))
        layout.addWidget(
            _muted(
                "Removing whole transformer blocks makes a model smaller and faster on top of "
                "quantization, but small models have little depth to spare: each block costs "
                "something, and which blocks go matters."
            )
        )
        self.none_radio = QRadioButton("Keep every block (quantize only)")
        self.auto_radio = QRadioButton("Remove")
        self.manual_radio = QRadioButton("Choose the blocks myself on the chart below")
        self.mode_group = QButtonGroup(self)
        for i, radio in enumerate((self.none_radio, self.auto_radio, self.manual_radio)):
            self.mode_group.addButton(radio, i)
        self.none_radio.setChecked(True)
        named(self.none_radio, "Keep every block", "Quantize only")
        named(self.auto_radio, "Remove blocks chosen by measurement")
        named(self.manual_radio, "Choose the blocks myself on the chart")
        self.count = QSpinBox()
        self.count.setRange(1, 1)
        self.count.setSuffix(" block(s)")
        named(self.count, "Number of blocks to remove")
        auto_row = QHBoxLayout()
        auto_row.addWidget(self.auto_radio)
        auto_row.addWidget(self.count)
        auto_row.addWidget(QLabel("chosen by measurement"))
        auto_row.addStretch(1)
        layout.addWidget(self.none_radio)
        layout.addLayout(auto_row)
        layout.addWidget(self.manual_radio)
        self.unavailable = QLabel("")
        self.unavailable.setWordWrap(True)
        self.unavailable.setVisible(False)
        self.unavailable.setStyleSheet(
            "background: #fde8e8; color: #6b1a1a; border-radius: 6px; padding: 6px 10px;"
        )
        layout.addWidget(self.unavailable)

        card = QFrame()
        card.setProperty("role", "card")
        card_layout = QVBoxLayout(card)
        chart_title = QHBoxLayout()
        chart_title.addWidget(_heading("Block importance"))
        chart_title.addStretch(1)
        self.measure_button = QPushButton("Measure importance")
        self.measure_cancel = QPushButton("Cancel")
        self.measure_cancel.setVisible(False)
        named(self.measure_button, "Measure block importance")
        named(self.measure_cancel, "Cancel the measurement")
        chart_title.addWidget(self.measure_button)
        chart_title.addWidget(self.measure_cancel)
        card_layout.addLayout(chart_title)
        self.chart_help = _muted(
            "Each bar is how much the model's predictions change (KL divergence on a calibration "
            "text) when that block alone is removed: short bars are the cheapest to remove."
        )
        card_layout.addWidget(self.chart_help)
        self.measure_progress = QProgressBar()
        self.measure_progress.setVisible(False)
        named(self.measure_progress, "Measuring importance")
        self.measure_status = _muted("")
        card_layout.addWidget(self.measure_progress)
        card_layout.addWidget(self.measure_status)
        self.chart = ImportanceChart()
        card_layout.addWidget(self.chart, 1)
        self.arch_note = _muted("")
        card_layout.addWidget(self.arch_note)
        calibration_row = QHBoxLayout()
        self.calibration_label = _muted("Calibration text: the shipped prose-and-code sample")
        self.calibration_button = QPushButton("Use my own text…")
        self.calibration_reset = QPushButton("Use the shipped text")
        named(self.calibration_button, "Use my own calibration text")
        named(self.calibration_reset, "Use the shipped calibration text")
        calibration_row.addWidget(self.calibration_label, 1)
        calibration_row.addWidget(self.calibration_button)
        calibration_row.addWidget(self.calibration_reset)
        card_layout.addLayout(calibration_row)
        layout.addWidget(card, 1)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)


class RunStep(QWidget):
    """Step 4: what will happen, the new model's name, then progress with Cancel."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(_heading("Ready to optimize"))
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.summary)
        name_row = QHBoxLayout()
        name_row.addWidget(QLabel("Name of the new model:"))
        self.name = QLineEdit()
        self.name.setClearButtonEnabled(True)
        named(self.name, "Name of the new model")
        name_row.addWidget(self.name, 1)
        layout.addLayout(name_row)
        self.name_hint = _muted("")
        layout.addWidget(self.name_hint)
        self.compare = QCheckBox(
            "When pruning, also measure plain quantization of about the same size and "
            "recommend the better one (takes longer)"
        )
        self.compare.setChecked(True)
        named(self.compare, "Also measure plain quantization", self.compare.text())
        layout.addWidget(self.compare)
        buttons = QHBoxLayout()
        self.start_button = QPushButton(icon("optimize"), "Start")
        self.start_button.setProperty("role", "primary")
        self.cancel_button = QPushButton(icon("stop"), "Cancel")
        self.cancel_button.setVisible(False)
        named(self.start_button, "Start optimizing")
        named(self.cancel_button, "Cancel optimizing")
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        self.progress_card = QFrame()
        self.progress_card.setProperty("role", "card")
        progress_layout = QVBoxLayout(self.progress_card)
        self.stage = _heading("")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        named(self.progress, "Optimize progress")
        self.detail = _muted("")
        self.elapsed = _muted("")
        self.stages = QLabel("")
        self.stages.setTextFormat(Qt.TextFormat.RichText)
        progress_layout.addWidget(self.stage)
        progress_layout.addWidget(self.progress)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.detail, 1)
        progress_row.addWidget(self.elapsed)
        progress_layout.addLayout(progress_row)
        progress_layout.addWidget(self.stages)
        self.progress_card.setVisible(False)
        layout.addWidget(self.progress_card)
        layout.addStretch(1)


class MetricTile(QFrame):
    """One figure of the report: a caption, a big value and a line of context."""

    def __init__(self, caption: str) -> None:
        super().__init__()
        self.setProperty("role", "card")
        layout = QVBoxLayout(self)
        layout.setSpacing(2)
        self.caption = _muted(caption)
        self.value = QLabel("—")
        font = self.value.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.value.setFont(font)
        self.context = _muted("")
        layout.addWidget(self.caption)
        layout.addWidget(self.value)
        layout.addWidget(self.context)

    def set(self, value: str, context: str = "") -> None:
        """Show a figure."""
        self.value.setText(value)
        self.context.setText(context)


class ReportStep(QScrollArea):
    """Step 5: the report card of the new model."""

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        named(self, "Report", "The new model's figures; arrow keys scroll")
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 8, 0)
        self.title = _heading("")
        self.subtitle = _muted("")
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        grid = QGridLayout()
        self.size_tile = MetricTile("Size on disk")
        self.kld_tile = MetricTile("KL divergence vs the original (lower is better)")
        self.top1_tile = MetricTile("Same top token as the original")
        self.ppl_tile = MetricTile("Perplexity (lower is better)")
        self.speed_tile = MetricTile("Generation speed")
        self.blocks_tile = MetricTile("Blocks")
        tiles = (
            self.size_tile,
            self.kld_tile,
            self.top1_tile,
            self.ppl_tile,
            self.speed_tile,
            self.blocks_tile,
        )
        for i, tile in enumerate(tiles):
            grid.addWidget(tile, i // 3, i % 3)
        layout.addLayout(grid)
        self.recommendation = QLabel("")
        self.recommendation.setWordWrap(True)
        self.recommendation.setStyleSheet(
            "background: #e6f4ea; color: #14452a; border-radius: 6px; padding: 8px 10px;"
        )
        self.recommendation.setVisible(False)
        layout.addWidget(self.recommendation)
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet(
            "background: #fff4d6; color: #5c4100; border-radius: 6px; padding: 6px 10px;"
        )
        self.warnings.setVisible(False)
        layout.addWidget(self.warnings)
        self.chart = ReportChart()
        layout.addWidget(self.chart)
        self.footnote = _muted("")
        layout.addWidget(self.footnote)
        buttons = QHBoxLayout()
        self.chat_button = QPushButton(icon("chat"), "Chat with it")
        self.chat_button.setProperty("role", "primary")
        self.compare_button = QPushButton("Compare side by side")
        self.again_button = QPushButton(icon("optimize"), "Optimize another")
        named(self.chat_button, "Chat with the new model")
        named(self.compare_button, "Compare side by side with the original")
        named(self.again_button, "Optimize another model")
        # a result not worth keeping: remove it, or make what the report recommends instead
        self.discard_button = QPushButton("Discard")
        self.recommended_button = QPushButton("Build the recommended instead")
        named(self.discard_button, "Discard the new model", "Remove it from the library and disk")
        named(self.recommended_button, "Build the recommended model instead")
        buttons.addWidget(self.chat_button)
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.discard_button)
        buttons.addWidget(self.recommended_button)
        buttons.addStretch(1)
        buttons.addWidget(self.again_button)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self.setWidget(body)


class OptimizeView(QWidget):
    """The whole page: a step indicator, the current step, an error banner and Back/Next."""

    def __init__(self) -> None:
        super().__init__()
        title = QLabel("Optimize")
        title.setProperty("role", "title")
        self.step_labels: list[QLabel] = []
        self._arrows: list[QLabel] = []
        steps_row = QHBoxLayout()
        steps_row.addWidget(title)
        steps_row.addSpacing(24)
        for i, name in enumerate(STEP_NAMES):
            label = QLabel(f"{i + 1}  {name}")
            self.step_labels.append(label)
            steps_row.addWidget(label)
            if i < len(STEP_NAMES) - 1:
                arrow = _muted("›")
                arrow.setWordWrap(False)
                steps_row.addWidget(arrow)
                self._arrows.append(arrow)
        steps_row.addStretch(1)
        self.fit_button = QPushButton("Make it fit")
        self.fit_button.setCheckable(True)
        named(self.fit_button, "Make it fit", "Search for the best model that meets a target")
        steps_row.addWidget(self.fit_button)

        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.setStyleSheet(
            "background: #fde8e8; color: #6b1a1a; border-radius: 6px; padding: 8px 10px;"
        )
        self.error.setVisible(False)

        self.model_step = ModelStep()
        self.type_step = TypeStep()
        self.prune_step = PruneStep()
        self.run_step = RunStep()
        self.report_step = ReportStep()
        self.ab_view = ABChatView()
        self.stack = QStackedWidget()
        for page in (
            self.model_step,
            self.type_step,
            self.prune_step,
            self.run_step,
            self.report_step,
            self.ab_view,
        ):
            self.stack.addWidget(page)
        self.fit_view = FitView()
        self.stack.addWidget(self.fit_view)
        self._step = 0
        self.fit_button.toggled.connect(self.show_fit)

        self.back_button = QPushButton("Back")
        self.next_button = QPushButton("Next")
        self.next_button.setProperty("role", "primary")
        named(self.back_button, "Back", "The previous step")
        named(self.next_button, "Next", "The next step")
        nav = QHBoxLayout()
        nav.addStretch(1)
        nav.addWidget(self.back_button)
        nav.addWidget(self.next_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 12)
        layout.addLayout(steps_row)
        layout.addWidget(self.error)
        layout.addWidget(self.stack, 1)
        layout.addLayout(nav)
        self.show_step(0)

    def main_field(self) -> QWidget | None:
        """Where the keyboard focus goes when the page opens: the current step's main field."""
        step = self.stack.currentWidget()
        fields: dict[QWidget, QWidget | None] = {
            self.fit_view: self.fit_view.main_field(),
            self.model_step: self.model_step.table,
            self.type_step: self.type_step.table,
            self.prune_step: self.prune_step.mode_group.checkedButton(),
            self.run_step: self.run_step.name,
            self.report_step: self.report_step.chat_button,
            self.ab_view: self.ab_view.prompt,
        }
        return fields.get(step)

    def show_step(self, index: int) -> None:
        """Switch to step ``index`` and highlight it in the indicator."""
        self._step = index
        if self.fit_button.isChecked():
            return  # shown when the "Make it fit" mode is left
        self.stack.setCurrentIndex(index)
        for i, label in enumerate(self.step_labels):
            # bold through the style sheet (ui/theme.py): a font set on the label would be
            # replaced by the one the style sheet saved when it first polished the label
            label.setProperty("role", "step" if i == index else "muted")
            label.style().unpolish(label)
            label.style().polish(label)

    def show_fit(self, on: bool) -> None:
        """Show the "Make it fit" mode instead of the wizard (the wizard keeps its step)."""
        for widget in (*self.step_labels, *self._arrows, self.back_button, self.next_button):
            widget.setVisible(not on)
        self.stack.setCurrentWidget(self.fit_view if on else self.stack.widget(self._step))

    def show_error(self, message: str) -> None:
        """Show an error in the page (empty hides it)."""
        self.error.setText(message)
        self.error.setVisible(bool(message))
