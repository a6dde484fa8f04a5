"""Settings: appearance, chat defaults, the Hugging Face token, where data lives, about."""

from __future__ import annotations

import platform

from PySide6.QtCore import QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
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
from slmdesk.common import paths, settings
from slmdesk.common.errors import SlmdeskError
from slmdesk.hub import token as hf_token
from slmdesk.models.hardware import machine_info
from slmdesk.ui import dialogs
from slmdesk.ui.format import human_size

THEMES = (("Follow the system", "system"), ("Light", "light"), ("Dark", "dark"))


class SettingsPage(QScrollArea):
    """Edits `slmdesk.common.settings`; changes apply at once and are saved."""

    theme_changed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(16, 16, 16, 16)
        title = QLabel("Settings")
        title.setProperty("role", "title")
        layout.addWidget(title)
        current = settings.load()

        look = QGroupBox("Appearance")
        look_form = QFormLayout(look)
        self.theme = QComboBox()
        for label, value in THEMES:
            self.theme.addItem(label, value)
        self.theme.setCurrentIndex(max(0, [v for _, v in THEMES].index(current["theme"])))
        self.theme.currentIndexChanged.connect(self._on_theme)
        look_form.addRow("Theme:", self.theme)
        layout.addWidget(look)

        chat = QGroupBox("Chat defaults (each conversation can change them)")
        chat_form = QFormLayout(chat)
        self.context = QSpinBox()
        self.context.setRange(0, 262144)
        self.context.setSingleStep(1024)
        self.context.setSpecialValueText("Automatic (from the model and this computer's memory)")
        self.context.setValue(int(current["context_length"]))
        self.context.valueChanged.connect(lambda v: settings.update(context_length=int(v)))
        machine = machine_info()
        self.threads = QSpinBox()
        self.threads.setRange(0, max(1, machine.logical_cores))
        self.threads.setSpecialValueText(f"Automatic ({machine.physical_cores} physical cores)")
        self.threads.setValue(int(current["threads"]))
        self.threads.valueChanged.connect(lambda v: settings.update(threads=int(v)))
        self.system_prompt = QLineEdit(str(current["default_system_prompt"]))
        self.system_prompt.editingFinished.connect(
            lambda: settings.update(default_system_prompt=self.system_prompt.text())
        )
        chat_form.addRow("Context length:", self.context)
        chat_form.addRow("CPU threads:", self.threads)
        chat_form.addRow("System prompt for new chats:", self.system_prompt)
        layout.addWidget(chat)

        hub = QGroupBox("Hugging Face")
        hub_form = QFormLayout(hub)
        self.token_state = QLabel()
        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("hf_… (only needed for gated or private models)")
        save = QPushButton("Save token")
        clear = QPushButton("Remove token")
        save.clicked.connect(self._on_save_token)
        clear.clicked.connect(self._on_clear_token)
        token_row = QHBoxLayout()
        token_row.addWidget(self.token_edit, 1)
        token_row.addWidget(save)
        token_row.addWidget(clear)
        hub_form.addRow("Access token:", token_row)
        hub_form.addRow("", self.token_state)
        layout.addWidget(hub)
        self._show_token_state()

        where = QGroupBox("Where slmdesk keeps your data")
        where_form = QFormLayout(where)
        for label, folder in (
            ("Models", paths.models_dir()),
            ("Conversations and data", paths.data_dir()),
            ("Settings", paths.config_dir()),
            ("Logs", paths.logs_dir()),
        ):
            button = QPushButton(str(folder))
            button.setFlat(True)
            button.setToolTip("Open this folder")
            button.clicked.connect(
                lambda _=False, f=folder: QDesktopServices.openUrl(QUrl.fromLocalFile(str(f)))
            )
            where_form.addRow(f"{label}:", button)
        layout.addWidget(where)

        about = QGroupBox("About")
        about_form = QFormLayout(about)
        about_form.addRow("slmdesk:", QLabel(__version__))
        about_form.addRow("Python:", QLabel(platform.python_version()))
        about_form.addRow("llama.cpp:", QLabel(_llama_version()))
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

    @Slot(object)
    def on_model_loaded(self, info: dict) -> None:
        """Show which llama.cpp CPU build the app picked (known after the first load)."""
        self.cpu_variant.setText(str(info.get("cpu_variant", "unknown")))

    @Slot(int)
    def _on_theme(self, index: int) -> None:
        value = self.theme.itemData(index)
        settings.update(theme=value)
        self.theme_changed.emit(value)

    def _show_token_state(self) -> None:
        token = hf_token.load_token()
        self.token_state.setText(
            f"A token is set ({hf_token.token_hint(token)})." if token else "No token set."
        )
        self.token_state.setProperty("role", "muted")

    @Slot()
    def _on_save_token(self) -> None:
        try:
            hf_token.save_token(self.token_edit.text())
        except SlmdeskError as exc:
            dialogs.show_error(self, "Token", str(exc))
            return
        self.token_edit.clear()
        self._show_token_state()

    @Slot()
    def _on_clear_token(self) -> None:
        hf_token.clear_token()
        self._show_token_state()


def _llama_version() -> str:
    try:
        from slmdesk.llama.native import llama_version

        return f"llama-cpp-python {llama_version()}"
    except Exception as exc:  # shown, not raised: the About box must always open
        return f"not available ({exc})"
