"""Layout of the Library page: a sortable table, a details pane, import and remove actions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from slmdesk.models.hardware import MemoryEstimate
from slmdesk.models.library import ModelEntry
from slmdesk.ui.accessibility import named
from slmdesk.ui.format import human_count, human_size
from slmdesk.ui.library.table_model import SORT_ROLE, LibraryTableModel
from slmdesk.ui.theme import icon, verdict_style


def _gguf_paths(event: QDragEnterEvent | QDropEvent) -> list[Path]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [
        Path(url.toLocalFile())
        for url in mime.urls()
        if url.isLocalFile() and url.toLocalFile().lower().endswith(".gguf")
    ]


class DetailsPane(QScrollArea):
    """The facts of the selected model, its memory verdict and its provenance."""

    chat_clicked = Signal()
    reveal_clicked = Signal()
    remove_clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setMinimumWidth(300)
        named(self, "Model details", "Facts of the selected model; arrow keys scroll")
        body = QWidget()
        layout = QVBoxLayout(body)
        self.title = QLabel("Select a model")
        self.title.setProperty("role", "title")
        self.title.setWordWrap(True)
        self.subtitle = QLabel("")
        self.subtitle.setProperty("role", "muted")
        self.subtitle.setWordWrap(True)
        self.subtitle.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict = QLabel("")
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self.memory = QLabel("")
        self.memory.setWordWrap(True)
        self.memory.setProperty("role", "muted")
        self.form = QFormLayout()
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        buttons = QHBoxLayout()
        self.chat_button = QPushButton(icon("chat"), "Chat")
        self.chat_button.setProperty("role", "primary")
        self.reveal_button = QPushButton(icon("folder"), "Show in folder")
        self.remove_button = QPushButton(icon("remove"), "Remove…")
        for button in (self.chat_button, self.reveal_button, self.remove_button):
            buttons.addWidget(button)
        named(self.chat_button, "Chat with this model")
        named(self.reveal_button, "Show the model's file in its folder")
        named(self.remove_button, "Remove this model", "Asks first (Delete key in the table)")
        buttons.addStretch(1)
        self.chat_button.clicked.connect(self.chat_clicked)
        self.reveal_button.clicked.connect(self.reveal_clicked)
        self.remove_button.clicked.connect(self.remove_clicked)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        verdict_row = QHBoxLayout()
        verdict_row.addWidget(self.verdict)
        verdict_row.addWidget(self.memory, 1)
        layout.addLayout(verdict_row)
        layout.addLayout(buttons)
        layout.addLayout(self.form)
        layout.addStretch(1)
        self.setWidget(body)
        self.show_entry(None)

    def show_entry(self, entry: ModelEntry | None) -> None:
        """Fill the pane for ``entry`` (None clears it)."""
        while self.form.rowCount():
            self.form.removeRow(0)
        enabled = entry is not None
        for button in (self.chat_button, self.reveal_button, self.remove_button):
            button.setEnabled(enabled)
        self.verdict.setVisible(False)
        self.memory.setText("")
        if entry is None:
            self.title.setText("Select a model")
            self.subtitle.setText("Its details appear here.")
            return
        self.title.setText(entry.name)
        self.subtitle.setText(str(entry.path))
        self.chat_button.setEnabled(entry.status == "ok")
        if entry.status != "ok":
            self.memory.setText(entry.error or entry.status)
            return
        facts = entry.facts
        rows: list[tuple[str, str]] = [
            ("Architecture", str(facts.get("architecture") or "—")),
            (
                "Parameters",
                f"{human_count(facts.get('parameters'))} ({facts.get('parameters', 0):,})",
            ),
            ("Blocks", str(facts.get("block_count") or "—")),
            ("Quantization", str(facts.get("quantization") or "—")),
            ("Size on disk", human_size(entry.size_bytes)),
            ("Context length", f"{facts.get('context_length') or 0:,} tokens"),
            ("Heads / KV heads", f"{facts.get('head_count')} / {facts.get('head_count_kv')}"),
            (
                "Chat template",
                "built in"
                if facts.get("has_chat_template")
                else "none (a fallback format is used)",
            ),
            (
                "Tokenizer",
                f"{facts.get('tokenizer_model')} · {facts.get('vocab_size', 0):,} tokens",
            ),
            ("License", str(facts.get("license") or "—")),
            ("Stored", "in the models folder" if entry.managed else "in place (linked)"),
        ]
        if entry.added_at:
            rows.append(
                ("Added", dt.datetime.fromtimestamp(entry.added_at).strftime("%Y-%m-%d %H:%M"))
            )
        mix = facts.get("tensor_types") or {}
        if mix:
            rows.append(("Tensor types", ", ".join(f"{k} {human_size(v)}" for k, v in mix.items())))
        for key, value in _provenance_rows(entry.provenance):
            rows.append((key, value))
        for key, value in rows:
            label = QLabel(value)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.form.addRow(f"{key}:", label)

    def show_memory(self, estimate: MemoryEstimate | None) -> None:
        """Show the memory verdict once it has been computed."""
        if estimate is None:
            return
        self.verdict.setText(estimate.verdict)
        self.verdict.setStyleSheet(verdict_style(estimate.verdict))
        self.verdict.setVisible(True)
        text = (
            f"needs about {human_size(estimate.total_bytes)} of memory at "
            f"{estimate.context_length:,} tokens of context"
        )
        if estimate.gpu_layers:
            text += (
                f"; {estimate.gpu_layers} layers ({human_size(estimate.device_bytes)}) go to the "
                f"GPU, {human_size(estimate.ram_bytes)} stays in the computer's memory"
            )
        self.memory.setText(text)


def _provenance_rows(provenance: dict) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if not provenance:
        return rows
    if provenance.get("source") == "hub":
        rows.append(("Downloaded from", f"{provenance.get('repo')} / {provenance.get('file')}"))
    elif provenance.get("source"):
        rows.append(("Source", str(provenance["source"])))
    if provenance.get("imported_from"):
        rows.append(("Imported from", str(provenance["imported_from"])))
    if provenance.get("removed_blocks") is not None:
        blocks = provenance.get("removed_blocks") or []
        rows.append(("Removed blocks", ", ".join(map(str, blocks)) or "none"))
    if provenance.get("type"):
        rows.append(("Quantized to", str(provenance["type"])))
    report = provenance.get("report") or {}
    quality = report.get("eval") if isinstance(report, dict) else None
    if isinstance(quality, dict) and quality.get("kld_mean") is not None:
        rows.append(
            (
                "Quality vs original",
                f"KL divergence {quality['kld_mean']:.3f}, top-1 agreement "
                f"{100 * float(quality.get('top1_agreement', 0)):.1f}%, perplexity "
                f"{quality.get('ppl', 0):.2f} (original {quality.get('ppl_reference', 0):.2f})",
            )
        )
    if provenance.get("calibration_sha256"):
        rows.append(("Calibration text", f"sha256 {str(provenance['calibration_sha256'])[:12]}…"))
    return rows


class LibraryView(QWidget):
    """The Library page's widgets. It emits intents; `LibraryController` acts on them."""

    files_dropped = Signal(list)

    def __init__(self) -> None:
        super().__init__()
        self.setAcceptDrops(True)
        self.table_model = LibraryTableModel()
        self.proxy = QSortFilterProxyModel()
        self.proxy.setSourceModel(self.table_model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)

        title = QLabel("Library")
        title.setProperty("role", "title")
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter models…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setMaximumWidth(260)
        named(self.filter_edit, "Filter models")
        self.import_button = QPushButton(icon("import"), "Import model…")
        self.import_button.setProperty("role", "primary")
        self.folder_button = QPushButton(icon("folder"), "Open models folder")
        named(self.import_button, "Import a model file")
        named(self.folder_button, "Open the models folder")
        header = QHBoxLayout()
        header.addWidget(title)
        header.addStretch(1)
        header.addWidget(self.filter_edit)
        header.addWidget(self.folder_button)
        header.addWidget(self.import_button)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move inside it
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        named(self.table, "Models", "F2 renames, Delete removes, Shift+F10 opens the menu")
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, 7):
            self.table.horizontalHeader().setSectionResizeMode(
                column, QHeaderView.ResizeMode.ResizeToContents
            )
        # similar names ("gemma-3-270m-…") differ at their ends: shorten in the middle
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)

        self.details = DetailsPane()
        splitter = QSplitter()
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        # the table (and its Name column) takes the room; the details keep a readable width
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([760, 340])

        self.empty = QFrame()
        empty_layout = QVBoxLayout(self.empty)
        empty_layout.addStretch(1)
        empty_title = QLabel("No models yet")
        empty_title.setProperty("role", "title")
        empty_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty_text = QLabel(
            "Import a .gguf file you already have (or drop it here), or find one in Discover."
        )
        empty_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty_text.setProperty("role", "muted")
        self.empty_import = QPushButton(icon("import"), "Import model…")
        self.empty_discover = QPushButton(icon("discover"), "Discover models")
        named(self.empty_import, "Import a model file")
        named(self.empty_discover, "Discover models on the Hub")
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.empty_import)
        row.addWidget(self.empty_discover)
        row.addStretch(1)
        empty_layout.addWidget(empty_title)
        empty_layout.addWidget(empty_text)
        empty_layout.addLayout(row)
        empty_layout.addStretch(2)

        self.stack = QStackedWidget()
        self.stack.addWidget(splitter)
        self.stack.addWidget(self.empty)

        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress.setMaximumWidth(240)
        named(self.progress, "Import progress")
        self.cancel_import = QPushButton("Cancel import")
        named(self.cancel_import, "Cancel import")
        self.cancel_import.setVisible(False)
        self.footer = QLabel("")
        self.footer.setProperty("role", "muted")
        footer = QHBoxLayout()
        footer.addWidget(self.footer, 1)
        footer.addWidget(self.progress)
        footer.addWidget(self.cancel_import)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 12)
        layout.addLayout(header)
        layout.addWidget(self.stack, 1)
        layout.addLayout(footer)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)

    def main_field(self) -> QWidget:
        """Where the keyboard focus goes when the page opens: the table, or the empty state."""
        return self.table if self.stack.currentWidget() is not self.empty else self.empty_import

    def selected_entry(self) -> ModelEntry | None:
        """The model selected in the table."""
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        source = self.proxy.mapToSource(rows[0])
        return self.table_model.entries()[source.row()]

    def select_name(self, name: str) -> None:
        """Select the row of ``name`` if shown."""
        row = self.table_model.row_of(name)
        if row < 0:
            return
        index = self.proxy.mapFromSource(self.table_model.index(row, 0))
        self.table.selectRow(index.row())

    def show_entries(self, entries: list[ModelEntry], total_bytes: int, models_dir: Path) -> None:
        """Replace the table's contents; show the empty state when there are none."""
        selected = self.selected_entry()
        self.table_model.set_entries(entries)
        self.stack.setCurrentWidget(self.empty if not entries else self.stack.widget(0))
        count = len(entries)
        self.footer.setText(
            f"{count} model{'s' if count != 1 else ''} · {human_size(total_bytes)} on disk · "
            f"models folder: {models_dir}"
        )
        if selected:
            self.select_name(selected.name)
        elif entries:
            self.table.selectRow(0)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _gguf_paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = _gguf_paths(event)
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)
