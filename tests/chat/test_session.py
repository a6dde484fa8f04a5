"""`ChatSession` on real llama.cpp (tiny model) and real SQLite: saving around a reply."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from slmdesk.chat.conversations import ConversationStore, Message
from slmdesk.chat.session import ChatSession
from slmdesk.common.errors import SlmdeskError
from slmdesk.llama.engine import ChatEngine, SamplingSettings


@pytest.fixture
def store() -> Iterator[ConversationStore]:
    with ConversationStore() as s:
        yield s


class Listener:
    """Records the session's events and what the database held at each streamed piece."""

    def __init__(self, store: ConversationStore | None = None) -> None:
        self.store = store
        self.events: list[str] = []
        self.pieces: list[str] = []
        self.saved_at_piece: list[str] = []
        self.stop_after: int | None = None
        self.stop = threading.Event()

    def messages_removed(self, ids: list[int]) -> None:
        self.events.append("removed")

    def user_saved(self, message: Message) -> None:
        self.events.append("user")

    def reply_started(self, message: Message) -> None:
        self.events.append("reply")
        self.reply_id = message.id

    def text(self, message_id: int, piece: str) -> None:
        if self.store is not None:
            self.saved_at_piece.append(self.store.get_message(message_id).text)
        self.pieces.append(piece)
        if self.stop_after is not None and len(self.pieces) >= self.stop_after:
            self.stop.set()


def test_stored_reply_saves_the_question_first_and_the_reply_while_it_streams(
    engine: ChatEngine, store: ConversationStore
) -> None:
    conversation = store.create()
    session = ChatSession(engine, store, conversation.id, save_interval=0.0)  # save every token
    listener = Listener(store)
    reply = session.reply("hello world", SamplingSettings(seed=1, max_tokens=16), listener)
    assert listener.events == ["user", "reply"]
    assert len(listener.pieces) > 2
    # at each piece, the database already held everything streamed before it
    for i, saved in enumerate(listener.saved_at_piece):
        assert saved == "".join(listener.pieces[:i])
    messages = store.get(conversation.id).messages
    assert [(m.role, m.finished) for m in messages] == [("user", True), ("assistant", True)]
    assert messages[0].text == "hello world"
    assert messages[1].text == reply.text == "".join(listener.pieces)
    assert messages[1].timings == reply.timings


def test_a_stopped_reply_is_kept_and_marked(engine: ChatEngine, store: ConversationStore) -> None:
    conversation = store.create()
    session = ChatSession(engine, store, conversation.id)
    listener = Listener()
    listener.stop_after = 3
    reply = session.reply(
        "hello", SamplingSettings(seed=1, max_tokens=300), listener, listener.stop
    )
    assert reply.timings["finish_reason"] == "cancelled"
    saved = store.get(conversation.id).messages[-1]
    assert saved.finished and saved.text == reply.text and saved.text


def test_a_failed_reply_keeps_the_question_and_drops_the_empty_answer(
    engine: ChatEngine, store: ConversationStore
) -> None:
    conversation = store.create()
    session = ChatSession(engine, store, conversation.id)
    with pytest.raises(SlmdeskError, match="too long"):
        session.reply("word " * 2000, SamplingSettings(max_tokens=8))
    messages = store.get(conversation.id).messages
    assert [m.role for m in messages] == ["user"]


def test_no_model_saves_the_question_and_says_so(store: ConversationStore) -> None:
    conversation = store.create()
    session = ChatSession(ChatEngine(), store, conversation.id)
    with pytest.raises(SlmdeskError, match="No model is loaded"):
        session.reply("anyone there?")
    assert [m.text for m in store.get(conversation.id).messages] == ["anyone there?"]


def test_in_memory_session_keeps_turns_and_undoes_a_failed_one(engine: ChatEngine) -> None:
    session = ChatSession(engine, system_prompt="be short")
    first = session.reply("hello", SamplingSettings(seed=1, max_tokens=8))
    assert [m.role for m in session.history] == ["user", "assistant"]
    assert session.history[1] is first.message and first.message.id < 0
    second = session.reply("and then?", SamplingSettings(seed=1, max_tokens=8))
    assert second.timings["reused_tokens"] > 0  # the first turn came from the cache
    with pytest.raises(SlmdeskError, match="too long"):
        session.reply("word " * 2000, SamplingSettings(max_tokens=8))
    assert len(session.history) == 4  # the failed question was taken back
    session.reset()
    assert session.history == []


def test_a_stored_session_needs_its_conversation(store: ConversationStore) -> None:
    with pytest.raises(ValueError, match="conversation id"):
        ChatSession(ChatEngine(), store)
