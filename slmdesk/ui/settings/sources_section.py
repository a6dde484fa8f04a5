"""Settings › Models from other apps: the folders the library reads models from in place.

One row per known app (Hugging Face cache, LM Studio, Ollama, GPT4All, Jan) with a check box (on
by default when its folder is found), then the folders the user added, each with a Remove
button, and "Add folder…". Reading and changing the choices touches the library index, so it all
runs on the task pool; the rows are rebuilt when the answer arrives. Changes reach the Library
page through the library's own change events.
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.common.errors import SlmdeskError
from slmdesk.models.library import Library
from slmdesk.models.library.sources.catalog import Source
from slmdesk.ui import dialogs
from slmdesk.ui.accessibility import named
from slmdesk.ui.library import source_dialogs
from slmdesk.ui.runtime.tasks import TaskRunner


class SourcesSection(QGroupBox):
    """The other apps' folders, with a switch each; folders can be added and removed."""

    shown = Signal()  # the rows were (re)built: tests wait on it

    def __init__(self, library: Library, tasks: TaskRunner) -> None:
        super().__init__("Models from other apps")
        self.library = library
        self.tasks = tasks
        self.checks: dict[str, QCheckBox] = {}
        self.remove_buttons: dict[str, QPushButton] = {}
        layout = QVBoxLayout(self)
        intro = QLabel(
            "slmdesk lists the GGUF models these apps keep, where they are: nothing is copied. "
            "Turn an app off to hide its models. Removing such a model only forgets it unless "
            "you choose to delete the file."
        )
        intro.setWordWrap(True)
        intro.setProperty("role", "muted")
        layout.addWidget(intro)
        self._rows_host = QWidget()
        self._rows = QGridLayout(self._rows_host)
        self._rows.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._rows_host)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add folder…")
        named(self.add_button, "Add a folder of models", "Its models are listed where they are")
        self.add_button.clicked.connect(self._on_add)
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.reload()

    def reload(self) -> None:
        """Read the sources again (on the task pool) and show them."""
        self.tasks.run(self.library.sources, self._show, self._on_error, name="sources-read")

    def _show(self, sources: list[Source]) -> None:
        while self._rows.count():
            item = self._rows.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.checks.clear()
        self.remove_buttons.clear()
        for row, source in enumerate(sources):
            state = (
                "found" if source.found else ("not available now" if source.added else "not found")
            )
            path = QLabel(f"{source.path}  ({state})")
            path.setProperty("role", "muted")
            path.setWordWrap(True)
            if source.added:
                label = QLabel(f"{source.title} (added)")
                remove = QPushButton("Remove")
                named(remove, f"Stop reading {source.path}", "The files stay where they are")
                remove.clicked.connect(lambda _=False, p=str(source.path): self._on_remove(p))
                self.remove_buttons[str(source.path)] = remove
                self._rows.addWidget(label, row, 0)
                self._rows.addWidget(path, row, 1)
                self._rows.addWidget(remove, row, 2)
                continue
            check = QCheckBox(source.title)
            check.setChecked(source.enabled and source.found)
            check.setEnabled(source.found)
            named(check, f"List models from {source.title}", str(source.path))
            check.toggled.connect(lambda on, app=source.app: self._on_toggled(app, on))
            self.checks[source.app] = check
            self._rows.addWidget(check, row, 0)
            self._rows.addWidget(path, row, 1, 1, 2)
        self._rows.setColumnStretch(1, 1)
        self.shown.emit()

    def _on_toggled(self, app: str, on: bool) -> None:
        self.tasks.run(
            lambda: self.library.set_app_enabled(app, on),
            lambda _r: self.reload(),
            self._on_error,
            name="sources-change",
        )

    @Slot()
    def _on_add(self) -> None:
        folder = source_dialogs.pick_folder(self)
        if not folder:
            return
        self.tasks.run(
            lambda: self.library.add_source_folder(folder),
            lambda _r: self.reload(),
            self._on_error,
            name="sources-change",
        )

    def _on_remove(self, folder: str) -> None:
        self.tasks.run(
            lambda: self.library.remove_source_folder(folder),
            lambda _r: self.reload(),
            self._on_error,
            name="sources-change",
        )

    def _on_error(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, SlmdeskError) else f"Unexpected problem: {exc}"
        dialogs.show_error(self, "Models from other apps", message)
        self.reload()
