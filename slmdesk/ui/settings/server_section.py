"""Settings › Local server: the switch for the OpenAI-compatible server while the window runs.

The choices (port, on or off, all interfaces or this computer only) live in the settings store;
the API key lives in its own private file (`slmdesk.serve.api_key`, read and written on the task
pool), never in the settings JSON and never in a log. Starting and stopping happen on the task
pool (`LocalServer`); this section only shows what they report: the address, a one-sentence
error, how many requests were answered and what is being answered now.
"""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
)

from slmdesk.common.errors import SlmdeskError
from slmdesk.common.settings import SettingsStore
from slmdesk.serve import api_key
from slmdesk.serve.runner import DEFAULT_PORT
from slmdesk.ui.accessibility import named
from slmdesk.ui.runtime.local_server import NEEDS_KEY, LocalServer, Running
from slmdesk.ui.runtime.shared_inference import SharedInference
from slmdesk.ui.runtime.tasks import TaskRunner

PORT_KEY = "server_port"
ENABLED_KEY = "server_enabled"
EXPOSE_KEY = "server_expose"
EXPOSED_WARNING = (
    "Other computers that can reach this one can use your models while the server runs "
    "(they need the API key)."
)
_ALERT = "background: #fde8e8; color: #6b1a1a; border-radius: 6px; padding: 6px 10px;"
_CAUTION = "background: #fbefd6; color: #5c3d00; border-radius: 6px; padding: 6px 10px;"


class ServerSection(QGroupBox):
    """The "Local server" group of the Settings page."""

    def __init__(
        self,
        store: SettingsStore,
        tasks: TaskRunner,
        server: LocalServer,
        shared: SharedInference,
    ) -> None:
        super().__init__("Local server (OpenAI-compatible API)")
        self.store = store
        self.tasks = tasks
        self.server = server
        self._saved_key: str | None = None
        self._key_read = False
        self._current = "Idle"
        form = QFormLayout(self)

        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setSpecialValueText("Any free port")
        self.port.setValue(int(store.get(PORT_KEY) or DEFAULT_PORT))
        named(self.port, "Server port", "The port programs connect to (default 8765)")
        self.port.valueChanged.connect(lambda value: store.update(**{PORT_KEY: int(value)}))
        form.addRow("Port:", self.port)

        self.expose = QCheckBox("Allow other computers")
        self.expose.setChecked(bool(store.get(EXPOSE_KEY)))
        named(self.expose, "Allow other computers", "Listen on all interfaces; needs an API key")
        self.expose.toggled.connect(self._on_expose)
        form.addRow("", self.expose)

        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("Clients send it as 'Authorization: Bearer KEY'")
        named(self.key, "Server API key", "Needed to allow other computers")
        form.addRow("API key:", self.key)

        self.warning = QLabel(EXPOSED_WARNING)
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(_CAUTION)
        self.warning.setVisible(self.expose.isChecked())
        form.addRow("", self.warning)

        self.switch = QPushButton("Start server")
        self.switch.setCheckable(True)
        named(self.switch, "Run the local server")
        self.switch.clicked.connect(self._on_switch)
        form.addRow("Server:", self.switch)

        self.address = QLineEdit("not running")
        self.address.setReadOnly(True)
        named(self.address, "Server address")
        self.copy_button = QPushButton("Copy")
        named(self.copy_button, "Copy the server address")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self._on_copy)
        row = QHBoxLayout()
        row.addWidget(self.address, 1)
        row.addWidget(self.copy_button)
        form.addRow("Address:", row)

        self.status = QLabel("")
        self.status.setProperty("role", "muted")
        self.status.setWordWrap(True)
        form.addRow("", self.status)

        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(_ALERT)
        self.error.setVisible(False)
        form.addRow("", self.error)

        server.started.connect(self._on_started)
        server.stopped.connect(self._on_stopped)
        server.failed.connect(self._on_failed)
        server.busy_changed.connect(self._on_busy)
        shared.request_started.connect(self._on_request_started)
        shared.request_ended.connect(self._on_request_ended)
        self._served = 0
        self._show_status()
        self.tasks.run(api_key.load_api_key, self._on_key_read, name="server-key-read")

    # -- user actions -----------------------------------------------------------------------------

    @Slot(bool)
    def _on_expose(self, checked: bool) -> None:
        self.warning.setVisible(checked)
        self.store.update(**{EXPOSE_KEY: checked})

    @Slot(bool)
    def _on_switch(self, checked: bool) -> None:
        if checked:
            self.start()
        else:
            self.store.update(**{ENABLED_KEY: False})
            self.server.stop()

    def start(self) -> None:
        """Start with the fields' values (the key is checked and saved first)."""
        self.show_error("")
        key = self.key.text()
        expose = self.expose.isChecked()
        if key:
            try:
                api_key.check_api_key(key)
            except SlmdeskError as exc:
                self._refuse(str(exc))
                return
        elif expose:
            self._refuse(NEEDS_KEY)
            return
        self.store.update(**{ENABLED_KEY: True})
        if key != (self._saved_key or ""):
            self._save_key(key)
        self.server.start(self.port.value(), expose, key or None)

    def _save_key(self, key: str) -> None:
        self._saved_key = key or None
        work = (lambda: api_key.save_api_key(key)) if key else api_key.clear_api_key
        self.tasks.run(work, None, lambda exc: self.show_error(str(exc)), name="server-key-save")

    def _refuse(self, message: str) -> None:
        self.switch.setChecked(False)
        self.show_error(message)

    @Slot()
    def _on_copy(self) -> None:
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None and self.server.running is not None:
            clipboard.setText(self.server.running.url)

    # -- what the server reports ------------------------------------------------------------------

    def _on_key_read(self, key: str | None) -> None:
        self._saved_key = key
        self._key_read = True
        if key and not self.key.text():
            self.key.setText(key)
        if self.store.get(ENABLED_KEY) and self.server.running is None and not self.server.busy:
            self.switch.setChecked(True)
            self.start()  # the server was on when the window last closed

    @Slot(object)
    def _on_started(self, running: Running) -> None:
        self.switch.setChecked(True)
        self.switch.setText("Stop server")
        self.address.setText(running.url)
        self.copy_button.setEnabled(True)
        self._show_status()

    @Slot()
    def _on_stopped(self) -> None:
        self.switch.setChecked(False)
        self.switch.setText("Start server")
        self.address.setText("not running")
        self.copy_button.setEnabled(False)
        self._current = "Idle"
        self._show_status()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self.server.running is None:
            self._on_stopped()
        self.show_error(message)

    @Slot(bool)
    def _on_busy(self, busy: bool) -> None:
        self.switch.setEnabled(not busy)
        for field in (self.port, self.expose, self.key):
            field.setEnabled(not busy and self.server.running is None)
        if busy:
            self.status.setText("Starting…" if self.server.running is None else "Stopping…")
        else:
            self._show_status()

    @Slot(str, str)
    def _on_request_started(self, label: str, model: str) -> None:
        self._current = f"Answering {label} for {model}"
        self._show_status()

    @Slot(int)
    def _on_request_ended(self, served: int) -> None:
        self._served = served
        self._current = "Idle"
        self._show_status()

    def _show_status(self) -> None:
        running = self.server.running is not None
        for field in (self.port, self.expose, self.key):
            field.setEnabled(not running and not self.server.busy)
        if not running:
            self.status.setText(f"Stopped · {self._served} requests served")
            return
        self.status.setText(f"{self._current} · {self._served} requests served")

    def show_error(self, message: str) -> None:
        """Show one sentence under the switch ("" hides it)."""
        self.error.setText(message)
        self.error.setVisible(bool(message))
