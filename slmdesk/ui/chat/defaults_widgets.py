"""The chat settings panel's rows for system prompt presets and a model's saved defaults.

Widgets only: `ui.chat.defaults_controller` fills them and acts on their signals.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.ui.accessibility import named

NO_PRESET = "No preset"


class PresetsRow(QWidget):
    """A preset picker with a menu to save the current prompt as a preset, rename or delete one."""

    picked = Signal(str)  # the preset's name
    save_requested = Signal()
    rename_requested = Signal(str)
    delete_requested = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.combo = QComboBox()
        self.combo.setMinimumContentsLength(10)
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        named(self.combo, "System prompt preset", "Fills the system prompt with a saved text")
        self.menu_button = QToolButton()
        self.menu_button.setText("Presets")
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        named(self.menu_button, "Preset actions", "Save, rename or delete system prompt presets")
        menu = QMenu(self.menu_button)
        self.save_action = QAction("Save prompt as preset…", menu)
        self.rename_action = QAction("Rename preset…", menu)
        self.delete_action = QAction("Delete preset", menu)
        for action in (self.save_action, self.rename_action, self.delete_action):
            menu.addAction(action)
        self.menu_button.setMenu(menu)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.menu_button)
        self.combo.activated.connect(self._on_activated)
        self.save_action.triggered.connect(self.save_requested)
        self.rename_action.triggered.connect(lambda: self.rename_requested.emit(self.current()))
        self.delete_action.triggered.connect(lambda: self.delete_requested.emit(self.current()))
        self.set_presets([], "")

    def set_presets(self, names: list[str], current: str) -> None:
        """Offer ``names``; select ``current`` (or "No preset")."""
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(NO_PRESET, "")
        for name in names:
            self.combo.addItem(name, name)
        index = self.combo.findData(current) if current else 0
        self.combo.setCurrentIndex(max(index, 0))
        self.combo.blockSignals(False)
        self._update_actions()

    def select(self, name: str) -> None:
        """Show ``name`` as the chosen preset without announcing it."""
        self.combo.blockSignals(True)
        index = self.combo.findData(name) if name else 0
        self.combo.setCurrentIndex(max(index, 0))
        self.combo.blockSignals(False)
        self._update_actions()

    def current(self) -> str:
        """The chosen preset's name ("" for none)."""
        return str(self.combo.currentData() or "")

    def _on_activated(self, _index: int) -> None:
        self._update_actions()
        self.picked.emit(self.current())

    def _update_actions(self) -> None:
        chosen = bool(self.current())
        self.rename_action.setEnabled(chosen)
        self.delete_action.setEnabled(chosen)


class ModelDefaultsRow(QWidget):
    """Says whose defaults a new chat starts from, with buttons to save or forget them."""

    save_requested = Signal()
    forget_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setProperty("role", "muted")
        self.save_button = QPushButton("Save as model defaults")
        named(
            self.save_button,
            "Save as the model's defaults",
            "New chats with this model, slmdesk chat and the local server start from these",
        )
        self.forget_button = QPushButton("Forget")
        named(self.forget_button, "Forget the model's defaults")
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.save_button, 1)
        buttons.addWidget(self.forget_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addLayout(buttons)
        self.save_button.clicked.connect(self.save_requested)
        self.forget_button.clicked.connect(self.forget_requested)
        self.show_model(None, False)

    def show_model(self, name: str | None, has_defaults: bool, remote: bool = False) -> None:
        """Describe the defaults of ``name`` (None: no model chosen; ``remote``: on a server)."""
        local = name is not None and not remote
        self.save_button.setEnabled(local)
        self.forget_button.setEnabled(local and has_defaults)
        if remote:
            self.label.setText("Defaults are kept for the models in your library only.")
        elif name is None:
            self.label.setText("Choose a model to save its defaults.")
        elif has_defaults:
            self.label.setText(f"New chats with {name} start from its saved defaults.")
        else:
            self.label.setText(f"{name} has no saved defaults: new chats use the app's.")
