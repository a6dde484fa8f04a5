"""Wires the Chat page: conversations (task pool), the model and replies (inference thread).

Where things run: opening the database, conversation listing, creation, renaming, deleting and
settings writes go to the task pool (the list appears once the database is open); loading (a
job), generating and the chat's own message writes (a `ChatSession`) happen on the inference
thread (`ui.runtime.inference`). Every handler here runs on the GUI thread and only updates
widgets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import QListWidgetItem, QMenu

from slmdesk.chat.connections import ConnectionStore, model_label, parse_remote_ref
from slmdesk.chat.conversations import Conversation, ConversationStore, Message, SearchHit
from slmdesk.chat.export_names import ALL_CHATS_NAME, export_file_name
from slmdesk.common import settings as app_settings
from slmdesk.common.errors import SlmdeskError
from slmdesk.llama.engine import SamplingSettings
from slmdesk.models.library import Library, ModelEntry
from slmdesk.ui import dialogs
from slmdesk.ui.chat.defaults_controller import ChatDefaults
from slmdesk.ui.chat.empty_state import chat_body_text, list_text
from slmdesk.ui.chat.message_widget import MessageWidget
from slmdesk.ui.chat.remote_models import RemoteModels, list_remote_models
from slmdesk.ui.chat.view import ChatView
from slmdesk.ui.format import human_size
from slmdesk.ui.keyboard import item_shortcuts
from slmdesk.ui.runtime.inference import GenerateRequest, InferenceClient
from slmdesk.ui.runtime.jobs import SHUTDOWN_BUDGET, Deadline, stop_all
from slmdesk.ui.runtime.tasks import TaskRunner

log = logging.getLogger("slmdesk.ui.chat")

UNDO_SECONDS = 10
# Messages shown when a conversation opens; older ones appear on request. Every message widget
# costs the GUI thread a little on each streamed chunk (the scrolled page moves), so a bounded
# window keeps streaming smooth however long the conversation is.
SHOWN_MESSAGES = 40
PURGE_DELETED_AFTER = 7 * 24 * 3600
ID_ROLE = Qt.ItemDataRole.UserRole
TITLE_ROLE = Qt.ItemDataRole.UserRole + 1  # the item's text may carry a search snippet too
# The settings key remembering the conversation shown last, reopened at the next start.
LAST_CONVERSATION = "last_conversation"


class ChatController(QObject):
    """The Chat page's behaviour."""

    store_failed = Signal(str)  # the conversation database cannot be opened: why
    remote_models_changed = Signal()  # the saved servers' models were listed again

    def __init__(
        self,
        view: ChatView,
        store: ConversationStore,
        client: InferenceClient,
        library: Library,
        tasks: TaskRunner,
        autoload: bool = True,
    ) -> None:
        super().__init__()
        self.autoload = autoload
        self._autoloaded = False
        self._pending_name: str | None = None
        self.view = view
        self.store = store
        self.client = client
        self.library = library
        self.tasks = tasks
        self.current: Conversation | None = None
        self.loaded_name: str | None = None
        self.loaded_info: dict[str, Any] | None = None
        self.generating = False
        self.editing_id: int | None = None
        self._widgets: dict[int, MessageWidget] = {}
        self._entries: list[ModelEntry] = []
        self._remote_models: list[tuple[str, str]] = []  # (ref, label) from saved servers
        self._servers = 0  # how many servers are saved
        self._deleted_id: int | None = None
        self._hidden: list[Message] = []
        self._unsent: str | None = None  # typed text not yet saved: put back if sending fails
        self._filling_settings = False
        self._panel_touched = False  # the user changed the new chat's settings by hand
        self._save_timer = QTimer(view)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(400)
        self._save_timer.timeout.connect(self._save_settings)
        self._undo_timer = QTimer(view)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.timeout.connect(lambda: view.undo_bar.setVisible(False))
        self._search_timer = QTimer(view)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(250)
        self._search_timer.timeout.connect(self.refresh_conversations)
        self._reopen_last = True  # the first listing reopens the chat shown last time
        self._connect()
        self.defaults = ChatDefaults(
            view.settings_panel, library, tasks, self._model_for_new_chat, self._on_task_error
        )
        view.settings_panel.presets.picked.connect(self._on_settings_edited)
        self._fill_settings(None)
        self._update_empty_chat()
        self.tasks.run(self.store.open, self._on_store_open, self._on_store_failed, name="chat-db")
        self.tasks.run(
            _offload_supported,
            self.view.settings_panel.show_gpu_layers,
            lambda exc: log.info("GPU offload support unknown: %s", exc),
            name="gpu-offload",
        )
        self.refresh_remote_models()

    def _on_store_open(self, _result: object) -> None:
        # e.g. a damaged database was set aside: say where, once
        notice = self.store.take_notice()
        if notice:
            self.view.show_notice(notice)
        self.tasks.run(lambda: self.store.purge(older_than=PURGE_DELETED_AFTER), name="chat-purge")
        self.refresh_conversations()

    def _on_store_failed(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, SlmdeskError) else f"Unexpected problem: {exc}"
        self.view.show_notice(message)
        self.store_failed.emit(message)

    def _connect(self) -> None:
        v, w = self.view, self.client.worker
        v.new_button.clicked.connect(self.new_chat)
        QShortcut(QKeySequence("Ctrl+N"), v, self.new_chat)
        v.send_button.clicked.connect(self.send)
        v.composer.send_requested.connect(self.send)
        v.stop_button.clicked.connect(self.stop)
        v.composer.stop_requested.connect(self.stop)
        v.search.textChanged.connect(lambda _t: self._search_timer.start())
        v.conversations.currentItemChanged.connect(self._on_conversation_picked)
        v.conversations.customContextMenuRequested.connect(self._on_conversation_menu)
        item_shortcuts(
            v.conversations,
            rename=lambda: self._with_selected(self.rename_conversation),
            delete=lambda: self._with_selected(self.delete_conversation),
        )
        v.undo_button.clicked.connect(self._on_undo_delete)
        v.model_picker.activated.connect(self._on_model_picked)
        v.messages.earlier_button.clicked.connect(self._on_show_earlier)
        v.eject_button.clicked.connect(self._on_eject)
        v.cancel_edit_button.clicked.connect(self._cancel_edit)
        v.settings_panel.changed.connect(self._on_settings_edited)
        v.settings_panel.reset_button.clicked.connect(self._on_reset_settings)
        v.base_model_bar.mode_changed.connect(self._on_settings_edited)
        self.client.load_progress.connect(self._on_load_progress)
        self.client.loaded.connect(self._on_loaded)
        self.client.load_failed.connect(self._on_load_failed)
        w.unloaded.connect(self._on_unloaded)
        w.user_saved.connect(self._on_user_saved)
        w.messages_removed.connect(self._on_messages_removed)
        w.reply_started.connect(self._on_reply_started)
        w.chunk.connect(self._on_chunk)
        w.reply_finished.connect(self._on_reply_finished)
        w.reply_failed.connect(self._on_reply_failed)

    # -- models --------------------------------------------------------------------------------

    def set_models(self, entries: list[ModelEntry]) -> None:
        """Fill the model picker from the library (called after every library refresh)."""
        self._entries = [e for e in entries if e.status == "ok"]
        picker = self.view.model_picker
        pending = self._pending_name if self.client.loading else None
        wanted = (
            pending or self.loaded_name or picker.currentData() or app_settings.get("last_model")
        )
        picker.blockSignals(True)
        picker.clear()
        if not self._entries and not self._remote_models and self._servers:
            picker.addItem("No models — no saved server answered (Settings → Connections)", None)
        elif not self._entries and not self._remote_models:
            picker.addItem("No models — add one in Library or Discover", None)
        for entry in self._entries:
            label = (
                f"{entry.name}  ·  {entry.quantization or '?'}  ·  {human_size(entry.size_bytes)}"
            )
            picker.addItem(label, entry.name)
        for ref, label in self._remote_models:
            picker.addItem(label, ref)
        index = picker.findData(wanted) if wanted else -1
        picker.setCurrentIndex(max(index, 0))
        picker.blockSignals(False)
        self.defaults.set_entries(self._entries)
        if (
            self.loaded_name
            and self.loaded_name not in {e.name for e in self._entries}
            and not parse_remote_ref(self.loaded_name)
        ):
            self.view.model_state.setText(f"{self.loaded_name} was removed from the library")
        self._update_empty_chat()
        if self.autoload and not self._autoloaded and not self.loaded_name and self._entries:
            last = app_settings.get("last_model")
            if last in {e.name for e in self._entries} or len(self._entries) == 1:
                self._autoloaded = True
                self.load_model(
                    last if last in {e.name for e in self._entries} else self._entries[0].name
                )

    def refresh_remote_models(self) -> None:
        """Ask the saved servers for their models (task pool); the picker lists them after."""
        self.tasks.run(list_remote_models, self._on_remote_models, name="remote-models")

    def _on_remote_models(self, found: RemoteModels) -> None:
        self._remote_models, self._servers = found.items, found.servers
        self.set_models(self._entries)
        self.remote_models_changed.emit()

    @property
    def has_connections(self) -> bool:
        """Whether servers are saved (their chats open here even while they are down)."""
        return self._servers > 0

    def open_model(self, name: str) -> None:
        """Start a new chat with ``name`` (the Library's Chat button)."""
        index = self.view.model_picker.findData(name)
        if index >= 0:
            self.view.model_picker.setCurrentIndex(index)
        if self.loaded_name != name:
            self.load_model(name)
        self.new_chat()

    def load_model(self, name: str) -> None:
        """Load a library model on the inference thread.

        The path comes from the last library listing; a model newer than that listing (just
        downloaded or optimized) is looked up on the task pool, never on the GUI thread.
        """
        remote = parse_remote_ref(name)
        if remote is not None:  # a model on a server: its connection is read on the pool
            self.tasks.run(
                lambda: ConnectionStore().get(remote[0]).target(remote[1]),
                lambda target: self._start_load(name, Path(remote[1]), target),
                lambda exc: self.view.model_state.setText(str(exc)),
                name="chat-connection",
            )
            return
        entry = next((e for e in self._entries if e.name == name), None)
        if entry is not None:
            self._start_load(name, entry.path)
            return
        self.tasks.run(
            lambda: self.library.resolve(name),
            lambda path: self._start_load(name, path),
            lambda exc: self.view.model_state.setText(str(exc)),
            name="chat-resolve",
        )

    def _start_load(self, name: str, path: Path, remote: Any = None) -> None:
        index = self.view.model_picker.findData(name)
        if index >= 0:
            self.view.model_picker.setCurrentIndex(index)
        context = threads = 0
        saved = self.defaults.settings_for(name)
        gpu_layers = saved.gpu_layers
        if self.current is not None:
            context = int(self.current.settings.get("context_length") or 0)
            threads = int(self.current.settings.get("threads") or 0)
            chosen = self.current.settings.get("gpu_layers")
            gpu_layers = chosen if isinstance(chosen, int) and chosen >= 0 else gpu_layers
        context = context or saved.context_length or int(app_settings.get("context_length") or 0)
        threads = threads or saved.threads or int(app_settings.get("threads") or 0)
        self._pending_name = name
        self.defaults.show_model(name)
        self.view.model_state.setText(f"Loading {model_label(name)}…")
        self.view.load_progress.setValue(0)
        self.view.load_progress.setVisible(True)
        self.view.eject_button.setText("Cancel")
        self.client.load(path, context, threads, gpu_layers, remote)
        self._update_empty_chat()

    @Slot(int)
    def _on_model_picked(self, index: int) -> None:
        name = self.view.model_picker.itemData(index)
        if name and name != self.loaded_name:
            self.load_model(name)

    @Slot()
    def _on_eject(self) -> None:
        if self.client.loading:
            self.client.cancel_loading()
        elif self.loaded_name:
            self.client.unload()

    @Slot(float)
    def _on_load_progress(self, fraction: float) -> None:
        self.view.load_progress.setValue(int(fraction * 100))

    @Slot(object)
    def _on_loaded(self, info: dict[str, Any]) -> None:
        # only the newest load reports here (the client cancels superseded ones)
        self.loaded_name = self._pending_name
        self.loaded_info = info
        self.view.load_progress.setVisible(False)
        self.view.eject_button.setText("Unload")
        if info.get("remote"):
            self.view.model_state.setText(f"Ready · remote, on {info['server']}")
        else:
            self.view.model_state.setText(f"Ready · {info['context_length']:,} tokens of context")
        self.view.format_label.setText(f"Prompt format: {info['format']}")
        self.view.base_model_bar.show_for(self.loaded_name, bool(info.get("base_model")))
        self.view.model_state.setToolTip(
            f"{info['path']}\nloaded in {info['load_seconds']:.1f} s, {info['n_threads']} threads,"
            f" llama.cpp CPU variant: {info.get('cpu_variant', 'unknown')}"
        )
        if self.loaded_name:
            app_settings.update(last_model=self.loaded_name)
        self.defaults.show_model(self.loaded_name)
        if self.current is None and not self._panel_touched:
            self._fill_settings(None)  # a new chat starts from this model's defaults
        self._update_empty_chat()

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        self.view.load_progress.setVisible(False)
        self.view.eject_button.setText("Unload")
        self.loaded_name = None
        self.view.model_state.setText("No model loaded")
        self.view.format_label.setText("")
        self.view.base_model_bar.show_for(None, False)
        self.view.show_notice(message)
        self._update_empty_chat()

    @Slot()
    def _on_unloaded(self) -> None:
        self.loaded_name = None
        self.loaded_info = None
        self.view.model_state.setText("No model loaded")
        self.view.format_label.setText("")
        self.view.base_model_bar.show_for(None, False)
        self._update_empty_chat()

    # -- conversations -------------------------------------------------------------------------

    def refresh_conversations(self, select: int | None = None) -> None:
        """Re-list conversations (filtered by the search box) in the background."""
        query = self.view.search.text()
        self.tasks.run(
            lambda: self.store.search_conversations(query),
            lambda hits: self._show_conversations(hits, select, query),
            self._on_task_error,
            name="chat-list",
        )

    def _show_conversations(
        self, hits: list[SearchHit], select: int | None, query: str = ""
    ) -> None:
        lst = self.view.conversations
        if self._reopen_last and not query.strip():
            self._reopen_last = False
            select = self._last_conversation(hits) if select is None else select
        wanted = select if select is not None else (self.current.id if self.current else None)
        lst.blockSignals(True)
        lst.clear()
        for hit in hits:
            conversation = hit.conversation
            text = conversation.title + (f"\n{hit.snippet}" if hit.snippet else "")
            item = QListWidgetItem(text)
            item.setData(ID_ROLE, conversation.id)
            item.setData(TITLE_ROLE, conversation.title)
            item.setToolTip(
                f"{conversation.title}\n{model_label(conversation.model or 'no model')} · "
                f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(conversation.updated_at))}"
            )
            lst.addItem(item)
            if conversation.id == wanted:
                lst.setCurrentItem(item)
                if self.current is not None and self.current.id == conversation.id:
                    self.current.title = conversation.title
                    self.view.title.setText(conversation.title)
        lst.blockSignals(False)
        lst.setVisible(bool(hits))
        self.view.conversations_empty.setText(list_text(query))
        self.view.conversations_empty.setVisible(not hits)
        if select is not None and (self.current is None or self.current.id != select):
            self.open_conversation(select)

    def _last_conversation(self, hits: list[SearchHit]) -> int | None:
        """The conversation shown when the app last ran, if it still exists (else a new chat)."""
        if self.current is not None:
            return None  # the user already moved on
        last = app_settings.get(LAST_CONVERSATION)
        if isinstance(last, int) and any(hit.conversation.id == last for hit in hits):
            return last
        return None

    def _remember(self, conversation_id: int | None) -> None:
        """Keep the shown conversation for the next start (saved in the background)."""
        app_settings.update(**{LAST_CONVERSATION: conversation_id})

    def _update_empty_chat(self) -> None:
        """The empty chat's invitation, naming the model that would answer."""
        pending = self._pending_name if self.client.loading else None
        model = self.loaded_name or pending or self.view.model_picker.currentData()
        self.view.messages.empty.setText(chat_body_text(model_label(model) if model else None))

    def new_chat(self) -> None:
        """Start an empty conversation (it is stored when the first message is sent)."""
        self.current = None
        self._cancel_edit()
        self.view.messages.clear()
        self._widgets.clear()
        self._hidden = []
        self.view.title.setText("New chat")
        self.view.conversations.clearSelection()
        self.view.conversations.setCurrentItem(None)
        self.view.show_notice("")
        self._fill_settings(None)
        self._remember(None)
        self.view.composer.setFocus()

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_conversation_picked(self, item: QListWidgetItem | None, _prev: Any) -> None:
        if item is not None:
            self.open_conversation(int(item.data(ID_ROLE)))

    def open_conversation(self, conversation_id: int, notice: str | None = None) -> None:
        """Show a stored conversation, with ``notice`` above the composer once it is shown."""
        self.tasks.run(
            lambda: self.store.get(conversation_id),
            lambda conversation: self._show_conversation(conversation, notice),
            self._on_task_error,
            name="chat-open",
        )

    def _show_conversation(self, conversation: Conversation, notice: str | None = None) -> None:
        self.current = conversation
        self._remember(conversation.id)
        self._cancel_edit()
        self.view.title.setText(conversation.title)
        self.view.messages.clear()
        self._widgets.clear()
        self.view.show_notice("")
        shown = conversation.messages[-SHOWN_MESSAGES:]
        self._hidden = conversation.messages[: len(conversation.messages) - len(shown)]
        for message in shown:
            self._add_widget(message, streaming=False)
        self._show_earlier_button()
        self._update_regenerate()
        self._fill_settings(conversation)
        if (
            parse_remote_ref(conversation.model)
            and conversation.model != self.loaded_name
            and not (self.client.loading and conversation.model == self._pending_name)
            and not self.generating
        ):
            self.load_model(str(conversation.model))  # a remote chat goes back to its server
        elif conversation.model and self.loaded_name and conversation.model != self.loaded_name:
            self.view.show_notice(
                f"This chat was with {model_label(conversation.model)}; replies now come from "
                f"{model_label(self.loaded_name)}."
            )
        if notice:
            self.view.show_notice(notice)

    def _show_earlier_button(self) -> None:
        button = self.view.messages.earlier_button
        button.setText(f"Show {len(self._hidden)} earlier message(s)")
        button.setVisible(bool(self._hidden))

    @Slot()
    def _on_show_earlier(self) -> None:
        older, self._hidden = self._hidden[-SHOWN_MESSAGES:], self._hidden[:-SHOWN_MESSAGES]
        widgets = [self._make_widget(m, streaming=False) for m in older]
        self.view.messages.add_earlier(widgets)
        self._show_earlier_button()

    def _add_widget(self, message: Message, streaming: bool) -> MessageWidget:
        widget = self._make_widget(message, streaming)
        self.view.messages.add(widget, live=streaming)
        return widget

    def _make_widget(self, message: Message, streaming: bool) -> MessageWidget:
        timings = message.timings
        finished = message.finished or not streaming
        if not message.finished and not streaming:
            timings = {**(timings or {}), "finish_reason": "interrupted"}
        speaker = "You" if message.role == "user" else (self._model_label() or "Assistant")
        widget = MessageWidget(message.role, message.text, message.id, speaker, timings, finished)
        widget.edit_requested.connect(self._on_edit)
        widget.regenerate_requested.connect(self._on_regenerate)
        widget.copy_requested.connect(lambda text: QGuiApplication.clipboard().setText(text))
        self._widgets[message.id] = widget
        return widget

    def _model_label(self) -> str | None:
        if self.current is not None and self.current.model:
            return model_label(self.current.model)
        return model_label(self.loaded_name) if self.loaded_name else None

    def _update_regenerate(self) -> None:
        widgets = self.view.messages.widgets()
        for widget in widgets:
            widget.set_regenerate_visible(False)
        if widgets and widgets[-1].role == "assistant" and not self.generating:
            widgets[-1].set_regenerate_visible(True)

    @Slot("QPoint")
    def _on_conversation_menu(self, pos: Any) -> None:
        item = self.view.conversations.itemAt(pos)
        menu = QMenu(self.view)
        if item is not None:
            cid = int(item.data(ID_ROLE))
            menu.addAction("Rename…", lambda: self.rename_conversation(cid))
            menu.addAction("Export…", lambda: self.export_conversations(cid))
            menu.addAction("Delete", lambda: self.delete_conversation(cid))
            menu.addSeparator()
        menu.addAction("Export all chats…", lambda: self.export_conversations(None))
        menu.exec(self.view.conversations.mapToGlobal(pos))

    def _with_selected(self, action: Callable[[int], None]) -> None:
        """Run ``action`` on the conversation selected in the list (F2, Delete)."""
        item = self.view.conversations.currentItem()
        if item is not None and item.isSelected():
            action(int(item.data(ID_ROLE)))

    def rename_conversation(self, conversation_id: int) -> None:
        """Ask for a new title and store it."""
        item = self._item_for(conversation_id)
        title = dialogs.ask_text(
            self.view, "Rename chat", "Title:", item.data(TITLE_ROLE) if item is not None else ""
        )
        if not title or not title.strip():
            return
        self.tasks.run(
            lambda: self.store.rename(conversation_id, title),
            lambda conv: self._after_change(conv),
            self._on_task_error,
            name="chat-rename",
        )

    def _after_change(self, conversation: Conversation) -> None:
        if self.current is not None and self.current.id == conversation.id:
            self.current.title = conversation.title
            self.view.title.setText(conversation.title)
        self.refresh_conversations()

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete (to the undo bin) and offer Undo for a few seconds."""

        def done(_result: Any) -> None:
            self._deleted_id = conversation_id
            self.view.undo_bar.setVisible(True)
            self._undo_timer.start(UNDO_SECONDS * 1000)
            if self.current is not None and self.current.id == conversation_id:
                self.new_chat()
            self.refresh_conversations()

        self.tasks.run(
            lambda: self.store.delete(conversation_id), done, self._on_task_error, name="chat-del"
        )

    @Slot()
    def _on_undo_delete(self) -> None:
        if self._deleted_id is None:
            return
        cid, self._deleted_id = self._deleted_id, None
        self.view.undo_bar.setVisible(False)
        self.tasks.run(
            lambda: self.store.restore(cid),
            lambda conv: self.refresh_conversations(select=conv.id),
            self._on_task_error,
            name="chat-undo",
        )

    def export_conversations(self, conversation_id: int | None) -> None:
        """Save one chat (or all) as Markdown or JSON."""
        if conversation_id is None:
            suggested = f"{ALL_CHATS_NAME}.md"
        else:
            suggested = export_file_name(self._title_of(conversation_id))
        target = dialogs.ask_save_path(self.view, "Export chats", suggested)
        if target is None:
            return
        if target.suffix.lower() not in (".md", ".json"):
            target = target.with_suffix(".md")
        self.tasks.run(
            lambda: self.store.export(target, conversation_id),
            lambda path: self.view.show_notice(f"Saved to {path}", kind="success"),
            self._on_task_error,
            name="chat-export",
        )

    def _title_of(self, conversation_id: int) -> str | None:
        if self.current is not None and self.current.id == conversation_id:
            return self.current.title
        item = self._item_for(conversation_id)
        return str(item.data(TITLE_ROLE)) if item is not None else None

    def _item_for(self, conversation_id: int) -> QListWidgetItem | None:
        lst = self.view.conversations
        for row in range(lst.count()):
            item = lst.item(row)
            if int(item.data(ID_ROLE)) == conversation_id:
                return item
        return None

    # -- sending -------------------------------------------------------------------------------

    @Slot()
    def send(self) -> None:
        """Send the composer's text (or the edited message) and stream the reply."""
        text = self.view.composer.toPlainText().strip()
        if not text:
            self.view.show_notice("Type a message first.")
            return
        if self.generating:
            return
        if not self.loaded_name and not self.client.loading:
            name = self.view.model_picker.currentData()
            if not name:
                self.view.show_notice(
                    "No model loaded: import one in the Library or download one in Discover."
                )
                return
            self.load_model(name)
        self.view.show_notice("")
        self.view.composer.clear()
        self._unsent = text
        self._set_generating(True)
        replace_from, self.editing_id = self.editing_id, None
        self.view.edit_banner.setVisible(False)
        sampling = self._panel_settings()
        if self.current is None:
            model = self._pending_or_loaded_name()
            system = self.view.settings_panel.system_prompt.toPlainText()

            def create() -> Conversation:
                return self.store.create(model=model, system_prompt=system, settings=sampling)

            self.tasks.run(
                create,
                lambda conv: self._send_to(conv, text, sampling, None),
                self._on_send_error,
                name="chat-create",
            )
        else:
            self._send_to(self.current, text, sampling, replace_from)

    def _pending_or_loaded_name(self) -> str | None:
        return self.loaded_name or self._pending_name

    def _send_to(
        self,
        conversation: Conversation,
        text: str | None,
        sampling: dict[str, Any],
        replace_from: int | None,
    ) -> None:
        if self.current is None or self.current.id != conversation.id:
            self.current = conversation
            self._remember(conversation.id)
            self.refresh_conversations(select=conversation.id)
        model = self._pending_or_loaded_name()
        if model and conversation.model != model:
            conversation.model = model
            self.tasks.run(
                lambda: self.store.update_settings(conversation.id, model=model), name="chat-model"
            )
        self.client.generate(GenerateRequest(conversation.id, text, sampling, replace_from))

    def _on_send_error(self, exc: BaseException) -> None:
        self._set_generating(False)
        self._restore_unsent()
        self._on_task_error(exc)

    def _restore_unsent(self) -> None:
        """Put text whose sending failed back in an empty composer, so nothing typed is lost."""
        text, self._unsent = self._unsent, None
        if text and not self.view.composer.toPlainText().strip():
            self.view.composer.setPlainText(text)

    @Slot()
    def stop(self) -> None:
        """Stop the reply being written, or a model load in progress."""
        if self.generating:
            self.client.stop()
        elif self.client.loading:
            self.client.cancel_loading()

    def _set_generating(self, generating: bool) -> None:
        self.generating = generating
        self.view.set_generating(generating)
        self._update_regenerate()

    @Slot(int)
    def _on_edit(self, message_id: int) -> None:
        if self.generating:
            return
        widget = self._widgets.get(message_id)
        if widget is None:
            return
        self.editing_id = message_id
        self.view.composer.setPlainText(widget.text)
        self.view.edit_banner.setVisible(True)
        self.view.composer.setFocus()

    def _cancel_edit(self) -> None:
        if self.editing_id is not None:
            self.view.composer.clear()
        self.editing_id = None
        self.view.edit_banner.setVisible(False)

    @Slot(int)
    def _on_regenerate(self, message_id: int) -> None:
        if self.generating or self.current is None:
            return
        if not self.loaded_name and not self.client.loading:
            self.view.show_notice("Load a model first.")
            return
        self._unsent = None
        self._set_generating(True)
        self.client.generate(
            GenerateRequest(self.current.id, None, self._panel_settings(), message_id)
        )

    # -- worker results --------------------------------------------------------------------------

    def _is_current(self, conversation_id: int) -> bool:
        return self.current is not None and self.current.id == conversation_id

    @Slot(int, list)
    def _on_messages_removed(self, conversation_id: int, ids: list[int]) -> None:
        if not self._is_current(conversation_id):
            return
        for message_id in ids:
            widget = self._widgets.pop(message_id, None)
            if widget is not None:
                self.view.messages.remove(widget)

    @Slot(int, object)
    def _on_user_saved(self, conversation_id: int, message: Message) -> None:
        self._unsent = None
        if self._is_current(conversation_id):
            self._add_widget(message, streaming=False)
            if self.current is not None and self.current.title_is_auto:
                self.refresh_conversations()  # a (re)written first message re-titles the chat

    @Slot(int, object)
    def _on_reply_started(self, conversation_id: int, message: Message) -> None:
        if self._is_current(conversation_id):
            self._add_widget(message, streaming=True)

    @Slot(int, str)
    def _on_chunk(self, message_id: int, text: str) -> None:
        widget = self._widgets.get(message_id)
        if widget is not None:
            widget.append(text)

    @Slot(int, object)
    def _on_reply_finished(self, conversation_id: int, payload: dict[str, Any]) -> None:
        message: Message = payload["message"]
        widget = self._widgets.get(message.id)
        if widget is not None:
            if widget.text != message.text:
                widget.set_text(message.text)
            widget.set_finished(True, payload["timings"])
        self.view.messages.settle()
        self._set_generating(False)
        if payload.get("format"):  # the model's template may have been refused for this reply
            self.view.format_label.setText(f"Prompt format: {payload['format']}")
        if payload.get("dropped") and self._is_current(conversation_id):
            self.view.show_notice(
                f"{payload['dropped']} older message(s) did not fit in the model's context and "
                "were left out of this reply (the system prompt was kept)."
            )
        self.refresh_conversations()

    @Slot(int, str)
    def _on_reply_failed(self, conversation_id: int, message: str) -> None:
        self._set_generating(False)
        self._restore_unsent()
        if self._is_current(conversation_id):
            self.view.show_notice(message)
            # Reloading shows what was saved; the message must outlive the reload.
            self.open_conversation(conversation_id, notice=message)
        self.refresh_conversations()

    # -- settings --------------------------------------------------------------------------------

    def _model_for_new_chat(self) -> str | None:
        """The model whose defaults a new chat starts from."""
        name = self._pending_name if self.client.loading else None
        return name or self.loaded_name or self.view.model_picker.currentData()

    def _fill_settings(self, conversation: Conversation | None) -> None:
        panel = self.view.settings_panel
        self._filling_settings = True
        self._panel_touched = False
        saved = self.defaults.settings_for(self._model_for_new_chat())
        try:
            if conversation is not None:
                stored = dict(conversation.settings)
            else:
                stored = saved.merged_sampling(
                    {"context_length": saved.context_length, "threads": saved.threads}
                )
            try:
                sampling = SamplingSettings.from_dict(stored)
            except SlmdeskError:
                sampling = SamplingSettings()
            panel.temperature.setValue(sampling.temperature)
            panel.top_p.setValue(sampling.top_p)
            panel.top_k.setValue(sampling.top_k)
            panel.min_p.setValue(sampling.min_p)
            panel.repeat_penalty.setValue(sampling.repeat_penalty)
            panel.seed.setValue(-1 if sampling.seed is None else sampling.seed)
            panel.max_tokens.setValue(sampling.max_tokens)
            panel.context.setValue(int(stored.get("context_length") or 0))
            panel.threads.setValue(int(stored.get("threads") or 0))
            gpu = stored.get("gpu_layers") if conversation is not None else saved.gpu_layers
            panel.gpu_layers.setValue(gpu if isinstance(gpu, int) and gpu >= 0 else -1)
            self.view.base_model_bar.set_mode(stored.get("mode"))
            if conversation is not None:
                system = conversation.system_prompt
            elif saved.system_prompt is not None:
                system = saved.system_prompt
            else:
                system = str(app_settings.get("default_system_prompt") or "")
            panel.system_prompt.setPlainText(system)
            self.defaults.select_preset(str(stored.get("preset") or ""))
        finally:
            self._filling_settings = False

    def _panel_settings(self) -> dict[str, Any]:
        panel = self.view.settings_panel
        seed = panel.seed.value()
        return {
            "temperature": panel.temperature.value(),
            "top_p": panel.top_p.value(),
            "top_k": panel.top_k.value(),
            "min_p": panel.min_p.value(),
            "repeat_penalty": panel.repeat_penalty.value(),
            "seed": None if seed < 0 else seed,
            "max_tokens": panel.max_tokens.value(),
            "context_length": panel.context.value(),
            "threads": panel.threads.value(),
            "gpu_layers": panel.gpu_layers_value(),
            "preset": self.defaults.preset_name(),
            "mode": self.view.base_model_bar.mode(),
        }

    @Slot()
    def _on_settings_edited(self) -> None:
        if not self._filling_settings:
            self._panel_touched = True
            self._save_timer.start()

    @Slot()
    def _on_reset_settings(self) -> None:
        self._fill_settings(None)
        self._save_timer.start()

    def _save_settings(self) -> None:
        if self.current is None:
            return
        cid = self.current.id
        values = self._panel_settings()
        system = self.view.settings_panel.system_prompt.toPlainText()
        self.current.settings = values
        self.current.system_prompt = system
        self.tasks.run(
            lambda: self.store.update_settings(cid, system_prompt=system, settings=values),
            None,
            self._on_task_error,
            name="chat-settings",
        )

    # -- errors and shutdown ---------------------------------------------------------------------

    def _on_task_error(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, SlmdeskError) else f"Unexpected problem: {exc}"
        self.view.show_notice(message)

    def request_stop(self) -> None:
        """Save pending settings, then stop the reply (it is saved) and the inference thread."""
        self._undo_timer.stop()
        self._search_timer.stop()
        if self._save_timer.isActive():
            self._save_timer.stop()
            if self.current is not None:
                try:
                    self.store.update_settings(
                        self.current.id,
                        system_prompt=self.view.settings_panel.system_prompt.toPlainText(),
                        settings=self._panel_settings(),
                    )
                except SlmdeskError:
                    log.exception("could not save chat settings at shutdown")
        self.client.request_stop()

    def wait_stopped(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the inference thread to end."""
        return self.client.wait_stopped(timeout)

    def shutdown(self, budget: float = SHUTDOWN_BUDGET) -> bool:
        """`request_stop` and `wait_stopped` within ``budget`` seconds. True when stopped."""
        return not stop_all([self], Deadline(budget))


def _offload_supported() -> bool:
    """Whether llama.cpp can offload layers to a GPU here (asked on a worker thread)."""
    from slmdesk.llama.devices import offload_support

    return offload_support().supported
