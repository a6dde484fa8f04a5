"""Layout of the Optimize page's "Make it fit" mode: a model, a target, Start/Cancel, progress
per candidate, the measured front as a chart, and the report card. Widgets only;
`FitController` fills them and reacts to them."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from slmdesk.ui.accessibility import named
from slmdesk.ui.optimize.front_chart import FrontChart

TARGET_SIZE, TARGET_MEMORY, TARGET_KLD = range(3)
FRONT_COLUMNS = ("Candidate", "Size", "KLD", "Top-1", "Outcome")


def language_sets() -> list[tuple[str, str]]:
    """(name, description) of the language sets a vocabulary can be trimmed to."""
    from slmdesk.optimize.vocab.charsets import LANGUAGE_SETS

    return [(s.name, s.description) for s in LANGUAGE_SETS.values()]


class FitView(QWidget):
    """Say what must fit; the app measures candidates and builds the best."""

    def __init__(self) -> None:
        super().__init__()
        heading = QLabel("Make it fit")
        heading.setProperty("role", "heading")
        intro = QLabel(
            "Give a target; slmdesk predicts the size of each type, importance-matrix and "
            "embedding choice, builds and measures only those that can meet it, and keeps the best."
        )
        intro.setWordWrap(True)
        intro.setProperty("role", "muted")

        self.model = QComboBox()
        named(self.model, "Model to fit", "The library model to make smaller")
        model_label = QLabel("&Model")
        model_label.setBuddy(self.model)

        self.target_group = QButtonGroup(self)
        self.size_radio = QRadioButton("File size at most")
        self.memory_radio = QRadioButton("What this computer's memory runs comfortably")
        self.kld_radio = QRadioButton("Smallest with KL divergence at most")
        for i, radio in enumerate((self.size_radio, self.memory_radio, self.kld_radio)):
            self.target_group.addButton(radio, i)
        self.size_radio.setChecked(True)
        named(self.size_radio, "Target: file size at most", "Then give the size beside it")
        named(self.memory_radio, "Target: this computer's memory", "What runs here comfortably")
        named(self.kld_radio, "Target: smallest with KL divergence at most", "Then give the bound")
        self.size_edit = QLineEdit("150MB")
        named(self.size_edit, "Size target", "A file size such as 150MB or 1.5GB")
        self.kld_edit = QLineEdit("0.1")
        named(self.kld_edit, "KL divergence target", "A bound such as 0.1: lower is closer")
        targets = QGridLayout()
        targets.addWidget(model_label, 0, 0)
        targets.addWidget(self.model, 0, 1)
        targets.addWidget(self.size_radio, 1, 0)
        targets.addWidget(self.size_edit, 1, 1)
        targets.addWidget(self.memory_radio, 2, 0, 1, 2)
        targets.addWidget(self.kld_radio, 3, 0)
        targets.addWidget(self.kld_edit, 3, 1)
        self.languages = QComboBox()
        self.languages.addItem("All languages (keep the whole vocabulary)", "")
        for name, description in language_sets():
            self.languages.addItem(f"Also try only: {description}", name)
        named(
            self.languages,
            "Languages to keep",
            "Trimming the vocabulary to some languages makes the model smaller; text in other "
            "scripts still works, spelled out byte by byte",
        )
        languages_label = QLabel("&Languages")
        languages_label.setBuddy(self.languages)
        targets.addWidget(languages_label, 4, 0)
        targets.addWidget(self.languages, 4, 1)
        targets.setColumnStretch(1, 1)

        self.start_button = QPushButton("Start")
        self.start_button.setProperty("role", "primary")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        named(self.start_button, "Start making it fit", "Search, build and measure candidates")
        named(self.cancel_button, "Cancel making it fit", "Stop; nothing partial is kept")
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        named(self.progress, "Progress of the current candidate")

        self.chart = FrontChart()
        self.table = QTableWidget(0, len(FRONT_COLUMNS))
        self.table.setHorizontalHeaderLabels(FRONT_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        named(self.table, "Measured candidates", "Every candidate built, with size and quality")

        self.reason = QLabel("")
        self.reason.setWordWrap(True)
        self.reason.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reason.setProperty("role", "card")
        self.chat_button = QPushButton("Chat with the result")
        self.chat_button.setVisible(False)
        named(self.chat_button, "Chat with the result", "Open the winner in Chat")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 0, 0)
        layout.addWidget(heading)
        layout.addWidget(intro)
        layout.addLayout(targets)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.progress)
        layout.addWidget(self.chart, 2)
        layout.addWidget(self.reason)
        layout.addWidget(self.chat_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.table, 1)

    def language_set(self) -> str:
        """The language set to try besides the whole vocabulary ("" for none)."""
        return str(self.languages.currentData() or "")

    def target_kind(self) -> int:
        """TARGET_SIZE, TARGET_MEMORY or TARGET_KLD."""
        return self.target_group.checkedId()

    def set_running(self, running: bool) -> None:
        """Start and the inputs while idle; Cancel while running."""
        for widget in (self.start_button, self.model, self.size_edit, self.kld_edit):
            widget.setEnabled(not running)
        for radio in self.target_group.buttons():
            radio.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def main_field(self) -> QWidget:
        """Where the keyboard focus goes when the mode opens."""
        return self.model
