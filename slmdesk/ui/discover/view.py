"""Layout of the Discover page: search results, a repository's files and card, the downloads."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from slmdesk.common.format import printable
from slmdesk.hub.downloads import DownloadStatus, State
from slmdesk.ui.accessibility import named
from slmdesk.ui.format import human_duration, human_size
from slmdesk.ui.theme import icon

SORTS = (("Most downloaded", "downloads"), ("Most liked", "likes"), ("Recently updated", "updated"))
RESULT_COLUMNS = ("Repository", "Downloads", "Likes", "Updated", "License")
FILE_COLUMNS = ("File", "Quantization", "Size", "Memory", "Fit", "")


class DownloadRow(QFrame):
    """One download: name, progress, speed and time left, and what can be done with it."""

    pause_clicked = Signal(str)
    resume_clicked = Signal(str)
    cancel_clicked = Signal(str)
    dismiss_clicked = Signal(str)
    chat_clicked = Signal(str)

    def __init__(self, task_id: str) -> None:
        super().__init__()
        self.task_id = task_id
        self.setProperty("role", "card")
        self.library_name: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        top = QHBoxLayout()
        self.name = QLabel()
        self.name.setWordWrap(True)
        self.detail = QLabel()
        self.detail.setProperty("role", "muted")
        top.addWidget(self.name, 1)
        top.addWidget(self.detail)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(8)
        named(self.bar, "Download progress")
        buttons = QHBoxLayout()
        self.error = QLabel()
        self.error.setTextFormat(Qt.TextFormat.PlainText)  # messages quote names from the Hub
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d04242;")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel")
        self.dismiss_button = QPushButton("Dismiss")
        self.chat_button = QPushButton(icon("chat"), "Chat with it")
        for button, action in (
            (self.pause_button, "Pause"),
            (self.resume_button, "Resume"),
            (self.cancel_button, "Cancel"),
            (self.dismiss_button, "Dismiss"),
            (self.chat_button, "Chat with"),
        ):
            named(button, f"{action} the download")
        buttons.addWidget(self.error, 1)
        buttons.addStretch(1)
        for button in (
            self.chat_button,
            self.pause_button,
            self.resume_button,
            self.cancel_button,
            self.dismiss_button,
        ):
            buttons.addWidget(button)
        layout.addLayout(top)
        layout.addWidget(self.bar)
        layout.addLayout(buttons)
        self.pause_button.clicked.connect(lambda: self.pause_clicked.emit(task_id))
        self.resume_button.clicked.connect(lambda: self.resume_clicked.emit(task_id))
        self.cancel_button.clicked.connect(lambda: self.cancel_clicked.emit(task_id))
        self.dismiss_button.clicked.connect(lambda: self.dismiss_clicked.emit(task_id))
        self.chat_button.clicked.connect(lambda: self.chat_clicked.emit(self.library_name or ""))

    def show_status(self, status: DownloadStatus) -> None:
        """Reflect a status snapshot."""
        name, repo_id = (html.escape(printable(text)) for text in (status.name, status.repo_id))
        self.name.setText(f"<b>{name}</b> <span style='color:gray'>{repo_id}</span>")
        self.bar.setValue(int(status.fraction * 1000))
        state = status.state
        done, total = human_size(status.done_bytes), human_size(status.total_bytes)
        if state == State.DOWNLOADING:
            eta = f", {human_duration(status.eta_seconds)} left" if status.eta_seconds else ""
            self.detail.setText(f"{done} of {total} · {human_size(status.speed_bps)}/s{eta}")
        elif state == State.VERIFYING:
            self.detail.setText("verifying SHA-256…")
        elif state == State.QUEUED:
            self.detail.setText(f"queued · {done} of {total}")
        elif state == State.PAUSED:
            self.detail.setText(f"paused · {done} of {total}")
        elif state == State.DONE and status.duplicate_of:
            self.detail.setText(
                f"already in your library as {html.escape(printable(status.duplicate_of))}"
            )
        elif state == State.DONE:
            self.detail.setText(f"ready · {total}, verified")
        elif state == State.FAILED:
            self.detail.setText("failed")
        elif state == State.CANCELLED:
            self.detail.setText("cancelled")
        self.error.setText(printable(status.error or ""))
        self.error.setVisible(bool(status.error) and state == State.FAILED)
        running = state in (State.QUEUED, State.DOWNLOADING, State.VERIFYING)
        self.pause_button.setVisible(running)
        self.resume_button.setVisible(
            state == State.PAUSED or (state == State.FAILED and status.retryable)
        )
        self.resume_button.setText("Retry" if state == State.FAILED else "Resume")
        self.cancel_button.setVisible(running or state in (State.PAUSED, State.FAILED))
        self.dismiss_button.setVisible(state in (State.DONE, State.CANCELLED, State.FAILED))
        self.library_name = status.library_name
        self.chat_button.setVisible(state == State.DONE and bool(status.library_name))


class DiscoverView(QWidget):
    """All widgets of the Discover page."""

    def __init__(self) -> None:
        super().__init__()
        title = QLabel("Discover")
        title.setProperty("role", "title")
        self.query = QLineEdit()
        self.query.setPlaceholderText(
            "Search GGUF models on the Hugging Face Hub (e.g. qwen, gemma, smol)"
        )
        self.query.setClearButtonEnabled(True)
        named(self.query, "Search models", "GGUF models on the Hugging Face Hub, or owner/name")
        self.sort = QComboBox()
        for label, value in SORTS:
            self.sort.addItem(label, value)
        self.search_button = QPushButton(icon("discover"), "Search")
        self.search_button.setProperty("role", "primary")
        named(self.sort, "Sort results by")
        named(self.search_button, "Search")
        search_row = QHBoxLayout()
        search_row.addWidget(title)
        search_row.addSpacing(12)
        search_row.addWidget(self.query, 1)
        search_row.addWidget(self.sort)
        search_row.addWidget(self.search_button)
        self.status = QLabel("Search for a model, or type a repository name such as owner/name.")
        self.status.setProperty("role", "muted")
        self.status.setWordWrap(True)

        self.results = QTableWidget(0, len(RESULT_COLUMNS))
        self.results.setHorizontalHeaderLabels(RESULT_COLUMNS)
        self.results.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.verticalHeader().setVisible(False)
        self.results.setShowGrid(False)
        self.results.setWordWrap(False)
        self.results.setTabKeyNavigation(False)  # Tab leaves the table; arrows move inside it
        named(self.results, "Search results", "Repositories; select one to see its files")
        self.results.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # repository ids share prefixes and suffixes ("…/gemma-3-270m-it-GGUF"): keep both ends
        self.results.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        for col in range(1, len(RESULT_COLUMNS)):
            self.results.horizontalHeader().setSectionResizeMode(
                col, QHeaderView.ResizeMode.ResizeToContents
            )

        self.repo_title = QLabel("")
        self.repo_title.setProperty("role", "title")
        self.repo_title.setWordWrap(True)
        self.repo_meta = QLabel("")
        self.repo_meta.setProperty("role", "muted")
        self.repo_meta.setWordWrap(True)
        self.files = QTableWidget(0, len(FILE_COLUMNS))
        self.files.setHorizontalHeaderLabels(FILE_COLUMNS)
        self.files.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.files.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.files.verticalHeader().setVisible(False)
        self.files.setShowGrid(False)
        self.files.setWordWrap(False)
        self.files.setTabKeyNavigation(False)
        named(self.files, "Model files", "The repository's GGUF files and whether they fit")
        self.files.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.files.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        for col in range(1, len(FILE_COLUMNS)):
            self.files.horizontalHeader().setSectionResizeMode(
                col, QHeaderView.ResizeMode.ResizeToContents
            )
        self.file_facts = QLabel("")
        self.file_facts.setProperty("role", "muted")
        self.file_facts.setWordWrap(True)
        named(self.file_facts, "Selected file", "What the selected file's own header says")
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(False)
        self.card.setOpenLinks(False)
        named(self.card, "Model card")
        repo = QWidget()
        repo_layout = QVBoxLayout(repo)
        repo_layout.setContentsMargins(0, 0, 0, 0)
        repo_layout.addWidget(self.repo_title)
        repo_layout.addWidget(self.repo_meta)
        repo_split = QSplitter(Qt.Orientation.Vertical)
        repo_split.addWidget(self.files)
        repo_split.addWidget(self.card)
        repo_split.setSizes([260, 240])
        repo_layout.addWidget(repo_split, 1)
        repo_layout.addWidget(self.file_facts)
        self.repo_panel = repo
        self.repo_panel.setVisible(False)

        split = QSplitter()
        split.addWidget(self.results)
        split.addWidget(repo)
        # an open repository takes half: the results keep room for their repository names
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([600, 600])

        self.notice = QFrame()
        self.notice.setProperty("role", "card")
        notice_layout = QHBoxLayout(self.notice)
        self.notice_text = QLabel()
        self.notice_text.setWordWrap(True)
        self.notice_chat = QPushButton(icon("chat"), "Chat with it")
        self.notice_close = QPushButton("Close")
        named(self.notice_chat, "Chat with the downloaded model")
        named(self.notice_close, "Close the notice")
        notice_layout.addWidget(self.notice_text, 1)
        notice_layout.addWidget(self.notice_chat)
        notice_layout.addWidget(self.notice_close)
        self.notice.setVisible(False)
        self.notice_close.clicked.connect(lambda: self.notice.setVisible(False))

        downloads_title = QLabel("<b>Downloads</b>")
        self.downloads_empty = QLabel("Nothing downloading.")
        self.downloads_empty.setProperty("role", "muted")
        self.downloads_box = QWidget()
        self.downloads_layout = QVBoxLayout(self.downloads_box)
        self.downloads_layout.setContentsMargins(0, 0, 0, 0)
        self.downloads_layout.addWidget(self.downloads_empty)
        self.downloads_layout.addStretch(1)
        downloads_scroll = QScrollArea()
        downloads_scroll.setWidgetResizable(True)
        downloads_scroll.setWidget(self.downloads_box)
        downloads_scroll.setFrameShape(QFrame.Shape.NoFrame)
        downloads_scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # its rows' buttons take focus
        downloads = QWidget()
        downloads_layout = QVBoxLayout(downloads)
        downloads_layout.setContentsMargins(0, 4, 0, 0)
        downloads_layout.addWidget(downloads_title)
        downloads_layout.addWidget(downloads_scroll, 1)

        outer = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(split)
        outer.addWidget(downloads)
        outer.setStretchFactor(0, 3)
        outer.setStretchFactor(1, 1)
        outer.setSizes([520, 170])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 12)
        layout.addLayout(search_row)
        layout.addWidget(self.status)
        layout.addWidget(self.notice)
        layout.addWidget(outer, 1)

    def main_field(self) -> QWidget:
        """Where the keyboard focus goes when the page opens."""
        return self.query

    def add_download_row(self, row: DownloadRow) -> None:
        """Put a download at the top of the list."""
        self.downloads_layout.insertWidget(0, row)
        self.downloads_empty.setVisible(False)

    def remove_download_row(self, row: DownloadRow) -> None:
        """Take a download off the list."""
        self.downloads_layout.removeWidget(row)
        row.deleteLater()
        has_rows = any(
            isinstance(self.downloads_layout.itemAt(i).widget(), DownloadRow)
            and self.downloads_layout.itemAt(i).widget() is not row
            for i in range(self.downloads_layout.count())
        )
        self.downloads_empty.setVisible(not has_rows)
