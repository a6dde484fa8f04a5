"""A store made with ``connect=False`` opens its database later, on the thread that first needs it
(the window opens it on a worker thread, never on the GUI thread)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from slmdesk.chat.conversations import SCHEMA_VERSION, ConversationError, ConversationStore


def test_a_deferred_store_touches_nothing_until_used(tmp_path: Path) -> None:
    path = tmp_path / "later.sqlite3"
    store = ConversationStore(path, connect=False)
    assert not store.is_open
    assert not path.exists()
    opened_on: list[str] = []

    def first_use() -> None:
        store.create(title="Made on a worker")
        opened_on.append(threading.current_thread().name)

    worker = threading.Thread(target=first_use, name="slmdesk-test-opener")
    worker.start()
    worker.join(timeout=60)
    assert opened_on == ["slmdesk-test-opener"]
    assert store.is_open and path.exists()
    # the same connection serves every thread afterwards
    assert [c.title for c in store.list_conversations()] == ["Made on a worker"]
    assert store.schema_version == SCHEMA_VERSION
    store.close()


def test_open_is_idempotent_and_a_closed_store_stays_closed(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3", connect=False)
    store.open()
    store.open()
    store.close()
    assert not store.is_open
    with pytest.raises(ConversationError, match="closed"):
        store.open()
    with pytest.raises(ConversationError, match="closed"):
        store.list_conversations()


def test_a_newer_database_is_refused_when_opened_later(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    before = path.read_bytes()
    store = ConversationStore(path, connect=False)  # no error yet: nothing was read
    with pytest.raises(ConversationError, match="newer version of slmdesk"):
        store.open()
    with pytest.raises(ConversationError, match="newer version of slmdesk"):
        store.list_conversations()
    assert not store.is_open
    assert path.read_bytes() == before
