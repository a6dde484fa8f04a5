"""One conversation's turn-taking on a `ChatEngine`: what happens around a reply.

`ChatSession` is the part of a chat that is neither the model nor the screen: it saves the
user's message before generation starts, streams the reply while saving it at least once a
second, and ends it — finished, stopped (kept, with ``finish_reason`` "cancelled") or failed
(the partial text kept and marked, an empty reply removed). A process killed mid-reply therefore
loses at most the last second of text, and the reply is shown as interrupted on the next start.

With a `ConversationStore` the session works on a stored conversation. Without one (the
side-by-side comparison, the terminal chat) it keeps the history in memory; its messages get
negative ids so listeners can treat both cases alike.

A conversation is in one of two modes, stored with its settings as ``"mode"``: ``chat`` (the
model's prompt format, which for a base model is a hidden question-and-answer frame) or
``complete`` (text completion: the latest message is continued as written, with no hidden
prompt). Either way only what the user typed and what the model wrote are saved.

No Qt here: the window's inference thread, the A/B view and ``slmdesk chat`` all use it. It
blocks while the engine generates; run it on a worker thread and stop it with ``stop_event``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from slmdesk.chat.conversations import ConversationStore, Message
from slmdesk.common.errors import SlmdeskError
from slmdesk.llama.engine import (
    EngineError,
    GenerationResult,
    SamplingSettings,
    TokenCallback,
)

log = logging.getLogger("slmdesk.chat.session")

SAVE_INTERVAL = 1.0
NO_MODEL = "No model is loaded: pick one above the chat."
CHAT = "chat"
COMPLETE = "complete"
MODES = (CHAT, COMPLETE)


class SessionListener(Protocol):
    """What a session tells its caller while a turn happens (all on the session's thread)."""

    def messages_removed(self, ids: list[int]) -> None:
        """Messages were deleted (edit and resend, regenerate)."""

    def user_saved(self, message: Message) -> None:
        """The user's message is stored (before generation starts)."""

    def reply_started(self, message: Message) -> None:
        """The (empty, unfinished) reply exists; text follows."""

    def text(self, message_id: int, piece: str) -> None:
        """A piece of the reply's visible text (one token or so: throttle it for a screen)."""


class ReplyEngine(Protocol):
    """What a session needs of an engine: the local `ChatEngine` or a `RemoteEngine`."""

    @property
    def is_loaded(self) -> bool:
        """Whether replies can be written now."""

    def reset_cache(self) -> None:
        """Forget any cached prompt."""

    def generate(
        self,
        messages: list[dict[str, str]],
        sampling: SamplingSettings | None = None,
        on_token: TokenCallback | None = None,
        stop_event: threading.Event | None = None,
        complete: bool = False,
    ) -> GenerationResult:
        """Write the reply to ``messages``, streaming it through ``on_token``."""


class _Quiet:
    """A listener that ignores everything."""

    def messages_removed(self, ids: list[int]) -> None:
        pass

    def user_saved(self, message: Message) -> None:
        pass

    def reply_started(self, message: Message) -> None:
        pass

    def text(self, message_id: int, piece: str) -> None:
        pass


@dataclass
class Reply:
    """A reply that ended normally or was stopped (failures raise instead)."""

    message: Message
    timings: dict[str, Any]
    dropped: int = 0
    format_description: str = ""

    @property
    def text(self) -> str:
        """The reply's text."""
        return self.message.text


@dataclass
class ChatSession:
    """Replies for one conversation: stored (``store`` and ``conversation_id``) or in memory.

    Args:
        engine: the loaded engine, local or remote (used from the session's thread only).
        store: where the conversation lives; None keeps it in ``history``.
        conversation_id: the stored conversation (with ``store``).
        system_prompt: the system prompt of an in-memory conversation.
        save_interval: at most this many seconds between saves of a streaming reply.
        mode: ``chat`` or ``complete`` when neither the settings passed to `reply` nor the
            stored conversation's settings name one.
    """

    engine: ReplyEngine
    store: ConversationStore | None = None
    conversation_id: int | None = None
    system_prompt: str = ""
    save_interval: float = SAVE_INTERVAL
    mode: str = CHAT
    history: list[Message] = field(default_factory=list)
    _ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(-1, -1), init=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.store is not None and self.conversation_id is None:
            raise ValueError("a stored session needs a conversation id")
        if self.mode not in MODES:
            raise ValueError(f"unknown chat mode {self.mode!r}; choose from {MODES}")

    def reset(self) -> None:
        """Forget an in-memory conversation (and the engine's cached prompt)."""
        self.history.clear()
        if self.engine.is_loaded:
            self.engine.reset_cache()

    def reply(
        self,
        user_text: str | None,
        sampling: SamplingSettings | Mapping[str, Any] | None = None,
        listener: SessionListener | None = None,
        stop_event: threading.Event | None = None,
        replace_from: int | None = None,
    ) -> Reply:
        """Add ``user_text`` (None: answer the conversation as it stands) and write the reply.

        Args:
            user_text: the new user message, saved before generation starts.
            sampling: settings; empty uses the stored conversation's own. A ``"mode"`` key
                (``chat`` / ``complete``) in a mapping chooses the mode for this reply.
            listener: told about saved messages and streamed text.
            stop_event: set from any thread to stop the reply within one token (it is kept).
            replace_from: delete this message and everything after it first (stored
                conversations: edit and resend, regenerate).

        Raises:
            SlmdeskError: one sentence for the user; whatever was saved stays consistent (the
                user's message kept, a partial reply kept and marked, an empty one removed).
        """
        listener = listener or _Quiet()
        mark = len(self.history)
        mode = _mode_of(sampling, self.mode)
        if self.store is not None:
            messages, settings, reply, mode = self._prepare_stored(
                user_text, sampling, listener, replace_from
            )
        else:
            messages, settings, reply = self._prepare_in_memory(user_text, sampling, listener)
        listener.reply_started(reply)
        return self._stream(reply, messages, settings, listener, stop_event, mark, mode)

    # -- before generation -----------------------------------------------------------------------

    def _prepare_stored(
        self,
        user_text: str | None,
        sampling: SamplingSettings | Mapping[str, Any] | None,
        listener: SessionListener,
        replace_from: int | None,
    ) -> tuple[list[dict[str, str]], SamplingSettings, Message, str]:
        store, cid = self.store, self.conversation_id
        assert store is not None and cid is not None
        if replace_from is not None:
            removed = store.truncate_after(replace_from, inclusive=True)
            listener.messages_removed([m.id for m in removed])
        if user_text is not None:
            listener.user_saved(store.add_message(cid, "user", user_text))
        if not self.engine.is_loaded:
            raise EngineError(NO_MODEL)
        conversation = store.get(cid)
        settings = _settings(sampling or conversation.settings)
        mode = _mode_of(sampling, _mode_of(conversation.settings, self.mode))
        reply = store.add_message(cid, "assistant", "", finished=False)
        return conversation.chat_messages(), settings, reply, mode

    def _prepare_in_memory(
        self,
        user_text: str | None,
        sampling: SamplingSettings | Mapping[str, Any] | None,
        listener: SessionListener,
    ) -> tuple[list[dict[str, str]], SamplingSettings, Message]:
        settings = _settings(sampling)
        if not self.engine.is_loaded:
            raise EngineError(NO_MODEL)
        if user_text is not None:
            user = self._message("user", user_text, finished=True)
            self.history.append(user)
            listener.user_saved(user)
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        messages += [{"role": m.role, "content": m.text} for m in self.history]
        return messages, settings, self._message("assistant", "", finished=False)

    def _message(self, role: str, text: str, finished: bool) -> Message:
        return Message(
            id=next(self._ids),
            conversation_id=0,
            position=len(self.history),
            role=role,
            text=text,
            timings=None,
            created_at=time.time(),
            finished=finished,
        )

    # -- streaming and the end of a reply --------------------------------------------------------

    def _stream(
        self,
        reply: Message,
        messages: list[dict[str, str]],
        settings: SamplingSettings,
        listener: SessionListener,
        stop_event: threading.Event | None,
        mark: int,
        mode: str = CHAT,
    ) -> Reply:
        parts: list[str] = []
        last_save = time.monotonic()

        def on_token(piece: str) -> None:
            nonlocal last_save
            parts.append(piece)
            listener.text(reply.id, piece)
            now = time.monotonic()
            if self.store is not None and now - last_save >= self.save_interval:
                self.store.update_message_text(reply.id, "".join(parts))
                last_save = now

        try:
            result = self.engine.generate(
                messages, settings, on_token, stop_event, complete=mode == COMPLETE
            )
        except SlmdeskError as exc:
            self._fail(reply, "".join(parts), mark)
            raise exc from None
        except Exception as exc:  # llama.cpp can raise anything; the caller lives on
            log.exception("generation failed")
            self._fail(reply, "".join(parts), mark)
            raise EngineError(f"Generation failed: {exc}") from exc
        timings = result.timings.to_dict()
        if self.store is not None:
            message = self.store.finish_message(reply.id, result.text, timings)
        else:
            reply.text, reply.timings, reply.finished = result.text, timings, True
            self.history.append(reply)
            message = reply
        return Reply(message, timings, result.dropped_messages, result.format_description)

    def _fail(self, reply: Message, text: str, mark: int) -> None:
        """Keep a partial reply (marked as failed) or remove an empty one.

        In memory, the turn is undone instead (``mark``: the history's length before it), so
        the unanswered question can simply be asked again.
        """
        if self.store is None:
            del self.history[mark:]
            return
        try:
            if text:
                self.store.finish_message(reply.id, text, {"finish_reason": "error"})
            else:
                self.store.truncate_after(reply.id, inclusive=True)
        except Exception:  # the failure is reported by the caller either way
            log.exception("could not save the failed reply")


def _mode_of(settings: SamplingSettings | Mapping[str, Any] | None, default: str) -> str:
    """The ``"mode"`` a settings mapping names, else ``default`` (unknown values too)."""
    if isinstance(settings, Mapping) and settings.get("mode") in MODES:
        return str(settings["mode"])
    return default


def _settings(sampling: SamplingSettings | Mapping[str, Any] | None) -> SamplingSettings:
    if isinstance(sampling, SamplingSettings):
        return sampling
    return SamplingSettings.from_dict(sampling)
