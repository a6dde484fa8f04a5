"""Wires the Library page to `slmdesk.models.library`: scans, imports, removals, details.

Every disk operation runs on the task pool; results come back to the GUI thread (`ui.runtime.tasks`).
The page re-lists the library when the library says it changed (`ui.library.events`), whoever
changed it (this page, a download, the optimizer), and tells the other pages through
`LibraryController.models_changed`: one scan per change, however many pages show models.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QPoint, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMenu

from slmdesk.common.errors import SlmdeskError
from slmdesk.llama.devices import estimate_on_this_machine
from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.models.hardware import MemoryEstimate
from slmdesk.models.library import ImportCancelled, Library, LibraryChange, ModelEntry
from slmdesk.models.library.events import ADDED, RENAMED
from slmdesk.models.model_settings import ModelSettings
from slmdesk.ui import dialogs
from slmdesk.ui.keyboard import item_shortcuts
from slmdesk.ui.library import source_dialogs
from slmdesk.ui.library.events import LibraryEvents
from slmdesk.ui.library.source_poll import SourcePoller
from slmdesk.ui.library.view import LibraryView
from slmdesk.ui.runtime.tasks import TaskRunner

log = logging.getLogger("slmdesk.ui.library")


class LibraryController(QObject):
    """Owns the Library page's behaviour; other pages listen to `models_changed`."""

    models_changed = Signal(list)  # list[ModelEntry], after every refresh
    chat_requested = Signal(str)  # model name
    discover_requested = Signal()
    _copy_progress = Signal(int, int)

    def __init__(self, view: LibraryView, library: Library, tasks: TaskRunner) -> None:
        super().__init__()
        self.view = view
        self.library = library
        self.tasks = tasks
        self._busy = False
        self._details_for: str | None = None
        self._scanning = False
        self._rescan = False
        self._select: str | None = None
        self._cancel_import = threading.Event()
        self.events = LibraryEvents(library)
        self.events.changed.connect(self._on_library_changed)
        # other apps' folders change behind our back: `app.py` starts the poll with the window
        self.source_poller = SourcePoller(library, tasks)
        view.import_button.clicked.connect(self._on_import_clicked)
        view.empty_import.clicked.connect(self._on_import_clicked)
        view.empty_discover.clicked.connect(self.discover_requested)
        view.folder_button.clicked.connect(self._on_open_folder)
        view.files_dropped.connect(self._on_files_dropped)
        view.table.selectionModel().selectionChanged.connect(self._on_selection)
        view.table.doubleClicked.connect(self._on_chat)
        view.details.chat_clicked.connect(self._on_chat)
        view.details.reveal_clicked.connect(self._on_reveal)
        view.details.remove_clicked.connect(self._on_remove)
        view.cancel_import.clicked.connect(self._on_cancel_import)
        view.table.customContextMenuRequested.connect(self._on_table_menu)
        item_shortcuts(view.table, rename=self.rename_selected, delete=self._on_remove)
        self._copy_progress.connect(self._on_copy_progress)

    # -- refresh -------------------------------------------------------------------------------

    def refresh(self, select: str | None = None) -> None:
        """Re-read the library in the background and show it.

        Calls made while a scan runs are folded into one more scan after it.
        """
        if select:
            self._select = select
        if self._scanning:
            self._rescan = True
            return
        self._scanning = True
        self.tasks.run(
            self.library.entries, self._on_entries, self._on_scan_failed, name="library-scan"
        )

    @Slot(object)
    def _on_library_changed(self, change: LibraryChange) -> None:
        """The library changed (here, in a download or in the optimizer): show it."""
        self.refresh(select=change.name if change.kind in (ADDED, RENAMED) else None)

    def _on_entries(self, entries: list[ModelEntry]) -> None:
        self._scanning = False
        if self._rescan:
            self._rescan = False
            self.refresh()
            return  # the newer listing is on its way
        select, self._select = self._select, None
        total = sum(e.size_bytes for e in entries if e.status != "missing")
        self.view.show_entries(entries, total, self.library.models_dir)
        if select:
            self.view.select_name(select)
        self._on_selection()
        self.models_changed.emit(entries)

    def _on_scan_failed(self, exc: BaseException) -> None:
        self._scanning = False
        self._rescan = False
        message = str(exc) if isinstance(exc, SlmdeskError) else f"Unexpected problem: {exc}"
        dialogs.show_error(self.view, "Library", message)

    # -- import --------------------------------------------------------------------------------

    @Slot()
    def import_with_dialog(self) -> None:
        """Ask for a GGUF file and import it."""
        self._on_import_clicked()

    @Slot()
    def _on_import_clicked(self) -> None:
        path = dialogs.pick_model_file(self.view)
        if path:
            self.import_paths([path])

    @Slot(list)
    def _on_files_dropped(self, paths: list[Path]) -> None:
        self.import_paths(paths)

    def import_paths(self, paths: list[Path], mode: str | None = None) -> None:
        """Import files, asking copy-or-link once; errors are shown, the library stays as it was."""
        if self._busy:
            dialogs.show_info(self.view, "Import", "Another import is still running.")
            return
        mode = mode or dialogs.ask_import_mode(self.view, paths[0])
        if mode is None:
            return
        self._cancel_import.clear()
        self._set_busy(True)
        cancel = self._cancel_import

        def job() -> list[str]:
            errors: list[str] = []
            for path in paths:
                if cancel.is_set():
                    break
                try:
                    self.library.import_model(
                        path,
                        copy=mode == "copy",
                        progress=self._copy_progress.emit,
                        cancel=cancel.is_set,
                    )
                except ImportCancelled:
                    break
                except SlmdeskError as exc:
                    errors.append(str(exc))
            return errors

        # the library announces each import: the page re-lists from that, not from here
        self.tasks.run(job, self._on_imported, self._on_error, name="library-import")

    def _on_imported(self, errors: list[str]) -> None:
        cancelled = self._cancel_import.is_set()
        self._set_busy(False)
        if cancelled:
            self.view.footer.setText("Import cancelled: nothing more was added.")
        if errors:
            dialogs.show_error(self.view, "Could not import", "\n\n".join(errors))

    @Slot()
    def _on_cancel_import(self) -> None:
        self._cancel_import.set()
        self.view.cancel_import.setEnabled(False)

    @Slot(int, int)
    def _on_copy_progress(self, done: int, total: int) -> None:
        self.view.progress.setVisible(True)
        self.view.progress.setMaximum(1000)
        self.view.progress.setValue(int(1000 * done / total) if total else 0)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.view.import_button.setEnabled(not busy)
        self.view.empty_import.setEnabled(not busy)
        self.view.cancel_import.setVisible(busy)
        self.view.cancel_import.setEnabled(busy)
        if not busy:
            self.view.progress.setVisible(False)

    # -- selection, details ----------------------------------------------------------------------

    @Slot()
    def _on_selection(self) -> None:
        entry = self.view.selected_entry()
        self.view.details.show_entry(entry)
        if entry is None or entry.status != "ok":
            return
        self._details_for = entry.name

        gpu_layers = ModelSettings.from_dict(entry.settings).gpu_layers  # the saved choice

        def job() -> MemoryEstimate:
            return estimate_on_this_machine(read_gguf_info(entry.path), None, gpu_layers)

        def done(estimate: MemoryEstimate, name: str = entry.name) -> None:
            if self._details_for == name:
                self.view.details.show_memory(estimate)

        self.tasks.run(job, done, lambda exc: log.info("no estimate: %s", exc), name="estimate")

    @Slot()
    def _on_chat(self) -> None:
        entry = self.view.selected_entry()
        if entry is not None and entry.status == "ok":
            self.chat_requested.emit(entry.name)

    @Slot()
    def _on_reveal(self) -> None:
        entry = self.view.selected_entry()
        if entry is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(entry.path.parent)))

    @Slot()
    def _on_open_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.library.models_dir)))

    # -- remove --------------------------------------------------------------------------------

    @Slot()
    def _on_remove(self) -> None:
        entry = self.view.selected_entry()
        if entry is None:
            return
        if entry.managed:
            if not dialogs.confirm(
                self.view,
                "Remove model",
                f"Delete “{entry.name}” ({entry.path.name}) from this computer?\n\n"
                "The file is removed from the models folder. This cannot be undone.",
                "Delete",
            ):
                return
            delete_file: bool | None = True
        elif entry.source:
            answer = source_dialogs.ask_remove_source(
                self.view, entry.name, entry.path, entry.source
            )
            if answer is None:
                return
            delete_file = answer == "delete"
        else:
            choice = dialogs.ask_remove_linked(self.view, entry.name, entry.path)
            if choice is None:
                return
            delete_file = choice == "delete"
        self.tasks.run(
            lambda: self.library.remove(entry.name, delete_file=delete_file),
            None,  # the library announces the removal: the page re-lists from that
            self._on_error,
            name="library-remove",
        )

    # -- rename, context menu ----------------------------------------------------------------------

    @Slot()
    def rename_selected(self) -> None:
        """Ask for a new library name for the selected model (the file keeps its name)."""
        entry = self.view.selected_entry()
        if entry is None:
            return
        answer = dialogs.ask_text(self.view, "Rename model", "New name:", entry.name)
        if answer is None or not answer.strip() or answer.strip() == entry.name:
            return
        self.tasks.run(
            lambda: self.library.rename(entry.name, answer),
            None,  # the library announces the rename: the page re-lists and selects it
            self._on_rename_error,
            name="library-rename",
        )

    def _on_rename_error(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, SlmdeskError) else f"Unexpected problem: {exc}"
        dialogs.show_error(self.view, "Rename model", message)

    @Slot(QPoint)
    def _on_table_menu(self, pos: QPoint) -> None:
        table = self.view.table
        index = table.indexAt(pos)
        if index.isValid():
            table.selectRow(index.row())
        entry = self.view.selected_entry()
        if entry is None:
            return
        menu = QMenu(self.view)
        menu.addAction("Chat", self._on_chat).setEnabled(entry.status == "ok")
        menu.addAction("Rename…", self.rename_selected)
        menu.addAction("Show in folder", self._on_reveal)
        menu.addSeparator()
        menu.addAction("Remove…", self._on_remove)
        menu.exec(table.viewport().mapToGlobal(pos))

    def _on_error(self, exc: BaseException) -> None:
        self._set_busy(False)
        message = str(exc) if isinstance(exc, SlmdeskError) else f"Unexpected problem: {exc}"
        dialogs.show_error(self.view, "Library", message)
        self.refresh()  # what failed may have been changed elsewhere meanwhile

    def shutdown(self) -> None:
        """Stop hearing the library: the window that would show its changes is going away."""
        self._cancel_import.set()
        self.source_poller.stop()
        self.events.close()
