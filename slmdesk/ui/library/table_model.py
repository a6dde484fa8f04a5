"""A Qt table model over library entries, sortable by real values (bytes, counts, dates)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QGuiApplication, QPalette

from slmdesk.models.library import ModelEntry
from slmdesk.ui.format import human_count, human_size

COLUMNS = ("Name", "Architecture", "Parameters", "Quantization", "Size", "Context", "Added")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ENTRY_ROLE = Qt.ItemDataRole.UserRole + 2

_Index = QModelIndex | QPersistentModelIndex
# How an entry that cannot be used is marked after its name; the reason is in its tooltip.
STATUS_LABELS = {
    "invalid": "damaged",
    "missing": "missing",
    "unavailable": "drive or folder not available",
}


class LibraryTableModel(QAbstractTableModel):
    """Rows are `ModelEntry` objects; replaced wholesale after each (background) scan."""

    def __init__(self) -> None:
        super().__init__()
        self._entries: list[ModelEntry] = []

    def set_entries(self, entries: list[ModelEntry]) -> None:
        """Show a new list of entries."""
        self.beginResetModel()
        self._entries = list(entries)
        self.endResetModel()

    def entries(self) -> list[ModelEntry]:
        """The entries shown."""
        return list(self._entries)

    def row_of(self, name: str) -> int:
        """Row of the entry called ``name``, or -1."""
        for row, entry in enumerate(self._entries):
            if entry.name == name:
                return row
        return -1

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        entry = self._entries[index.row()]
        column = index.column()
        if role == ENTRY_ROLE:
            return entry
        facts = entry.facts
        values: list[tuple[Any, Any]] = [
            (entry.name, entry.name.lower()),
            (entry.architecture or "—", entry.architecture or ""),
            (human_count(facts.get("parameters")), facts.get("parameters") or 0),
            (entry.quantization or "—", entry.quantization or ""),
            (human_size(entry.size_bytes), entry.size_bytes),
            (
                f"{facts['context_length']:,}" if facts.get("context_length") else "—",
                facts.get("context_length") or 0,
            ),
            (
                dt.datetime.fromtimestamp(entry.added_at).strftime("%Y-%m-%d")
                if entry.added_at
                else "",
                entry.added_at,
            ),
        ]
        display, sort_key = values[column]
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0 and entry.status != "ok":
                return f"{entry.name}  ({STATUS_LABELS.get(entry.status, entry.status)})"
            return display
        if role == SORT_ROLE:
            return sort_key
        if role == Qt.ItemDataRole.ToolTipRole:
            where = entry.error or str(entry.path)
            return f"{entry.name}\n{where}" if column == 0 else where
        if role == Qt.ItemDataRole.ForegroundRole and entry.status == "unavailable":
            # greyed: the model is known but its drive or folder is not there now
            return QGuiApplication.palette().brush(
                QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text
            )
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (2, 4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
