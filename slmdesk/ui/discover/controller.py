"""Wires the Discover page to `hub.listing` (searches and listings on the task pool) and to a
`DownloadManager` (its own named threads; updates reach the GUI thread through a queued signal).

The manager's add, pause, resume, cancel and forget write its queue file, so they are called on
the task pool, never on the GUI thread. Each file row follows its download and the library
(`set_models`, the Library page's one listing per change): see `file_state`. Hashes the library
does not know yet are read on the task pool, only for files as large as one on screen."""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
import threading

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QApplication, QLabel, QTableWidgetItem

from slmdesk.common.errors import SlmdeskError, user_message
from slmdesk.common.format import printable
from slmdesk.hub import listing as hub
from slmdesk.hub.downloads import DownloadManager, DownloadStatus, State, task_id_for
from slmdesk.models.library import Library, ModelEntry
from slmdesk.ui import dialogs
from slmdesk.ui.discover import file_state as fs
from slmdesk.ui.discover.file_actions import FileActions
from slmdesk.ui.discover.file_facts import facts_text
from slmdesk.ui.discover.view import DiscoverView, DownloadRow
from slmdesk.ui.format import human_count, human_size
from slmdesk.ui.runtime.jobs import SHUTDOWN_BUDGET, UpdateChannel
from slmdesk.ui.runtime.tasks import TaskRunner
from slmdesk.ui.theme import verdict_style

log = logging.getLogger("slmdesk.ui.discover")
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class _SortableItem(QTableWidgetItem):
    """A cell shown as text but sorted by a number."""

    def __init__(self, text: str, key: float) -> None:
        super().__init__(text)
        self.key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _SortableItem):
            return self.key < other.key
        return super().__lt__(other)


class DiscoverController(QObject):
    """The Discover page's behaviour."""

    model_ready = Signal(str)  # library name of a finished download
    chat_requested = Signal(str)
    library_requested = Signal(str)  # show this library entry on the Library page

    def __init__(
        self, view: DiscoverView, tasks: TaskRunner, library: Library | None = None
    ) -> None:
        super().__init__()
        self.view = view
        self.tasks = tasks
        self.library = library
        self._entries: list[ModelEntry] | None = None  # the library's latest listing
        self._hashes: dict[str, str] = {}  # by path: read since that listing
        self._hashing: set[str] = set()
        self._statuses: dict[str, DownloadStatus] = {}  # latest per download id
        self._done_since_listing: set[str] = set()  # done, not yet in a listing
        self._file_cells: dict[str, tuple[hub.RemoteModel, FileActions]] = {}
        self.repo: hub.RepoFiles | None = None
        self._results: list[hub.RepoSummary] = []
        self._rows: dict[str, DownloadRow] = {}
        self._announced: set[str] = set()
        # Download threads report through the job model's throttle, on the GUI thread.
        self._updates = UpdateChannel(
            key=lambda status: status.task_id,
            urgent=lambda old, new: old is None or old.state != new.state,
        )
        self._updates.updated.connect(self._on_download_update)
        self.manager = DownloadManager(on_update=self._updates.push)
        self._stopper: threading.Thread | None = None
        view.search_button.clicked.connect(self.search)
        view.query.returnPressed.connect(self.search)
        view.results.itemSelectionChanged.connect(self._on_result_picked)
        view.files.itemSelectionChanged.connect(self._on_file_selected)
        self._header_reading = False  # a header read for the shown repository is under way
        view.notice_chat.clicked.connect(self._on_notice_chat)
        self._notice_name: str | None = None
        self.tasks.run(self.manager.restore, self._on_restored, self._on_error, name="dl-restore")

    # -- search --------------------------------------------------------------------------------

    @Slot()
    def search(self) -> None:
        """Search the Hub (or open a repository typed as owner/name)."""
        query = self.view.query.text().strip()
        if not query:
            self.view.status.setText("Type what to search for.")
            return
        sort = self.view.sort.currentData()
        self.view.status.setText(f"Searching for “{query}”…")
        self.view.search_button.setEnabled(False)
        self.tasks.run(
            lambda: hub.search_models(query, sort=sort, limit=40),
            lambda results: self._show_results(query, results),
            self._on_search_error,
            name="hub-search",
        )
        if REPO_ID.match(query):
            self.open_repo(query)

    def _show_results(self, query: str, results: list[hub.RepoSummary]) -> None:
        self.view.search_button.setEnabled(True)
        self._results = results
        table = self.view.results
        table.setSortingEnabled(False)
        table.setRowCount(len(results))
        for row, repo in enumerate(results):
            name = QTableWidgetItem(printable(repo.repo_id) + ("  🔒" if repo.gated else ""))
            name.setData(Qt.ItemDataRole.UserRole, repo.repo_id)
            name.setToolTip(printable(f"{repo.repo_id}\nby {repo.author or 'unknown'}", True))
            updated = (repo.last_modified or "")[:10]
            stamp = _timestamp(repo.last_modified)
            table.setItem(row, 0, name)
            table.setItem(row, 1, _SortableItem(human_count(repo.downloads) or "0", repo.downloads))
            table.setItem(row, 2, _SortableItem(str(repo.likes), repo.likes))
            table.setItem(row, 3, _SortableItem(updated, stamp))
            table.setItem(row, 4, QTableWidgetItem(printable(repo.license or "—")))
        table.setSortingEnabled(True)
        count = len(results)
        self.view.status.setText(
            f"{count} GGUF repositor{'y' if count == 1 else 'ies'} for “{query}”."
            if count
            else f"No GGUF models found for “{query}”."
        )

    def _on_search_error(self, exc: BaseException) -> None:
        self.view.search_button.setEnabled(True)
        self._on_error(exc)

    @Slot()
    def _on_result_picked(self) -> None:
        items = self.view.results.selectedItems()
        if items:
            repo_id = self.view.results.item(items[0].row(), 0).data(Qt.ItemDataRole.UserRole)
            self.open_repo(str(repo_id))

    # -- a repository --------------------------------------------------------------------------

    def open_repo(self, repo_id: str) -> None:
        """List a repository's GGUF files with fit verdicts, and its model card."""
        self.view.repo_panel.setVisible(True)
        self.view.repo_title.setText(printable(repo_id))
        self.view.repo_meta.setText("Reading the file list…")
        self._file_cells = {}
        self.view.files.setRowCount(0)
        self.view.file_facts.setText("")
        self._header_reading = False
        self.view.card.clear()
        self.tasks.run(
            lambda: hub.list_repo_models(repo_id),
            self._on_repo_listed,
            self._on_repo_error,
            name="hub-files",
        )

    def _on_repo_listed(self, repo: hub.RepoFiles) -> None:
        """Show the files at once; sharpen the memory estimates once a header is read."""
        self._header_reading = True  # the selection below waits for the first read
        self._show_repo(repo)
        self._read_headers(repo, [])

    def _read_headers(self, repo: hub.RepoFiles, names: list[str]) -> None:
        """Read the reference header and those of ``names`` on a worker thread (cached)."""
        self._header_reading = True

        def failed(exc: BaseException) -> None:
            if self.repo is repo:
                self._header_reading = False
            log.info("no header estimates for %s: %s", repo.repo_id, exc)

        self.tasks.run(
            lambda: hub.with_header_estimates(repo, files=names),
            lambda refined: self._on_estimates(repo, refined),
            failed,
            name="hub-header",
        )

    def _on_estimates(self, shown: hub.RepoFiles, refined: hub.RepoFiles) -> None:
        if self.repo is shown:  # still the repository on screen
            self._header_reading = False
            selected = self._selected_model()
            self._show_repo(refined)
            if selected is not None:
                names = [m.name for m in refined.models]
                if selected.name in names:
                    self.view.files.selectRow(names.index(selected.name))
            self._on_file_selected()  # the same row stays selected: no signal

    def _selected_model(self) -> hub.RemoteModel | None:
        rows = self.view.files.selectionModel().selectedRows()
        if self.repo is None or not rows or rows[0].row() >= len(self.repo.models):
            return None
        return self.repo.models[rows[0].row()]

    @Slot()
    def _on_file_selected(self) -> None:
        """Show the selected file's facts; read its own header if it has not been read."""
        model = self._selected_model()
        repo = self.repo
        if model is None or repo is None:
            self.view.file_facts.setText("")
            return
        problem = repo.header_problems.get(model.name)
        readable = len(model.files) == 1 and not model.is_projector
        wants_read = readable and model.header is None and problem is None
        self.view.file_facts.setText(facts_text(model, problem, reading=wants_read))
        if wants_read and not self._header_reading:
            self._read_headers(repo, [model.name])

    def _on_repo_error(self, exc: BaseException) -> None:
        self.view.repo_meta.setText(user_message(exc))

    def _show_repo(self, repo: hub.RepoFiles) -> None:
        self.repo = repo
        self.view.repo_title.setText(printable(repo.repo_id))
        rec = repo.recommended
        meta = [f"license: {printable(repo.license or 'not stated')}"]
        if repo.gated:
            meta.append("gated: needs a Hugging Face token with access (Settings)")
        meta.append(
            f"recommended for this computer: {printable(rec.name)}"
            if rec
            else "no file fits comfortably in this computer's memory"
        )
        self.view.repo_meta.setText(" · ".join(meta))
        table = self.view.files
        self._file_cells = {}
        table.setRowCount(len(repo.models))
        for row, model in enumerate(repo.models):
            star = "★ " if model.recommended else ""
            name = QTableWidgetItem(star + printable(model.name))
            name.setToolTip(
                "\n".join(printable(f.filename) for f in model.files)
                + ("\nrecommended: the best quality that fits" if model.recommended else "")
                + ("\nvision projector, not a chat model" if model.is_projector else "")
            )
            table.setItem(row, 0, name)
            table.setItem(row, 1, QTableWidgetItem(printable(model.quantization or "?")))
            table.setItem(row, 2, QTableWidgetItem(human_size(model.size_bytes)))
            approx = "" if model.estimate_exact else "≈ "
            table.setItem(row, 3, QTableWidgetItem(approx + human_size(model.estimate_bytes)))
            badge = QLabel(model.verdict)
            badge.setStyleSheet(verdict_style(model.verdict))
            badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
            table.setCellWidget(row, 4, badge)
            table.setCellWidget(row, 5, self._file_cell(model))
        self._refresh_file_cells()
        self._hash_what_matters()
        if rec is not None:
            table.selectRow(repo.models.index(rec))
        self.view.card.setMarkdown(_strip_front_matter(repo.card_text or "*No model card.*"))

    # -- file rows: download state and library ------------------------------------------------

    def _file_cell(self, model: hub.RemoteModel) -> FileActions:
        cell = FileActions(
            downloadable=not model.is_projector,
            recommended=model.recommended,
            subject=printable(model.name),
        )
        cell.triggered.connect(lambda action, m=model: self._on_file_action(m, action))
        self._file_cells[task_id_for(model)] = (model, cell)
        return cell

    def _library_match(self, model: hub.RemoteModel) -> fs.LibraryMatch | None:
        """The entry holding ``model``'s bytes, by the latest listing or a download since."""
        match = fs.library_match(model, self._entries or [], self._hashes)
        task_id = task_id_for(model)
        status = self._statuses.get(task_id)
        if (
            match is None
            and status is not None
            and status.state == State.DONE
            and status.library_name
            and task_id in self._done_since_listing  # a listing without it: it was removed
        ):
            match = fs.LibraryMatch(status.library_name, status.duplicate_of is None)
        return match

    def file_state(self, model: hub.RemoteModel) -> fs.FileState:
        """What the row of ``model`` shows now."""
        return fs.file_state(self._statuses.get(task_id_for(model)), self._library_match(model))

    def _refresh_file_cells(self, task_id: str | None = None) -> None:
        if task_id is None:
            cells = list(self._file_cells.values())
        else:
            cells = [self._file_cells[task_id]] if task_id in self._file_cells else []
        resize = False
        for model, cell in cells:
            before = cell.sizeHint().width()
            cell.show_state(self.file_state(model))
            resize = resize or cell.sizeHint().width() != before
        if resize:  # "In library as NAME" is wider than "Download": keep every word visible
            self.view.files.resizeColumnToContents(5)

    @Slot(list)
    def set_models(self, entries: list[ModelEntry]) -> None:
        """The library's latest listing: rows follow it (downloaded, removed, imported twins)."""
        self._entries = entries
        self._hashes = {}  # a listing carries every hash kept in the index
        self._done_since_listing.clear()
        self._refresh_file_cells()
        self._hash_what_matters()

    def _hash_what_matters(self) -> None:
        """Hash, on the task pool, library files as large as a file on screen (once each)."""
        if self.repo is None or self._entries is None:
            return
        for entry in fs.entries_to_hash(self.repo.models, self._entries, self._hashes):
            key = str(entry.path)
            if key in self._hashing:
                continue
            self._hashing.add(key)
            library = self.library
            self.tasks.run(
                lambda e=entry, lib=library: (lib or Library()).sha256_of(e),
                lambda value, k=key: self._on_hashed(k, value),
                lambda exc, k=key: self._on_hash_failed(k, exc),
                name="library-hash",
            )

    def _on_hashed(self, key: str, value: str | None) -> None:
        self._hashing.discard(key)
        if value:
            self._hashes[key] = value
            self._refresh_file_cells()

    def _on_hash_failed(self, key: str, exc: BaseException) -> None:
        self._hashing.discard(key)
        log.info("could not hash %s: %s", key, exc)

    def _on_file_action(self, model: hub.RemoteModel, action: str) -> None:
        task_id = task_id_for(model)
        match = self._library_match(model)
        if action == fs.DOWNLOAD:
            self.download(model)
        elif action == fs.CANCEL:
            self._guard(self.manager.cancel)(task_id)
        elif action == fs.RESUME or (action == fs.RETRY and self._retryable(task_id)):
            self._guard(self.manager.resume)(task_id)
        elif action == fs.RETRY:  # a retry cannot help: start again from today's listing
            self.download(model)
        elif action in (fs.CHAT, fs.USE) and match is not None:
            self.chat_requested.emit(match.name)
        elif action == fs.SHOW and match is not None:
            self.library_requested.emit(match.name)

    def _retryable(self, task_id: str) -> bool:
        status = self._statuses.get(task_id)
        return status is not None and status.retryable

    # -- downloads -----------------------------------------------------------------------------

    def download(self, model: hub.RemoteModel) -> None:
        """Queue a download (asking first if it will not fit)."""
        if model.verdict == "too big" and not dialogs.confirm(
            self.view,
            "Too big for this computer",
            f"{model.name} needs about {human_size(model.estimate_bytes)} of memory, more than "
            "this computer has. Download it anyway?",
            "Download anyway",
        ):
            return
        self.tasks.run(
            lambda: self.manager.add(model), self._row, self._on_download_error, name="dl-add"
        )

    def _row(self, task_id: str) -> DownloadRow:
        row = self._rows.get(task_id)
        if row is None:
            row = DownloadRow(task_id)
            row.pause_clicked.connect(self._guard(self.manager.pause))
            row.resume_clicked.connect(self._guard(self.manager.resume))
            row.cancel_clicked.connect(self._guard(self.manager.cancel))
            row.dismiss_clicked.connect(self._dismiss)
            row.chat_clicked.connect(self.chat_requested)
            self._rows[task_id] = row
            self.view.add_download_row(row)
            try:
                row.show_status(self.manager.status(task_id))
            except SlmdeskError:
                pass
        return row

    def _guard(self, action):  # type: ignore[no-untyped-def]
        def run(task_id: str) -> None:
            self.tasks.run(lambda: action(task_id), None, self._on_download_error, name="dl-action")

        return run

    def _on_download_error(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, SlmdeskError) else f"Unexpected problem: {exc}"
        dialogs.show_error(self.view, "Download", message)

    @Slot(str)
    def _dismiss(self, task_id: str) -> None:
        def forgotten(_result: object) -> None:
            row = self._rows.pop(task_id, None)
            if row is not None:
                self.view.remove_download_row(row)
            self._statuses.pop(task_id, None)
            self._refresh_file_cells(task_id)

        self.tasks.run(
            lambda: self.manager.forget(task_id),
            forgotten,
            self._on_download_error,
            name="dl-forget",
        )

    def _on_restored(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            self._row(task_id)
            try:
                self._statuses[task_id] = self.manager.status(task_id)
            except SlmdeskError:
                continue
            self._refresh_file_cells(task_id)

    @Slot(object)
    def _on_download_update(self, status: DownloadStatus) -> None:
        row = self._row(status.task_id)
        row.show_status(status)
        self._statuses[status.task_id] = status
        if status.state == State.DONE:
            self._done_since_listing.add(status.task_id)
        self._refresh_file_cells(status.task_id)
        if status.state == State.DONE and status.task_id not in self._announced:
            self._announced.add(status.task_id)
            name = status.library_name or status.name
            self._notice_name = status.library_name
            self.view.notice_text.setText(
                f"<b>{html.escape(printable(status.name))}</b> is already in your library as "
                f"<b>{html.escape(printable(name))}</b>; no second copy was kept."
                if status.duplicate_of
                else f"<b>{name}</b> is downloaded, verified and in your library."
            )
            self.view.notice_chat.setVisible(bool(status.library_name))
            self.view.notice.setVisible(True)
            QApplication.alert(self.view)
            self.model_ready.emit(name)

    @Slot()
    def _on_notice_chat(self) -> None:
        if self._notice_name:
            self.chat_requested.emit(self._notice_name)

    def _on_error(self, exc: BaseException) -> None:
        self.view.status.setText(user_message(exc))

    def request_stop(self) -> None:
        """Pause running downloads (they resume next time) without waiting for their threads."""
        self._updates.close()
        if self._stopper is None:
            self._stopper = threading.Thread(
                target=self.manager.shutdown,
                args=(SHUTDOWN_BUDGET,),
                name="slmdesk-download-stop",
                daemon=True,
            )
            self._stopper.start()

    def wait_stopped(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the download threads to end."""
        if self._stopper is None:
            return True
        self._stopper.join(max(0.0, timeout))
        return not self._stopper.is_alive()

    def shutdown(self) -> None:
        """Stop within the shutdown budget (for callers outside the app's shutdown)."""
        self.request_stop()
        self.wait_stopped(SHUTDOWN_BUDGET)


def _timestamp(iso: str | None) -> float:
    if not iso:
        return 0.0
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _strip_front_matter(text: str) -> str:
    """Model cards start with YAML metadata between ``---`` lines; people want the prose."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4 :].lstrip()
    return text
