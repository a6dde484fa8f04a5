"""First run: an empty library gets a welcome, never a blank window.

Offers the recommended starter model from the Hub (with its real size and fit verdict, read from
the Hub in the background) and the import of a GGUF file the user already has.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from slmdesk.common.errors import SlmdeskError, user_message
from slmdesk.hub import listing as hub
from slmdesk.ui.accessibility import named
from slmdesk.ui.format import human_size
from slmdesk.ui.runtime.tasks import TaskRunner
from slmdesk.ui.theme import icon, verdict_style

STARTER_REPO = "unsloth/gemma-3-270m-it-GGUF"
STARTER_QUANT = "Q4_K_M"
STARTER_TITLE = "Gemma 3 270M (instruction-tuned)"


class WelcomeView(QWidget):
    """The welcome screen's widgets."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(48, 48, 48, 48)
        title = QLabel("Welcome to slmdesk")
        title.setProperty("role", "title")
        intro = QLabel(
            "Chat with small language models on this computer, offline. To begin, add a model: "
            "download a small recommended one, or import a .gguf file you already have."
        )
        intro.setWordWrap(True)
        card = QFrame()
        card.setProperty("role", "card")
        card_layout = QVBoxLayout(card)
        card_layout.setContentsMargins(16, 12, 16, 12)
        self.starter_title = QLabel(f"<b>Recommended: {STARTER_TITLE}</b>")
        self.starter_detail = QLabel(f"{STARTER_REPO} · {STARTER_QUANT} · checking size…")
        self.starter_detail.setProperty("role", "muted")
        self.starter_detail.setWordWrap(True)
        self.verdict = QLabel("")
        self.verdict.setVisible(False)
        row = QHBoxLayout()
        row.addWidget(self.starter_detail, 1)
        row.addWidget(self.verdict)
        self.download_button = QPushButton(icon("download"), "Download")
        self.download_button.setProperty("role", "primary")
        self.download_button.setEnabled(False)
        named(self.download_button, f"Download {STARTER_TITLE}")
        card_layout.addWidget(self.starter_title)
        card_layout.addLayout(row)
        card_layout.addWidget(self.download_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.import_button = QPushButton(icon("import"), "Import a GGUF file…")
        self.browse_button = QPushButton(icon("discover"), "Browse models on the Hub")
        named(self.import_button, "Import a GGUF file")
        named(self.browse_button, "Browse models on the Hub")
        buttons = QHBoxLayout()
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.browse_button)
        buttons.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addSpacing(12)
        layout.addWidget(card)
        layout.addLayout(buttons)
        layout.addStretch(1)

    def main_field(self) -> QWidget:
        """Where the keyboard focus goes: the starter's Download once it can be pressed."""
        return self.download_button if self.download_button.isEnabled() else self.import_button


class WelcomeController(QObject):
    """Reads the starter's listing from the Hub; the buttons ask other pages to act."""

    download_requested = Signal(object)  # hub.RemoteModel
    import_requested = Signal()
    browse_requested = Signal()

    def __init__(self, view: WelcomeView, tasks: TaskRunner) -> None:
        super().__init__()
        self.view = view
        self.tasks = tasks
        self.starter: hub.RemoteModel | None = None
        self._checked = False
        view.download_button.clicked.connect(self._on_download)
        view.import_button.clicked.connect(self.import_requested)
        view.browse_button.clicked.connect(self.browse_requested)

    def check_starter(self) -> None:
        """Look up the starter file's size and verdict (once, in the background)."""
        if self._checked:
            return
        self._checked = True

        def job() -> hub.RemoteModel:
            repo = hub.list_repo_models(STARTER_REPO, with_card=False, read_header=True)
            try:
                return hub.choose_model(repo, quant=STARTER_QUANT)
            except SlmdeskError:
                return hub.choose_model(repo)

        self.tasks.run(job, self._on_starter, self._on_starter_error, name="starter-listing")

    def _on_starter(self, model: hub.RemoteModel) -> None:
        self.starter = model
        self.view.starter_detail.setText(
            f"{STARTER_REPO} · {model.name} · {human_size(model.size_bytes)} download · needs "
            f"about {human_size(model.estimate_bytes)} of memory"
        )
        self.view.verdict.setText(model.verdict)
        self.view.verdict.setStyleSheet(verdict_style(model.verdict))
        self.view.verdict.setVisible(True)
        self.view.download_button.setEnabled(True)

    def _on_starter_error(self, exc: BaseException) -> None:
        self._checked = False  # try again next time the screen is shown
        self.view.starter_detail.setText(
            f"The starter model cannot be fetched right now: {user_message(exc)} You can still "
            "import a model file you already have."
        )

    @Slot()
    def _on_download(self) -> None:
        if self.starter is not None:
            self.view.download_button.setEnabled(False)
            self.view.download_button.setText("Downloading — see Discover for progress")
            self.download_requested.emit(self.starter)
