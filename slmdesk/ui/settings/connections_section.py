"""Settings → Connections: the remote OpenAI-compatible servers the chat can use.

Add, edit or remove a server (name, address, API key) and "Test" it (its model list). The
connections file is read and written, and servers are asked, on the task pool only; results
come back as job signals and only then touch the widgets. The key field never shows a stored
key: editing a connection keeps its key unless a new one is typed (or "Remove key" is ticked).
``changed`` tells the chat to list the servers' models again.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QWidget,
)

from slmdesk.chat.connections import Connection, ConnectionStore
from slmdesk.chat.remote import list_models
from slmdesk.common.errors import SlmdeskError, user_message
from slmdesk.common.format import printable
from slmdesk.ui.accessibility import named
from slmdesk.ui.runtime.tasks import TaskRunner

log = logging.getLogger(__name__)

NAME_ROLE = Qt.ItemDataRole.UserRole
SHOWN_MODELS = 5


class ConnectionsSection(QGroupBox):
    """The Connections box of the Settings page."""

    changed = Signal()  # a connection was added, edited or removed

    def __init__(self, tasks: TaskRunner, store: ConnectionStore | None = None) -> None:
        super().__init__("Connections (OpenAI-compatible servers: llama-server, vLLM, Ollama…)")
        self.tasks = tasks
        self.store = store or ConnectionStore()
        self._connections: list[Connection] = []
        self._editing: str | None = None  # the name of the connection being edited
        form = QFormLayout(self)
        self.list = named(QListWidget(), "Saved connections")
        self.list.setMaximumHeight(110)
        self.list.currentItemChanged.connect(self._on_picked)
        form.addRow("Servers:", self.list)
        self.name_edit = named(QLineEdit(), "Connection name")
        self.name_edit.setPlaceholderText("gpu-box")
        self.url_edit = named(QLineEdit(), "Server address")
        self.url_edit.setPlaceholderText("http://192.168.1.20:8080 (the /v1 is added)")
        self.key_edit = named(QLineEdit(), "API key", "Leave empty when the server needs none")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("optional")
        self.clear_key = named(QCheckBox("Remove key"), "Remove the stored key")
        self.clear_key.setVisible(False)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.clear_key)
        form.addRow("Name:", self.name_edit)
        form.addRow("Address:", self.url_edit)
        form.addRow("API key:", key_row)
        self.save_button = named(QPushButton("Add"), "Add or save the connection")
        self.new_button = named(QPushButton("New"), "Start a new connection")
        self.remove_button = named(QPushButton("Remove"), "Remove the selected connection")
        self.test_button = named(QPushButton("Test"), "List the server's models")
        buttons = QHBoxLayout()
        for button in (self.save_button, self.new_button, self.remove_button, self.test_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        holder = QWidget()
        holder.setLayout(buttons)
        buttons.setContentsMargins(0, 0, 0, 0)
        form.addRow("", holder)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setProperty("role", "muted")
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # server text is not markup
        form.addRow("", self.status)
        self.save_button.clicked.connect(self._on_save)
        self.new_button.clicked.connect(self._on_new)
        self.remove_button.clicked.connect(self._on_remove)
        self.test_button.clicked.connect(self._on_test)
        self.remove_button.setEnabled(False)
        self.reload()

    # -- the list ----------------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        """Read the connections on the task pool and show them."""
        self.tasks.run(
            self.store.all,
            lambda items: self._show(items, select),
            self._on_error,
            name="connections-read",
        )

    def _show(self, items: list[Connection], select: str | None) -> None:
        """Fill the list; the fields are left alone (the user may be typing) unless ``select``
        names a connection, which is then shown for editing."""
        self._connections = items
        self.list.blockSignals(True)
        self.list.clear()
        chosen = None
        for connection in items:
            key = " · key set" if connection.api_key else ""
            item = QListWidgetItem(
                f"{printable(connection.name)} — {printable(connection.base_url)}{key}"
            )
            item.setData(NAME_ROLE, connection.name)
            self.list.addItem(item)
            if connection.name == select:
                chosen = item
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        if chosen is not None:
            self._on_picked(chosen)

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_picked(self, item: QListWidgetItem | None, _previous: object = None) -> None:
        connection = self._find(item.data(NAME_ROLE)) if item is not None else None
        if connection is None:
            self._on_new()
            return
        self._editing = connection.name
        self.name_edit.setText(connection.name)
        self.url_edit.setText(connection.base_url)
        self.key_edit.clear()
        self.key_edit.setPlaceholderText("(unchanged)" if connection.api_key else "optional")
        self.clear_key.setChecked(False)
        self.clear_key.setVisible(bool(connection.api_key))
        self.save_button.setText("Save")
        self.remove_button.setEnabled(True)

    def _find(self, name: object) -> Connection | None:
        return next((c for c in self._connections if c.name == name), None)

    @Slot()
    def _on_new(self) -> None:
        self._editing = None
        self.list.blockSignals(True)
        self.list.setCurrentItem(None)
        self.list.clearSelection()
        self.list.blockSignals(False)
        for edit in (self.name_edit, self.url_edit, self.key_edit):
            edit.clear()
        self.key_edit.setPlaceholderText("optional")
        self.clear_key.setVisible(False)
        self.save_button.setText("Add")
        self.remove_button.setEnabled(False)

    # -- actions (all on the task pool) -----------------------------------------------------

    def _typed(self) -> Connection:
        """The connection in the fields (an edit keeps its stored key unless told otherwise)."""
        key = self.key_edit.text()
        old = self._find(self._editing) if self._editing else None
        if not key and old is not None and not self.clear_key.isChecked():
            key = old.api_key
        return Connection(self.name_edit.text(), self.url_edit.text(), key)

    @Slot()
    def _on_save(self) -> None:
        connection, replace = self._typed(), self._editing

        def saved(result: Connection) -> None:
            self.status.setText(f"Saved {result.name}.")
            self.reload(select=result.name)
            self.changed.emit()

        self.tasks.run(
            lambda: self.store.save(connection, replace=replace),
            saved,
            self._on_error,
            name="connections-save",
        )

    @Slot()
    def _on_remove(self) -> None:
        name = self._editing
        if name is None:
            return

        def removed(result: Connection) -> None:
            self.status.setText(f"Removed {result.name}.")
            self._on_new()
            self.reload()
            self.changed.emit()

        self.tasks.run(
            lambda: self.store.remove(name), removed, self._on_error, name="connections-remove"
        )

    @Slot()
    def _on_test(self) -> None:
        target = self._typed().target("")
        self.status.setText("Asking the server for its models…")
        self.test_button.setEnabled(False)

        def listed(models: list[str]) -> None:
            self.test_button.setEnabled(True)
            if not models:
                self.status.setText("The server answers but lists no models.")
                return
            shown = ", ".join(printable(m) for m in models[:SHOWN_MODELS])
            more = f" and {len(models) - SHOWN_MODELS} more" if len(models) > SHOWN_MODELS else ""
            self.status.setText(f"It works: {len(models)} model(s): {shown}{more}.")

        def failed(exc: BaseException) -> None:
            self.test_button.setEnabled(True)
            self._on_error(exc)

        self.tasks.run(lambda: list_models(target), listed, failed, name="connections-test")

    def _on_error(self, exc: BaseException) -> None:
        if not isinstance(exc, SlmdeskError):
            log.error("a connections task failed", exc_info=exc)
        self.status.setText(user_message(exc))
