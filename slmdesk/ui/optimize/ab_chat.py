"""Side-by-side (A/B) chat: one prompt, the original and the optimized model answering together.

Each side is an `InferenceClient` — the same inference worker as the chat page, on its own named
thread (``slmdesk-ab-original``, ``slmdesk-ab-optimized``) — but without a conversation store:
a comparison is scratch work and must not appear among the user's conversations, so each
worker's `ChatSession` keeps its conversation in memory. Loads are jobs, text arrives coalesced
to at most 40 updates a second, Stop is each reply's event. `ABChatController.request_stop` /
`wait_stopped` stop both threads within the window's shutdown budget and free both models.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from slmdesk.llama.engine import SamplingSettings
from slmdesk.ui.optimize.ab_transcript import ABTranscript
from slmdesk.ui.runtime.inference import GenerateRequest, InferenceClient
from slmdesk.ui.runtime.jobs import SHUTDOWN_BUDGET, Deadline, stop_all
from slmdesk.ui.theme import icon

log = logging.getLogger("slmdesk.ui.ab_chat")

AB_CONTEXT = 2048


@dataclass
class ABSide:
    """The GUI thread's state of one side: its client (thread + worker) and what it is doing."""

    client: InferenceClient
    path: Path | None = None
    ready: bool = False
    generating: bool = False
    exchanges: int = 0  # prompts answered (finished or stopped) since the last clear


class ABPane(QFrame):
    """One side: the model's name, its status, the transcript (rendered like the chat)."""

    def __init__(self, heading: str) -> None:
        super().__init__()
        self.setProperty("role", "card")
        layout = QVBoxLayout(self)
        self.heading = QLabel(heading)
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        self.model_label = QLabel("")
        self.model_label.setTextFormat(Qt.TextFormat.PlainText)  # a file name, never markup
        self.model_label.setProperty("role", "muted")
        self.model_label.setWordWrap(True)
        self.status = QLabel("")
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # messages may quote a model's text
        self.status.setProperty("role", "muted")
        self.status.setWordWrap(True)
        self.transcript = ABTranscript()
        layout.addWidget(self.heading)
        layout.addWidget(self.model_label)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.status)

    def append_prompt(self, text: str) -> None:
        """Start a new exchange with the user's prompt."""
        self.transcript.add_exchange(text, self.model_label.text() or self.heading.text())

    def append_text(self, text: str) -> None:
        """Append streamed text to the reply without re-rendering the transcript."""
        self.transcript.append(text)

    def finish_reply(self, timings: dict[str, Any] | None = None) -> None:
        """The reply ended (finished, stopped or failed): render it as complete."""
        self.transcript.finish(timings)


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

    def _side(self, key: str) -> ABSide:
        side = self.sides.get(key)
        if side is None:
            client = InferenceClient(None, thread_name=f"slmdesk-ab-{key}")
            client.loaded.connect(lambda info, k=key: self._on_loaded(k, info))
            client.load_failed.connect(lambda msg, k=key: self._on_load_failed(k, msg))
            # the client's signals: re-emitted on the GUI thread, so these may touch widgets
            client.chunk.connect(lambda _mid, text, k=key: self._pane(k).append_text(text))
            client.reply_finished.connect(
                lambda _cid, payload, k=key: self._on_finished(k, payload)
            )
            client.reply_failed.connect(lambda _cid, msg, k=key: self._on_failed(k, msg))
            side = self.sides[key] = ABSide(client)
        return side

    def open(self, original: Path, optimized: Path, names: tuple[str, str]) -> None:
        """Load both models (each side keeps its model when it is already the one asked for)."""
        threads = max(1, (os.cpu_count() or 2) // 2)
        for key, path, name in (
            ("original", original, names[0]),
            ("optimized", optimized, names[1]),
        ):
            side = self._side(key)
            pane = self._pane(key)
            pane.model_label.setText(name)
            if side.path != path:
                pane.transcript.clear()
                side.exchanges = 0
                pane.status.setText("Loading…")
                side.path, side.ready = path, False
                side.client.load(path, AB_CONTEXT, threads)  # a new model starts a new chat
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
            pane = self._pane(key)
            pane.append_prompt(text)
            pane.status.setText("Writing…")
            side.generating = True
            side.client.generate(GenerateRequest(0, text, dict(sampling)))
        self._update_buttons()

    @Slot()
    def stop(self) -> None:
        """Stop both replies."""
        for side in self.sides.values():
            side.client.stop()

    def _on_loaded(self, key: str, info: dict[str, Any]) -> None:
        side = self.sides.get(key)
        if side is None:
            return  # shut down meanwhile
        side.ready = True
        self._pane(key).status.setText(f"Ready · {info['format']}")
        self._update_buttons()

    def _on_load_failed(self, key: str, message: str) -> None:
        self._pane(key).status.setText(f"Could not load: {message}")
        self._update_buttons()

    def _on_finished(self, key: str, payload: dict[str, Any]) -> None:
        side = self.sides.get(key)
        if side is None:
            return
        side.generating = False
        side.exchanges += 1
        timings = payload["timings"]
        reason = " (stopped)" if timings.get("finish_reason") == "cancelled" else ""
        self._pane(key).finish_reply(timings)
        self._pane(key).status.setText(
            f"{timings.get('generated_tokens', 0)} tokens · "
            f"{timings.get('tokens_per_second', 0):.1f} tokens/s{reason}"
        )
        self._update_buttons()

    def _on_failed(self, key: str, message: str) -> None:
        side = self.sides.get(key)
        if side is None:
            return
        side.generating = False  # the session forgot the unanswered prompt
        self._pane(key).finish_reply()
        self._pane(key).status.setText(message)
        self._update_buttons()

    @Slot()
    def _on_clear(self) -> None:
        if self.generating:
            return
        for key, side in self.sides.items():
            side.client.reset_conversation()
            side.exchanges = 0
            self._pane(key).transcript.clear()

    @Slot()
    def _on_back(self) -> None:
        self.shutdown()
        self.closed.emit()

    # -- shutdown (the `Stoppable` protocol) -----------------------------------------------------

    def request_stop(self) -> None:
        """Stop both replies and ask both threads to end."""
        for side in self.sides.values():
            side.client.request_stop()

    def wait_stopped(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for both threads; free both models; forget them."""
        deadline = Deadline(timeout)
        stopped = all([s.client.wait_stopped(deadline.remaining()) for s in self.sides.values()])
        self.sides.clear()
        self._update_buttons()
        return stopped

    def shutdown(self, budget: float = SHUTDOWN_BUDGET) -> bool:
        """Stop both sides within ``budget`` seconds. Idempotent; True when both stopped."""
        return not stop_all([self], Deadline(budget))
