"""Step 2's plan choices beyond the type: the importance matrix, and the token embedding and
output tensor types with what each would weigh.

Why here and small: the type table already predicts whole-file sizes; these choices re-run that
preview (`pipeline.size_preview` with them), while the tensor sizes beside each choice come from
the header alone (`optimize.sizes.tensor_bytes`), cheap enough for the GUI thread.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from slmdesk.models.quant_types import TENSOR_TYPES
from slmdesk.models.row_types import EMBEDDING, OUTPUT, row_type_problem
from slmdesk.optimize.sizes import tensor_bytes
from slmdesk.ui.accessibility import named
from slmdesk.ui.format import human_size

DEFAULT_LABEL = "Default (llama.cpp's choice)"


class PlanOptions(QWidget):
    """The importance-matrix switch and the embedding and output type choices."""

    changed = Signal()  # a choice changed: the sizes must be predicted again

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.imatrix = QCheckBox(
            "Use an importance matrix where it helps (K-quants below 5 bits, IQ types)"
        )
        self.imatrix.setChecked(True)
        named(
            self.imatrix,
            "Use an importance matrix",
            "Measured once on the calibration text; needed by the 1- to 3-bit IQ types",
        )
        layout.addWidget(self.imatrix)
        row = QHBoxLayout()
        self.embedding = QComboBox()
        self.output = QComboBox()
        self.embedding_label = QLabel("Embedding:")
        self.output_label = QLabel("Output:")
        self.embedding_label.setBuddy(self.embedding)
        self.output_label.setBuddy(self.output)
        named(self.embedding, "Token embedding type")
        named(self.output, "Output tensor type")
        for label, combo in (
            (self.embedding_label, self.embedding),
            (self.output_label, self.output),
        ):
            row.addWidget(label)
            row.addWidget(combo)
        row.addStretch(1)
        layout.addLayout(row)
        self.note = QLabel("")
        self.note.setProperty("role", "muted")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.imatrix.toggled.connect(self.changed)
        self.embedding.currentIndexChanged.connect(self._on_combo)
        self.output.currentIndexChanged.connect(self._on_combo)
        self._filling = False

    def _on_combo(self) -> None:
        if not self._filling:
            self.changed.emit()

    def set_model(self, info: Any) -> None:
        """Offer the types this model's rows can take, each with the size it gives the tensor."""
        shapes = {t.name: t.shape for t in info.tensors}
        sizes = {t.name: t.n_elements for t in info.tensors}
        tied = OUTPUT not in shapes
        self._filling = True
        try:
            for combo, name in ((self.embedding, EMBEDDING), (self.output, OUTPUT)):
                combo.clear()
                combo.addItem(DEFAULT_LABEL, None)
                if name not in shapes:
                    continue
                for kind in TENSOR_TYPES:
                    wanted = (kind, None) if name == EMBEDDING else (None, kind)
                    if row_type_problem({name: shapes[name]}, *wanted) is None:
                        size = human_size(tensor_bytes(sizes[name], kind))
                        combo.addItem(f"{kind} — {size}", kind)
        finally:
            self._filling = False
        self.output.setVisible(not tied)
        self.output_label.setVisible(not tied)
        current = {t.name: t.type_name for t in info.tensors}
        if tied:
            self.note.setText(
                f"The embedding is also the output in this model (now {current.get(EMBEDDING)}, "
                f"{human_size(_source_bytes(info, EMBEDDING))}): in small models it holds most "
                "of the bytes."
            )
        else:
            self.note.setText(
                f"Now: embedding {current.get(EMBEDDING)}, output {current.get(OUTPUT)}. In "
                "small models these two hold a large share of the bytes."
            )

    def choices(self) -> tuple[bool | None, str | None, str | None]:
        """(imatrix: None = where it helps, or False), embedding type, output type."""
        imatrix = None if self.imatrix.isChecked() else False
        return imatrix, self.embedding.currentData(), self.output.currentData()

    def key(self) -> str:
        """The choices as a cache key for predicted sizes."""
        return repr(self.choices())


def _source_bytes(info: Any, name: str) -> int:
    return next((int(t.n_bytes) for t in info.tensors if t.name == name), 0)
