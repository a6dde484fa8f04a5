"""What the Chat page says when the window's local server shares its model thread.

API requests and chat turns take turns on one inference thread: a reply sent while a request is
answered waits, and a request for another model leaves that model loaded, so the next turn loads
the user's model again. Both are said above the composer; nothing here touches the thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Slot

from slmdesk.ui.chat.controller import ChatController
from slmdesk.ui.runtime.shared_inference import SharedInference


class ServerChatNotice(QObject):
    """Connects the server's activity to the Chat page's notice line."""

    def __init__(self, controller: ChatController, shared: SharedInference) -> None:
        super().__init__(controller)
        self.controller = controller
        self.request_model: str | None = None  # the request being answered now
        self._reply_running = False
        self._shown = ""  # the notice this helper put up (cleared only if still shown)
        worker = controller.client.worker
        shared.request_started.connect(self._on_request_started)
        shared.request_ended.connect(self._on_request_ended)
        worker.model_restoring.connect(self._on_restoring)
        worker.reply_started.connect(self._on_reply_started)
        worker.reply_finished.connect(self._on_reply_ended)
        worker.reply_failed.connect(self._on_reply_ended)
        view = controller.view
        # after the controller's own handlers: the turn has been queued by then
        view.send_button.clicked.connect(self._on_sent)
        view.composer.send_requested.connect(self._on_sent)

    def _waiting(self) -> bool:
        return self.controller.generating and not self._reply_running

    def _say(self, text: str) -> None:
        self._shown = text
        self.controller.view.show_notice(text)

    def _clear(self) -> None:
        if self._shown and self.controller.view.notice.text() == self._shown:
            self.controller.view.show_notice("")
        self._shown = ""

    def _say_waiting(self) -> None:
        if self.request_model is not None and self._waiting():
            self._say(
                f"The local server is answering a request with {self.request_model}; "
                "your reply starts after it."
            )

    @Slot()
    def _on_sent(self) -> None:
        self._say_waiting()

    @Slot(str, str)
    def _on_request_started(self, _label: str, model: str) -> None:
        self.request_model = model
        self._say_waiting()

    @Slot(int)
    def _on_request_ended(self, _served: int) -> None:
        self.request_model = None

    @Slot(str)
    def _on_restoring(self, path: str) -> None:
        name = self.controller.loaded_name or Path(path).stem
        self._say(f"Loading {name} again for your chat: the local server had loaded another model.")

    @Slot(int, object)
    def _on_reply_started(self, _conversation_id: int, _message: object) -> None:
        self._reply_running = True
        if self._shown.startswith("The local server is answering"):
            self._clear()

    @Slot()
    def _on_reply_ended(self, *_args: object) -> None:
        self._reply_running = False  # a "Loading … again" notice stays until the next send
