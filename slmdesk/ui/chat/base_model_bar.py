"""The chat header's line for a base model: says plainly what it is and offers text completion.

A base model (no chat template, nothing says it was tuned to chat) answers through a hidden
question-and-answer frame, and often cannot chat at all. This line says so, and its checkbox
(Alt+T, or Tab to it and Space) switches the conversation to text completion: the message is
continued as written, with no hidden frame. The choice is stored with the conversation's
settings as ``"mode"``.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QLabel

from slmdesk.chat.session import CHAT, COMPLETE

BASE_MODEL_TEXT = (
    "{name} looks like a base model: it was trained to continue text, not to chat (no chat "
    "template, nothing says it was tuned to chat). Questions go through a hidden question-and-"
    "answer frame and answers can be wrong."
)
COMPLETION_TEXT = (
    "Text completion is on: your message is continued as written; the prompt format above and "
    "the system prompt are not used."
)


class BaseModelBar(QFrame):
    """Shown while a base model is loaded (or the conversation is in text completion)."""

    mode_changed = Signal(str)  # CHAT or COMPLETE, only when the user toggles

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("baseModelBar")
        self._name = "This model"
        self._base_model = False
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setProperty("role", "muted")
        self.complete_toggle = QCheckBox("&Text completion")
        self.complete_toggle.setToolTip(
            "Continue your message as written instead of answering it (Alt+T)"
        )
        self.complete_toggle.setAccessibleName("Text completion mode")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.complete_toggle)
        self.complete_toggle.toggled.connect(self._on_toggled)
        self._refresh()

    def show_for(self, name: str | None, base_model: bool) -> None:
        """Tell the bar which model is loaded (None: none) and whether it is a base model."""
        self._name = name or "This model"
        self._base_model = bool(name) and base_model
        self._refresh()

    def mode(self) -> str:
        """The conversation's mode as chosen here."""
        return COMPLETE if self.complete_toggle.isChecked() else CHAT

    def set_mode(self, mode: object) -> None:
        """Show a conversation's stored mode (no `mode_changed`: nothing was edited)."""
        self.complete_toggle.blockSignals(True)
        self.complete_toggle.setChecked(mode == COMPLETE)
        self.complete_toggle.blockSignals(False)
        self._refresh()

    def _on_toggled(self, _checked: bool) -> None:
        self._refresh()
        self.mode_changed.emit(self.mode())

    def _refresh(self) -> None:
        completing = self.complete_toggle.isChecked()
        if completing:
            self.label.setText(COMPLETION_TEXT)
        else:
            self.label.setText(BASE_MODEL_TEXT.format(name=self._name))
        self.label.setAccessibleName(self.label.text())
        # Once in text completion, the way back stays visible whatever model is loaded.
        self.setVisible(self._base_model or completing)
