"""Layout of the Chat page: conversations on the left, the conversation in the middle, settings on
the right. Widgets only; `ChatController` gives them behaviour."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QResizeEvent
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from slmdesk.ui.accessibility import named
from slmdesk.ui.chat.base_model_bar import BaseModelBar
from slmdesk.ui.chat.defaults_widgets import ModelDefaultsRow, PresetsRow
from slmdesk.ui.chat.empty_state import EmptyState, list_text
from slmdesk.ui.chat.message_widget import MessageWidget, reading_width
from slmdesk.ui.elided import ElidedLabel, ShrinkingComboBox
from slmdesk.ui.theme import icon


class Composer(QPlainTextEdit):
    """The message box: Enter sends, Shift+Enter adds a line, Esc asks to stop."""

    send_requested = Signal()
    stop_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setPlaceholderText("Type a message… (Enter sends, Shift+Enter adds a line)")
        self.setTabChangesFocus(True)
        self.setMaximumHeight(140)
        self.setMinimumHeight(64)
        named(self, "Message", "Enter sends, Shift+Enter adds a line, Esc stops the reply")

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
            else:
                self.send_requested.emit()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.stop_requested.emit()
            return
        super().keyPressEvent(event)


SIDE_MARGIN = 16  # between the messages and the edges of the conversation


class MessageList(QScrollArea):
    """The messages of one conversation; sticks to the bottom while a reply streams.

    Finished messages live in one `history` widget and the reply being written in a small
    `live` area below it. A streamed chunk then only re-lays out the live area: the history's
    size is unchanged, so its hundreds of message widgets are not laid out again per chunk.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        named(self, "Conversation", "The messages; arrow keys scroll")
        self.container = QWidget()
        self.column = QVBoxLayout(self.container)
        self.column.setContentsMargins(SIDE_MARGIN, 8, SIDE_MARGIN, 8)
        self.column.setSpacing(4)
        self.history = QWidget()
        self.history_column = QVBoxLayout(self.history)
        self.history_column.setContentsMargins(0, 0, 0, 0)
        self.history_column.setSpacing(4)
        self.live = QWidget()
        self.live_column = QVBoxLayout(self.live)
        self.live_column.setContentsMargins(0, 0, 0, 0)
        self.live_column.setSpacing(4)
        self.earlier_button = QPushButton("Show earlier messages")
        self.earlier_button.setFlat(True)
        self.earlier_button.setVisible(False)
        named(self.earlier_button, "Show earlier messages")
        self.empty = EmptyState()  # shown while there is no message: what to do first
        self.column.addWidget(self.empty, 1)
        self.column.addWidget(self.earlier_button, 0, Qt.AlignmentFlag.AlignHCenter)
        self.column.addWidget(self.history)
        self.column.addWidget(self.live)
        self.column.addStretch(1)
        self.setWidget(self.container)
        self._stick = True
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range_changed)
        bar.valueChanged.connect(self._on_scrolled)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Keep the messages' column at most `reading_width` wide, whatever the window's width.

        Why margins and not a maximum width on each message: a layout gives a widget the height
        it needs at the layout's width, not at the widget's narrower maximum, which cut the last
        line off messages whose text wraps at the narrower width.
        """
        super().resizeEvent(event)
        spare = self.viewport().width() - SIDE_MARGIN * 2 - reading_width(self)
        self.column.setContentsMargins(SIDE_MARGIN, 8, SIDE_MARGIN + max(0, spare), 8)

    def _on_scrolled(self, value: int) -> None:
        self._stick = value >= self.verticalScrollBar().maximum() - 24

    def _on_range_changed(self, _low: int, high: int) -> None:
        if self._stick:
            self.verticalScrollBar().setValue(high)

    @staticmethod
    def _in(layout: QVBoxLayout) -> list[MessageWidget]:
        found = []
        for i in range(layout.count()):
            widget = layout.itemAt(i).widget()
            if isinstance(widget, MessageWidget):
                found.append(widget)
        return found

    def widgets(self) -> list[MessageWidget]:
        """The message widgets in order."""
        return self._in(self.history_column) + self._in(self.live_column)

    def add(self, widget: MessageWidget, live: bool = False) -> None:
        """Append a message at the bottom; ``live`` for a reply that is still streaming."""
        if not live:
            self.settle()
        (self.live_column if live else self.history_column).addWidget(widget)
        self._stick = True
        self.empty.setVisible(False)

    def add_earlier(self, widgets: list[MessageWidget]) -> None:
        """Put older messages above the ones shown (in order), keeping the reader's place."""
        bar = self.verticalScrollBar()
        from_bottom = bar.maximum() - bar.value()
        self._stick = False
        for index, widget in enumerate(widgets):
            self.history_column.insertWidget(index, widget)
        self.empty.setVisible(not self.widgets())
        self.container.adjustSize()
        bar.setValue(bar.maximum() - from_bottom)

    def settle(self) -> None:
        """Move finished replies from the live area into the history."""
        for widget in self._in(self.live_column):
            self.live_column.removeWidget(widget)
            self.history_column.addWidget(widget)

    def remove(self, widget: MessageWidget) -> None:
        """Take a message out."""
        self.history_column.removeWidget(widget)
        self.live_column.removeWidget(widget)
        widget.deleteLater()
        self.empty.setVisible(not self.widgets())

    def clear(self) -> None:
        """Remove every message."""
        for widget in self.widgets():
            self.remove(widget)
        self.earlier_button.setVisible(False)
        self._stick = True


class SettingsPanel(QScrollArea):
    """The conversation's system prompt, sampling settings and context length."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setMinimumWidth(250)
        self.setMaximumWidth(320)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # its fields take focus and scroll it
        body = QWidget()
        layout = QVBoxLayout(body)
        title = QLabel("<b>Chat settings</b>")
        hint = QLabel("Saved with this conversation.")
        hint.setProperty("role", "muted")
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setPlaceholderText("System prompt (optional)")
        self.system_prompt.setMaximumHeight(120)
        self.system_prompt.setTabChangesFocus(True)
        named(self.system_prompt, "System prompt", "Instructions the model gets before the chat")
        form = QFormLayout()
        self.temperature = self._double(0.0, 2.0, 0.05, "0 gives the most likely words every time")
        self.top_p = self._double(0.01, 1.0, 0.01, "keep the smallest set of words adding up to p")
        self.top_k = self._int(0, 1000, "keep the k most likely words (0: off)")
        self.min_p = self._double(0.0, 0.99, 0.01, "drop words far less likely than the best one")
        self.repeat_penalty = self._double(0.5, 2.0, 0.01, "above 1 discourages repeating")
        self.seed = self._int(-1, 2**31 - 1, "a fixed seed repeats the same reply; -1 is random")
        self.seed.setSpecialValueText("random")
        self.max_tokens = self._int(1, 32768, "the longest reply, in tokens")
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Top-k", self.top_k)
        form.addRow("Min-p", self.min_p)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow("Seed", self.seed)
        form.addRow("Max reply tokens", self.max_tokens)
        self.context = self._int(0, 262144, "tokens of context; applies when the model is loaded")
        self.context.setSingleStep(1024)
        self.context.setSpecialValueText("automatic")
        form.addRow("Context length", self.context)
        self.threads = self._int(0, 1024, "CPU threads; applies when the model is loaded")
        self.threads.setSpecialValueText("automatic")
        form.addRow("CPU threads", self.threads)
        self.presets = PresetsRow()
        self.model_defaults = ModelDefaultsRow()
        self.reset_button = QPushButton("Reset to defaults")
        named(self.reset_button, "Reset chat settings to defaults")
        layout.addWidget(title)
        layout.addWidget(hint)
        layout.addWidget(QLabel("System prompt"))
        layout.addWidget(self.presets)
        layout.addWidget(self.system_prompt)
        layout.addLayout(form)
        layout.addWidget(self.reset_button)
        layout.addWidget(self.model_defaults)
        layout.addStretch(1)
        self.setWidget(body)
        self.system_prompt.textChanged.connect(self.changed)

    def _double(self, low: float, high: float, step: float, tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.setToolTip(tip)
        box.setAccessibleDescription(tip)  # named by its form label
        box.valueChanged.connect(self.changed)
        return box

    def _int(self, low: int, high: int, tip: str) -> QSpinBox:
        box = QSpinBox()
        box.setRange(low, high)
        box.setToolTip(tip)
        box.setAccessibleDescription(tip)  # named by its form label
        box.valueChanged.connect(self.changed)
        return box


class ChatView(QWidget):
    """All widgets of the Chat page."""

    def __init__(self) -> None:
        super().__init__()
        # left: conversations
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search chats…")
        self.search.setClearButtonEnabled(True)
        named(self.search, "Search chats")
        self.new_button = QPushButton(icon("new"), "New chat")
        self.new_button.setProperty("role", "primary")
        self.new_button.setToolTip("New chat (Ctrl+N)")
        named(self.new_button, "New chat")
        self.conversations = QListWidget()
        self.conversations.setObjectName("conversations")
        self.conversations.setWordWrap(True)
        # titles and snippets wrap; a horizontal bar would only ever scroll a margin
        self.conversations.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.conversations.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        named(self.conversations, "Chats", "F2 renames, Delete deletes, Shift+F10 opens the menu")
        # replaces the list while it is empty: no chats yet, or no search match
        self.conversations_empty = EmptyState(list_text(""))
        self.conversations_empty.setVisible(False)
        self.undo_bar = QFrame()
        undo_layout = QHBoxLayout(self.undo_bar)
        undo_layout.setContentsMargins(4, 2, 4, 2)
        self.undo_label = QLabel("Chat deleted.")
        self.undo_button = QPushButton("Undo")
        named(self.undo_button, "Undo delete")
        undo_layout.addWidget(self.undo_label, 1)
        undo_layout.addWidget(self.undo_button)
        self.undo_bar.setVisible(False)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(8, 12, 4, 8)
        left_layout.addWidget(self.new_button)
        left_layout.addWidget(self.search)
        left_layout.addWidget(self.conversations, 1)
        left_layout.addWidget(self.conversations_empty, 1)
        left_layout.addWidget(self.undo_bar)
        left.setMinimumWidth(200)
        left.setMaximumWidth(320)

        # middle: header, messages, composer
        self.model_picker = ShrinkingComboBox(minimum_width=180)
        named(self.model_picker, "Model")
        # short states ("Ready · 4,096 tokens of context") stay whole: the picker gives way first
        self.model_state = ElidedLabel("No model loaded", whole_up_to=240)
        self.model_state.setProperty("role", "muted")
        self.load_progress = QProgressBar()
        self.load_progress.setRange(0, 100)
        self.load_progress.setMaximumWidth(160)
        self.load_progress.setVisible(False)
        named(self.load_progress, "Loading the model")
        self.eject_button = QPushButton("Unload")
        self.eject_button.setToolTip("Free the model's memory")
        named(self.eject_button, "Unload the model")
        self.settings_button = QPushButton(icon("settings"), "Settings")
        self.settings_button.setCheckable(True)
        named(self.settings_button, "Chat settings", "Show or hide the chat's settings panel")
        header = QHBoxLayout()
        header.addWidget(QLabel("Model:"))
        header.addWidget(self.model_picker)
        header.addWidget(self.load_progress)
        header.addWidget(self.model_state, 1)
        header.addWidget(self.eject_button)
        header.addWidget(self.settings_button)
        self.title = ElidedLabel("New chat")
        self.title.setProperty("role", "title")
        self.format_label = QLabel("")
        self.format_label.setProperty("role", "muted")
        self.format_label.setWordWrap(True)
        self.base_model_bar = BaseModelBar()
        self.messages = MessageList()
        self.notice = QLabel("")
        self.notice.setObjectName("chatNotice")  # coloured by its "kind" (ui/theme.py)
        self.notice.setProperty("kind", "warning")
        self.notice.setWordWrap(True)
        self.notice.setVisible(False)
        self.edit_banner = QFrame()
        banner_layout = QHBoxLayout(self.edit_banner)
        banner_layout.setContentsMargins(4, 2, 4, 2)
        banner_layout.addWidget(
            QLabel("Editing a message: sending replaces it and everything after it."), 1
        )
        self.cancel_edit_button = QPushButton("Cancel edit")
        named(self.cancel_edit_button, "Cancel edit")
        banner_layout.addWidget(self.cancel_edit_button)
        self.edit_banner.setVisible(False)
        self.composer = Composer()
        self.send_button = QPushButton(icon("send"), "Send")
        self.send_button.setProperty("role", "primary")
        named(self.send_button, "Send", "Send the message (Enter)")
        self.stop_button = QPushButton(icon("stop"), "Stop")
        self.stop_button.setToolTip("Stop the reply (Esc)")
        named(self.stop_button, "Stop the reply")
        self.stop_button.setVisible(False)
        composer_row = QHBoxLayout()
        composer_row.addWidget(self.composer, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        composer_row.addLayout(buttons)
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(8, 12, 8, 8)
        middle_layout.addLayout(header)
        middle_layout.addWidget(self.title)
        middle_layout.addWidget(self.format_label)
        middle_layout.addWidget(self.base_model_bar)
        middle_layout.addWidget(self.messages, 1)
        middle_layout.addWidget(self.notice)
        middle_layout.addWidget(self.edit_banner)
        middle_layout.addLayout(composer_row)

        self.settings_panel = SettingsPanel()
        self.settings_panel.setVisible(False)
        self.settings_button.toggled.connect(self.settings_panel.setVisible)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(middle)
        splitter.addWidget(self.settings_panel)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.middle = middle
        self.model_picker.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def main_field(self) -> QWidget:
        """Where the keyboard focus goes when the page opens."""
        return self.composer

    def show_notice(self, text: str, kind: str = "warning") -> None:
        """A one-line note above the composer; empty hides it.

        ``kind`` picks the colour: "warning" (errors, dropped turns) or "success" (done).
        """
        if self.notice.property("kind") != kind:
            self.notice.setProperty("kind", kind)
            self.notice.style().unpolish(self.notice)
            self.notice.style().polish(self.notice)
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def set_generating(self, generating: bool) -> None:
        """Swap Send for Stop while a reply is written."""
        self.send_button.setVisible(not generating)
        self.stop_button.setVisible(generating)
