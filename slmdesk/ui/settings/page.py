"""Settings: appearance, chat defaults, the Hugging Face token, remote servers, where data lives,
about.

Nothing here waits on the disk or loads a library on the GUI thread: changes go to the in-memory
`SettingsStore` (saved shortly after, on its own thread), the token file is read and written on the
task pool, and the llama.cpp version (which loads the native library) is read there too, the first
time the page is shown, and appears when it arrives.
"""

from __future__ import annotations

import platform

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from slmdesk import __version__
from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError
from slmdesk.common.settings import SettingsStore
from slmdesk.hub import token as hf_token
from slmdesk.models.hardware import machine_info
from slmdesk.models.library import Library
from slmdesk.ui import dialogs
from slmdesk.ui.accessibility import named
from slmdesk.ui.format import human_size
from slmdesk.ui.runtime.tasks import TaskRunner
from slmdesk.ui.settings.connections_section import ConnectionsSection
from slmdesk.ui.settings.models_folder_section import ModelsFolderSection
from slmdesk.ui.settings.reporter import SettingsSaveReporter
from slmdesk.ui.settings.sources_section import SourcesSection

THEMES = (("Follow the system", "system"), ("Light", "light"), ("Dark", "dark"))


class SettingsPage(QScrollArea):
    """Edits the settings store; changes apply at once and are saved in the background."""

    theme_changed = Signal(str)
    # The latest save's problem as one sentence, or "" once a save worked again.
    save_problem = Signal(str)

    def __init__(
        self, store: SettingsStore, tasks: TaskRunner, library: Library | None = None
    ) -> None:
        super().__init__()
        self.store = store
        self.tasks = tasks
        self.reporter = SettingsSaveReporter(store)
        self.reporter.save_failed.connect(self._on_save_failed)
        self.reporter.saved.connect(self._on_saved)
        self.setWidgetResizable(True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # its fields take focus and scroll it
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(16, 16, 16, 16)
        title = QLabel("Settings")
        title.setProperty("role", "title")
        layout.addWidget(title)
        self.save_error = QLabel("")
        self.save_error.setWordWrap(True)
        self.save_error.setStyleSheet(
            "background: #fde8e8; color: #6b1a1a; border-radius: 6px; padding: 6px 10px;"
        )
        self.save_error.setVisible(False)
        layout.addWidget(self.save_error)
        current = store.load()

        look = QGroupBox("Appearance")
        look_form = QFormLayout(look)
        self.theme = QComboBox()
        for label, value in THEMES:
            self.theme.addItem(label, value)
        self.theme.setCurrentIndex(max(0, [v for _, v in THEMES].index(current["theme"])))
        self.theme.currentIndexChanged.connect(self._on_theme)
        named(self.theme, "Theme")
        look_form.addRow("Theme:", self.theme)
        layout.addWidget(look)

        chat = QGroupBox("Chat defaults (each conversation can change them)")
        chat_form = QFormLayout(chat)
        self.context = QSpinBox()
        self.context.setRange(0, 262144)
        self.context.setSingleStep(1024)
        self.context.setSpecialValueText("Automatic (from the model and this computer's memory)")
        self.context.setValue(int(current["context_length"]))
        named(self.context, "Default context length", "0 means automatic")
        self.context.valueChanged.connect(lambda v: store.update(context_length=int(v)))
        machine = machine_info()
        self.threads = QSpinBox()
        self.threads.setRange(0, max(1, machine.logical_cores))
        self.threads.setSpecialValueText(f"Automatic ({machine.physical_cores} physical cores)")
        self.threads.setValue(int(current["threads"]))
        named(self.threads, "CPU threads", "0 means automatic")
        self.threads.valueChanged.connect(lambda v: store.update(threads=int(v)))
        self.system_prompt = QLineEdit(str(current["default_system_prompt"]))
        named(self.system_prompt, "System prompt for new chats")
        self.system_prompt.editingFinished.connect(
            lambda: store.update(default_system_prompt=self.system_prompt.text())
        )
        chat_form.addRow("Context length:", self.context)
        chat_form.addRow("CPU threads:", self.threads)
        chat_form.addRow("System prompt for new chats:", self.system_prompt)
        layout.addWidget(chat)

        hub = QGroupBox("Hugging Face")
        hub_form = QFormLayout(hub)
        self.token_state = QLabel("Checking…")
        self.token_state.setProperty("role", "muted")
        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("hf_… (only needed for gated or private models)")
        named(self.token_edit, "Hugging Face access token", "For gated or private models")
        self.save_token_button = QPushButton("Save token")
        self.clear_token_button = QPushButton("Remove token")
        named(self.save_token_button, "Save the access token")
        named(self.clear_token_button, "Remove the access token")
        self.save_token_button.clicked.connect(self._on_save_token)
        self.clear_token_button.clicked.connect(self._on_clear_token)
        token_row = QHBoxLayout()
        token_row.addWidget(self.token_edit, 1)
        token_row.addWidget(self.save_token_button)
        token_row.addWidget(self.clear_token_button)
        hub_form.addRow("Access token:", token_row)
        hub_form.addRow("", self.token_state)
        layout.addWidget(hub)
        self._show_token_state()

        # the models folder can be changed (and moved): its own section, when a library is given
        self.models_folder = None if library is None else ModelsFolderSection(library, tasks)
        if self.models_folder is not None:
            layout.addWidget(self.models_folder)

        self.connections = ConnectionsSection(tasks)
        layout.addWidget(self.connections)

        self._body = layout
        where = self._where = QGroupBox("Where slmdesk keeps your data")
        where_form = QFormLayout(where)
        for label, folder in (
            *([] if self.models_folder is not None else [("Models", paths.models_dir())]),
            ("Conversations and data", paths.data_dir()),
            ("Settings", paths.config_dir()),
            ("Logs", paths.logs_dir()),
        ):
            button = QPushButton(str(folder))
            button.setFlat(True)
            button.setToolTip("Open this folder")
            named(button, f"Open the {label.lower()} folder", str(folder))
            button.clicked.connect(
                lambda _=False, f=folder: QDesktopServices.openUrl(QUrl.fromLocalFile(str(f)))
            )
            where_form.addRow(f"{label}:", button)
        layout.addWidget(where)
        self.sources = SourcesSection(library, tasks) if library is not None else None
        if self.sources is not None:
            layout.addWidget(self.sources)

        about = QGroupBox("About")
        about_form = QFormLayout(about)
        about_form.addRow("slmdesk:", QLabel(__version__))
        about_form.addRow("Python:", QLabel(platform.python_version()))
        self.llama_version = QLabel("checking…")
        about_form.addRow("llama.cpp:", self.llama_version)
        self.cpu_variant = QLabel("shown once a model is loaded")
        about_form.addRow("llama.cpp CPU variant:", self.cpu_variant)
        about_form.addRow(
            "This computer:",
            QLabel(
                f"{human_size(machine.total_ram)} memory, {machine.physical_cores} physical cores"
            ),
        )
        layout.addWidget(about)
        layout.addStretch(1)
        self.setWidget(body)
        self._version_requested = False

    def add_section(self, section: QWidget) -> None:
        """Add a group (e.g. the local server's) before "Where slmdesk keeps your data"."""
        self._body.insertWidget(self._body.indexOf(self._where), section)

    def main_field(self) -> QWidget:
        """Where the keyboard focus goes when the page opens."""
        return self.theme

    def showEvent(self, event: QShowEvent) -> None:
        """Read the llama.cpp version the first time the page is shown.

        Importing llama_cpp loads the native library (seconds on a cold disk): it happens on the
        task pool, and only when someone looks, so it does not compete with start-up.
        """
        super().showEvent(event)
        if not self._version_requested:
            self._version_requested = True
            self.tasks.run(_llama_version, self.llama_version.setText, name="llama-version")

    @Slot(object)
    def on_model_loaded(self, info: dict) -> None:
        """Show which llama.cpp CPU build the app picked (known after the first load)."""
        self.cpu_variant.setText(str(info.get("cpu_variant", "unknown")))

    @Slot(int)
    def _on_theme(self, index: int) -> None:
        value = self.theme.itemData(index)
        self.store.update(theme=value)
        self.theme_changed.emit(value)

    @Slot(str)
    def _on_save_failed(self, message: str) -> None:
        self.save_error.setText(message)
        self.save_error.setVisible(True)
        self.save_problem.emit(message)

    @Slot()
    def _on_saved(self) -> None:
        if not self.save_error.isHidden():
            self.save_error.setVisible(False)
            self.save_problem.emit("")

    def _show_token_state(self) -> None:
        self.tasks.run(hf_token.load_token, self._on_token_state, name="token-read")

    def _on_token_state(self, token: str | None) -> None:
        self.token_state.setText(
            f"A token is set ({hf_token.token_hint(token)})." if token else "No token set."
        )

    @Slot()
    def _on_save_token(self) -> None:
        text = self.token_edit.text()

        def saved(_result: object) -> None:
            self.token_edit.clear()
            self._show_token_state()

        self.tasks.run(
            lambda: hf_token.save_token(text), saved, self._on_token_error, name="token-save"
        )

    @Slot()
    def _on_clear_token(self) -> None:
        self.tasks.run(
            hf_token.clear_token,
            lambda _result: self._show_token_state(),
            self._on_token_error,
            name="token-clear",
        )

    def _on_token_error(self, exc: BaseException) -> None:
        if isinstance(exc, SlmdeskError):
            message = str(exc)
        elif isinstance(exc, OSError):
            message = f"The token file could not be changed: {exc.strerror or exc}."
        else:
            message = f"Unexpected problem: {exc}"
        dialogs.show_error(self, "Token", message)

    def shutdown(self) -> None:
        """Stop listening to the settings store (the window is closing)."""
        self.reporter.close()


def _llama_version() -> str:
    try:
        from slmdesk.llama.native import llama_version

        return f"llama-cpp-python {llama_version()}"
    except Exception as exc:  # shown, not raised: the About box must always open
        return f"not available ({exc})"
