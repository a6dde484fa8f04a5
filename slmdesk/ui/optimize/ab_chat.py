"""Side-by-side (A/B) chat: one prompt, the original and the optimized model answering together.

Each side owns a `ChatEngine` on its own named QThread (``slmdesk-ab-original``,
``slmdesk-ab-optimized``), like the chat page's inference thread but without a conversation
store: a comparison is scratch work and must not appear among the user's conversations.
Requests arrive as queued signals; text leaves as signals coalesced to at most 40 a second.
Stop is a `threading.Event` set from the GUI thread (the worker's event loop is busy while it
generates). `ABChatController.shutdown` stops both threads and frees both models.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from slmdesk.common.errors import SlmdeskError
from slmdesk.llama.engine import ChatEngine, SamplingSettings
from slmdesk.ui.runtime.inference import stop_engine_thread
from slmdesk.ui.theme import icon

log = logging.getLogger("slmdesk.ui.ab_chat")

CHUNK_INTERVAL = 1 / 40
AB_CONTEXT = 2048


class ABWorker(QObject):
    """Lives on one side's thread; owns that side's engine."""

    loaded = Signal(str)  # chat format description
    load_failed = Signal(str)
    chunk = Signal(str)
    finished = Signal(object)  # dict: text, timings
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.engine = ChatEngine()
        self.stop_event = threading.Event()
        self.cancel_load = threading.Event()

    @Slot(str, int)
    def load(self, path: str, n_threads: int) -> None:
        """Load ``path`` (replacing this side's model)."""
        try:
            loaded = self.engine.load(
                path, context_length=AB_CONTEXT, n_threads=n_threads, cancel=self.cancel_load
            )
        except SlmdeskError as exc:
            self.load_failed.emit(str(exc))
            return
        except Exception as exc:  # llama.cpp can raise anything; the window lives on
            log.exception("A/B load of %s failed", path)
            self.load_failed.emit(f"The model could not be loaded: {exc}")
            return
        self.loaded.emit(loaded.chat_format.description)

    @Slot(object, object)
    def generate(self, messages: list[dict[str, str]], sampling: dict[str, Any]) -> None:
        """Stream a reply to ``messages``."""
        self.stop_event.clear()
        pending: list[str] = []
        last = time.monotonic()

        def on_token(piece: str) -> None:
            nonlocal last
            pending.append(piece)
            now = time.monotonic()
            if now - last >= CHUNK_INTERVAL:
                self.chunk.emit("".join(pending))
                pending.clear()
                last = now

        try:
            result = self.engine.generate(
                messages, SamplingSettings.from_dict(sampling), on_token, self.stop_event
            )
        except SlmdeskError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:
            log.exception("A/B generation failed")
            self.failed.emit(f"Generation failed: {exc}")
            return
        if pending:
            self.chunk.emit("".join(pending))
        self.finished.emit({"text": result.text, "timings": result.timings.to_dict()})


class ABSide(QObject):
    """The GUI thread's handle on one side: its thread, its worker, its history."""

    # The worker's signals, re-emitted on the GUI thread (signal-to-signal connections to an
    # object living there are queued), so handlers connected here may touch widgets.
    loaded = Signal(str)
    load_failed = Signal(str)
    chunk = Signal(str)
    finished = Signal(object)
    failed = Signal(str)
    _load = Signal(str, int)
    _generate = Signal(object, object)

    def __init__(self, thread_name: str) -> None:
        super().__init__()
        self.thread = QThread()
        self.thread.setObjectName(thread_name)
        self.worker = ABWorker()
        self.worker.moveToThread(self.thread)
        self._load.connect(self.worker.load)
        self._generate.connect(self.worker.generate)
        for name in ("loaded", "load_failed", "chunk", "finished", "failed"):
            getattr(self.worker, name).connect(getattr(self, name))
        self.thread.start()
        self.path: Path | None = None
        self.ready = False
        self.generating = False
        self.history: list[dict[str, str]] = []
        self._stopped = False

    def load(self, path: Path, n_threads: int) -> None:
        """Queue a load."""
        self.path = path
        self.ready = False
        self._load.emit(str(path), n_threads)

    def generate(self, sampling: dict[str, Any]) -> None:
        """Queue a reply to the history."""
        self.generating = True
        self._generate.emit(list(self.history), dict(sampling))

    def stop(self) -> None:
        """Stop the reply being written (within one token)."""
        self.worker.stop_event.set()

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop, end the thread, free the model. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        stop_engine_thread(self.thread, self.worker, timeout_ms)


class ABPane(QFrame):
    """One side: the model's name, its status, the transcript."""

    def __init__(self, heading: str) -> None:
        super().__init__()
        self.setProperty("role", "card")
        layout = QVBoxLayout(self)
        self.heading = QLabel(heading)
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        self.model_label = QLabel("")
        self.model_label.setProperty("role", "muted")
        self.model_label.setWordWrap(True)
        self.status = QLabel("")
        self.status.setProperty("role", "muted")
        self.status.setWordWrap(True)
        self.transcript = QPlainTextEdit()
        self.transcript.setReadOnly(True)
        self.transcript.setPlaceholderText("Replies appear here.")
        layout.addWidget(self.heading)
        layout.addWidget(self.model_label)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.status)

    def append_prompt(self, text: str) -> None:
        """Start a new exchange with the user's prompt."""
        if self.transcript.toPlainText():
            self.transcript.appendPlainText("")
        self.transcript.appendPlainText(f"You: {text}")
        self.transcript.appendPlainText("")

    def append_text(self, text: str) -> None:
        """Append streamed text at the end without re-rendering the transcript."""
        cursor = self.transcript.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        self.transcript.setTextCursor(cursor)
        self.transcript.ensureCursorVisible()

    def reply_text(self) -> str:
        """Everything after the last prompt (for tests)."""
        text = self.transcript.toPlainText()
        marker = text.rfind("You: ")
        if marker < 0:
            return ""
        return text[marker:].split("\n", 2)[-1] if text[marker:].count("\n") >= 2 else ""


class ABChatView(QWidget):
    """Layout of the side-by-side chat."""

    def __init__(self) -> None:
        super().__init__()
        title = QLabel("Side by side")
        title.setProperty("role", "title")
        hint = QLabel(
            "The same prompt goes to both models with the same sampling seed, so differences "
            "come from the models. Nothing here is saved to your conversations."
        )
        hint.setProperty("role", "muted")
        hint.setWordWrap(True)
        self.original = ABPane("Original")
        self.optimized = ABPane("Optimized")
        panes = QHBoxLayout()
        panes.addWidget(self.original, 1)
        panes.addWidget(self.optimized, 1)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("Ask both models something…")
        self.send_button = QPushButton(icon("send"), "Send")
        self.send_button.setProperty("role", "primary")
        self.stop_button = QPushButton(icon("stop"), "Stop")
        self.clear_button = QPushButton(icon("new"), "Clear")
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 4096)
        self.max_tokens.setValue(200)
        self.max_tokens.setPrefix("up to ")
        self.max_tokens.setSuffix(" tokens")
        self.greedy = QCheckBox("Greedy (no sampling)")
        self.greedy.setToolTip("Always pick the most likely token: replies are reproducible.")
        composer = QHBoxLayout()
        composer.addWidget(self.prompt, 1)
        composer.addWidget(self.send_button)
        composer.addWidget(self.stop_button)
        options = QHBoxLayout()
        options.addWidget(self.max_tokens)
        options.addWidget(self.greedy)
        options.addStretch(1)
        options.addWidget(self.clear_button)
        self.back_button = QPushButton("Back to the report")
        options.addWidget(self.back_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(hint)
        layout.addLayout(panes, 1)
        layout.addLayout(composer)
        layout.addLayout(options)


class ABChatController(QObject):
    """Loads both models, sends prompts to both, stops and shuts both sides down."""

    closed = Signal()

    def __init__(self, view: ABChatView) -> None:
        super().__init__()
        self.view = view
        self.sides: dict[str, ABSide] = {}
        view.send_button.clicked.connect(self.send)
        view.prompt.returnPressed.connect(self.send)
        view.stop_button.clicked.connect(self.stop)
        view.clear_button.clicked.connect(self._on_clear)
        view.back_button.clicked.connect(self._on_back)
        self._update_buttons()

    def _pane(self, key: str) -> ABPane:
        return self.view.original if key == "original" else self.view.optimized

    def open(self, original: Path, optimized: Path, names: tuple[str, str]) -> None:
        """Load both models (each side keeps its model when it is already the one asked for)."""
        threads = max(1, (os.cpu_count() or 2) // 2)
        for key, path, name in (
            ("original", original, names[0]),
            ("optimized", optimized, names[1]),
        ):
            side = self.sides.get(key)
            if side is None:
                side = ABSide(f"slmdesk-ab-{key}")
                side.loaded.connect(lambda fmt, k=key: self._on_loaded(k, fmt))
                side.load_failed.connect(lambda msg, k=key: self._on_load_failed(k, msg))
                side.chunk.connect(lambda text, k=key: self._pane(k).append_text(text))
                side.finished.connect(lambda result, k=key: self._on_finished(k, result))
                side.failed.connect(lambda msg, k=key: self._on_failed(k, msg))
                self.sides[key] = side
            pane = self._pane(key)
            pane.model_label.setText(name)
            if side.path != path:
                pane.transcript.clear()
                side.history.clear()
                pane.status.setText("Loading…")
                side.load(path, threads)
        self._update_buttons()

    @property
    def ready(self) -> bool:
        """Both models are loaded."""
        return len(self.sides) == 2 and all(s.ready for s in self.sides.values())

    @property
    def generating(self) -> bool:
        """A reply is being written on either side."""
        return any(s.generating for s in self.sides.values())

    def _update_buttons(self) -> None:
        self.view.send_button.setEnabled(self.ready and not self.generating)
        self.view.stop_button.setEnabled(self.generating)

    @Slot()
    def send(self) -> None:
        """Send the prompt to both models."""
        text = self.view.prompt.text().strip()
        if not text or not self.ready or self.generating:
            return
        seed = secrets.randbelow(2**31)
        sampling = SamplingSettings(
            temperature=0.0 if self.view.greedy.isChecked() else 0.7,
            seed=seed,
            max_tokens=self.view.max_tokens.value(),
        ).to_dict()
        self.view.prompt.clear()
        for key, side in self.sides.items():
            side.history.append({"role": "user", "content": text})
            pane = self._pane(key)
            pane.append_prompt(text)
            pane.status.setText("Writing…")
            side.generate(sampling)
        self._update_buttons()

    @Slot()
    def stop(self) -> None:
        """Stop both replies."""
        for side in self.sides.values():
            side.stop()

    def _on_loaded(self, key: str, fmt: str) -> None:
        side = self.sides.get(key)
        if side is None:
            return  # shut down meanwhile
        side.ready = True
        self._pane(key).status.setText(f"Ready · {fmt}")
        self._update_buttons()

    def _on_load_failed(self, key: str, message: str) -> None:
        self._pane(key).status.setText(f"Could not load: {message}")
        self._update_buttons()

    def _on_finished(self, key: str, result: dict[str, Any]) -> None:
        side = self.sides.get(key)
        if side is None:
            return
        side.generating = False
        side.history.append({"role": "assistant", "content": str(result["text"])})
        timings = result["timings"]
        reason = " (stopped)" if timings.get("finish_reason") == "cancelled" else ""
        self._pane(key).status.setText(
            f"{timings.get('generated_tokens', 0)} tokens · "
            f"{timings.get('tokens_per_second', 0):.1f} tokens/s{reason}"
        )
        self._update_buttons()

    def _on_failed(self, key: str, message: str) -> None:
        side = self.sides.get(key)
        if side is None:
            return
        side.generating = False
        if side.history and side.history[-1]["role"] == "user":
            side.history.pop()
        self._pane(key).status.setText(message)
        self._update_buttons()

    @Slot()
    def _on_clear(self) -> None:
        if self.generating:
            return
        for key, side in self.sides.items():
            side.history.clear()
            self._pane(key).transcript.clear()

    @Slot()
    def _on_back(self) -> None:
        self.shutdown()
        self.closed.emit()

    def shutdown(self) -> None:
        """Stop both sides, end their threads and free both models."""
        for side in self.sides.values():
            side.shutdown()
        self.sides.clear()
        self._update_buttons()
