"""Settings › Models folder: where models are stored, its free space, and changing or moving it.

Everything that touches the disk runs as a job on the task pool (the GUI thread only shows
results): reading the folder's facts, switching the folder, and a move (copy, verify, remove; on
a dedicated thread, since it can take minutes). The move reports bytes done and the model being
copied; Cancel rolls it back between 8 MiB chunks. The library announces the moved models, so
the Library page re-lists; `folder_changed` says the folder itself changed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.common.errors import SlmdeskError, user_message
from slmdesk.models.library import Library
from slmdesk.models.library.location import FolderInfo, folder_info, use_folder
from slmdesk.models.library.move import move_models
from slmdesk.ui.accessibility import named
from slmdesk.ui.elided import ElidedLabel
from slmdesk.ui.format import human_size
from slmdesk.ui.runtime.jobs import Job, JobContext
from slmdesk.ui.runtime.tasks import TaskRunner

log = logging.getLogger("slmdesk.ui.settings")

MOVE = "move"
KEEP = "keep"
_SCALE = 1000  # the progress bar counts per mille: byte counts overflow its int
_ERROR_STYLE = "background: #fde8e8; color: #6b1a1a; border-radius: 6px; padding: 6px 10px;"


def pick_folder(parent: QWidget | None, start: Path) -> Path | None:
    """The folder dialog (replaced in tests)."""
    chosen = QFileDialog.getExistingDirectory(parent, "Choose the models folder", str(start))
    return Path(chosen) if chosen else None


def ask_move(parent: QWidget | None, info: FolderInfo, target: Path) -> str | None:
    """Move the stored models along (`MOVE`), leave them where they are (`KEEP`), or None."""
    box = QMessageBox(
        QMessageBox.Icon.Question,
        "Models folder",
        f"New models will be stored in\n{target}\n\nMove the {info.models} model(s) already "
        f"stored ({human_size(info.bytes)}) there too? They are copied, checked, then removed "
        "from the old folder. Models left behind stay listed where they are.",
        parent=parent,
    )
    move = box.addButton("Move them", QMessageBox.ButtonRole.AcceptRole)
    keep = box.addButton("Leave them", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(move)
    box.exec()
    clicked = box.clickedButton()
    return MOVE if clicked is move else KEEP if clicked is keep else None


class ModelsFolderSection(QGroupBox):
    """Shows the models folder and changes or moves it in the background."""

    folder_changed = Signal(str)  # the new folder, once a change or a move has finished

    def __init__(self, library: Library, tasks: TaskRunner) -> None:
        super().__init__("Models folder")
        self.library = library
        self.tasks = tasks
        self.info: FolderInfo | None = None
        self.job: Job | None = None
        self._loaded = False
        layout = QVBoxLayout(self)
        self.path_label = ElidedLabel("")
        self.details = QLabel("Checking…")
        self.details.setProperty("role", "muted")
        self.change_button = named(QPushButton("Change…"), "Change the models folder")
        self.open_button = named(QPushButton("Open"), "Open the models folder")
        self.change_button.clicked.connect(self._on_change)
        self.open_button.clicked.connect(self._on_open)
        row = QHBoxLayout()
        row.addWidget(self.path_label, 1)
        row.addWidget(self.open_button)
        row.addWidget(self.change_button)
        layout.addLayout(row)
        layout.addWidget(self.details)
        self.progress = QProgressBar()
        self.progress.setRange(0, _SCALE)
        self.progress.setTextVisible(True)
        named(self.progress, "Models folder move progress")
        self.cancel_button = named(QPushButton("Cancel"), "Cancel moving the models")
        self.cancel_button.clicked.connect(self._on_cancel)
        move_row = QHBoxLayout()
        move_row.addWidget(self.progress, 1)
        move_row.addWidget(self.cancel_button)
        layout.addLayout(move_row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setProperty("role", "muted")
        layout.addWidget(self.status)
        self._show_running(False)
        self.status.setVisible(False)

    def showEvent(self, event: QShowEvent) -> None:
        """Read the folder's facts the first time the section is seen (on the task pool)."""
        super().showEvent(event)
        if not self._loaded:
            self._loaded = True
            self.refresh()

    def refresh(self) -> None:
        """Read the folder, its free space and its models again, in the background."""
        self.tasks.run(
            lambda: folder_info(self.library), self._on_info, self._on_failed, "models-folder"
        )

    @Slot(object)
    def _on_info(self, info: FolderInfo) -> None:
        self.info = info
        self.path_label.setText(str(info.path))
        free = (
            "free space unknown"
            if info.free_bytes is None
            else f"{human_size(info.free_bytes)} free"
        )
        self.details.setText(f"{free} · {info.models} model(s), {human_size(info.bytes)}")

    @Slot()
    def _on_open(self) -> None:
        if self.info is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.info.path)))

    @Slot()
    def _on_change(self) -> None:
        start = self.info.path if self.info is not None else Path.home()
        target = pick_folder(self, start)
        if target is None:
            return
        self.change_button.setEnabled(False)
        # the question names what would move, so the facts are read (off this thread) first
        self.tasks.run(
            lambda: folder_info(self.library),
            lambda info: self._on_info_for_change(info, target),
            self._on_failed,
            "models-folder",
        )

    def _on_info_for_change(self, info: FolderInfo, target: Path) -> None:
        self._on_info(info)
        choice = ask_move(self, info, target) if info.models else KEEP
        if choice is None:
            self.change_button.setEnabled(True)
            return
        self.start_change(target, move=choice == MOVE)

    def start_change(self, target: Path, move: bool) -> Job:
        """Switch to ``target`` (moving the stored models along when ``move``) as a job."""
        library = self.library

        def work(context: JobContext) -> FolderInfo:
            if move:
                move_models(
                    library,
                    target,
                    progress=lambda done, total, name: context.report((done, total, name)),
                    cancel=context.cancelled,
                )
                return folder_info(library)
            return use_folder(library, target)

        self._set_status("")
        self.progress.setValue(0)
        self.progress.setFormat("Checking…")
        self._show_running(True)
        self.change_button.setEnabled(False)
        job = self.tasks.start(work, "models-folder-move", dedicated=move)
        job.progress.connect(self._on_progress)
        job.succeeded.connect(self._on_changed)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        job.ended.connect(self._on_ended)
        self.job = job
        return job

    @Slot(object)
    def _on_progress(self, value: tuple[int, int, str]) -> None:
        done, total, name = value
        self.progress.setValue(int(done * _SCALE / total) if total else _SCALE)
        what = f"Moving {name}" if name else "Finishing"
        self.progress.setFormat(f"{what}… {human_size(done)} of {human_size(total)}")

    @Slot()
    def _on_cancel(self) -> None:
        if self.job is not None:
            self.cancel_button.setEnabled(False)
            self.job.cancel()

    @Slot(object)
    def _on_changed(self, info: FolderInfo) -> None:
        self._on_info(info)
        self._set_status(f"New models are stored in {info.path}.")
        self.folder_changed.emit(str(info.path))

    @Slot(object)
    def _on_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, SlmdeskError | OSError):
            log.error("models folder change failed", exc_info=exc)
        message = (
            f"The models folder could not be changed: {(exc.strerror or str(exc)).lower()}."
            if isinstance(exc, OSError) and not isinstance(exc, SlmdeskError)
            else user_message(exc)
        )
        self._set_status(message, error=True)
        self.change_button.setEnabled(True)

    @Slot()
    def _on_cancelled(self) -> None:
        self._set_status("The move was cancelled; every model stays where it was.")

    @Slot()
    def _on_ended(self) -> None:
        self.job = None
        self._show_running(False)
        self.change_button.setEnabled(True)
        self.refresh()

    def _show_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(_ERROR_STYLE if error else "")
        self.status.setVisible(bool(text))
