"""The conversation store on real SQLite files: durability, migrations, search, export, threads."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmdesk.chat.conversations import (
    DEFAULT_TITLE,
    SCHEMA_VERSION,
    ConversationError,
    ConversationStore,
    make_title,
)
from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError


@pytest.fixture
def store() -> Iterator[ConversationStore]:
    with ConversationStore() as s:
        yield s


def test_default_location_wal_and_schema_version(store: ConversationStore) -> None:
    assert store.path == paths.database_path()
    assert store.schema_version == SCHEMA_VERSION >= 1
    raw = sqlite3.connect(store.path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


def test_a_database_from_a_future_version_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE conversations (id INTEGER PRIMARY KEY, secret TEXT)")
    raw.execute("INSERT INTO conversations (secret) VALUES ('keep me')")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    before = path.read_bytes()
    with pytest.raises(SlmdeskError, match="newer version of slmdesk"):
        ConversationStore(path)
    assert path.read_bytes() == before
    assert not (tmp_path / "future.sqlite3-wal").exists()


def test_a_file_that_is_not_a_database_is_moved_aside_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite at all, just some text " * 100)
    before = path.read_bytes()
    with ConversationStore(path) as store:
        notice = store.take_notice()
        assert store.list_conversations() == []
        assert store.take_notice() is None  # shown once
    (aside,) = tmp_path.glob("junk-damaged-*.sqlite3")
    assert aside.read_bytes() == before
    assert notice is not None and str(aside) in notice and "file is not a database" in notice


def test_an_old_database_is_migrated_and_reopening_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA application_id = 7")  # version 0, no tables: a file from "before"
    raw.close()
    with ConversationStore(path) as s:
        cid = s.create(title="Kept").id
        assert s.notice is None
    with ConversationStore(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.get(cid).title == "Kept"
    assert list(tmp_path.glob("old-*")) == []  # nothing to back up, nothing damaged


def test_conversation_lifecycle(store: ConversationStore) -> None:
    conv = store.create(model="tiny", system_prompt="Be kind.", settings={"temperature": 0.2})
    assert conv.title == DEFAULT_TITLE and conv.title_is_auto
    user = store.add_message(conv.id, "user", "How do I bake bread at home?\nDetails follow.")
    reply = store.add_message(conv.id, "assistant", "", finished=False)
    assert not reply.finished
    store.update_message_text(reply.id, "Mix flour")
    assert store.get_message(reply.id).text == "Mix flour"
    assert [m.id for m in store.unfinished_messages()] == [reply.id]
    done = store.finish_message(reply.id, "Mix flour and water.", {"tokens_per_second": 12.5})
    assert done.finished and done.timings == {"tokens_per_second": 12.5}
    loaded = store.get(conv.id)
    assert loaded.title == "How do I bake bread at home?"  # auto-titled from the first line
    assert [m.position for m in loaded.messages] == [0, 1]
    assert loaded.chat_messages() == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": user.text},
        {"role": "assistant", "content": "Mix flour and water."},
    ]
    store.add_message(conv.id, "user", "Another question")
    assert store.get(conv.id).title == "How do I bake bread at home?"  # titled once
    store.rename(conv.id, "  Bread   ")
    assert store.get(conv.id).title == "Bread"
    updated = store.update_settings(conv.id, system_prompt="Be brief.", settings={"seed": 3})
    assert updated.system_prompt == "Be brief." and updated.settings == {"seed": 3}
    assert updated.model == "tiny"


def test_titles() -> None:
    assert make_title("   \n  hello   world \nsecond") == "hello world"
    long = make_title("word " * 40)
    assert long.endswith("…") and len(long) <= 61
    assert make_title("") == DEFAULT_TITLE


def test_bad_input_is_a_clear_error(store: ConversationStore) -> None:
    conv = store.create()
    with pytest.raises(ConversationError, match="empty"):
        store.rename(conv.id, "   ")
    with pytest.raises(ConversationError, match="no conversation 999"):
        store.get(999)
    with pytest.raises(ConversationError, match="no conversation"):
        store.add_message(999, "user", "x")
    with pytest.raises(ConversationError, match="role"):
        store.add_message(conv.id, "wizard", "x")
    with pytest.raises(ConversationError, match="no message"):
        store.update_message_text(12345, "x")
    store.close()
    with pytest.raises(ConversationError, match="closed"):
        store.list_conversations()


def test_list_is_newest_first_and_search_covers_titles_and_text(store: ConversationStore) -> None:
    a = store.create(title="Gardening tips")
    b = store.create(title="Physics")
    store.add_message(b.id, "user", "Explain the 100% efficient engine_x")
    c = store.create(title="Cooking")
    while time.time() <= c.updated_at:  # the clock must move on for "most recent" to differ
        pass
    store.add_message(a.id, "user", "Tomatoes?")  # a is now the most recent
    assert [x.id for x in store.list_conversations()] == [a.id, c.id, b.id]
    assert [x.id for x in store.list_conversations("GARDEN")] == [a.id]
    assert [x.id for x in store.list_conversations("efficient")] == [b.id]
    assert [x.id for x in store.list_conversations("100%")] == [b.id]
    assert [x.id for x in store.list_conversations("e_x")] == [b.id]
    store.add_message(c.id, "user", "abc and 50 percent")
    assert store.list_conversations("a_c") == []  # LIKE wildcards are taken literally
    assert store.list_conversations("50%") == []
    assert store.list_conversations("nothing like this") == []


def test_delete_can_be_undone_and_purged(store: ConversationStore) -> None:
    conv = store.create(title="Oops")
    store.add_message(conv.id, "user", "keep this text")
    store.delete(conv.id)
    assert store.list_conversations() == []
    assert [c.id for c in store.list_conversations(include_deleted=True)] == [conv.id]
    store.restore(conv.id)
    assert [m.text for m in store.get(conv.id).messages] == ["keep this text"]
    store.delete(conv.id)
    assert store.purge() == 1
    with pytest.raises(ConversationError):
        store.get(conv.id)
    raw = sqlite3.connect(store.path)
    assert raw.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0  # cascaded
    raw.close()


def test_truncate_after_for_regenerate_and_edit(store: ConversationStore) -> None:
    conv = store.create()
    ids = [
        store.add_message(conv.id, role, text).id
        for role, text in [("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2")]
    ]
    removed = store.truncate_after(ids[2])  # regenerate the last reply
    assert [m.text for m in removed] == ["a2"]
    assert [m.text for m in store.get(conv.id).messages] == ["q1", "a1", "q2"]
    removed = store.truncate_after(ids[2], inclusive=True)  # edit q2 and resend
    assert [m.text for m in removed] == ["q2"]
    new = store.add_message(conv.id, "user", "q2 edited")
    assert new.position == 2
    with pytest.raises(ConversationError):
        store.truncate_after(99999)


def test_export_markdown_and_json(store: ConversationStore, tmp_path: Path) -> None:
    first = store.create(model="tiny", system_prompt="Sys prompt")
    store.add_message(first.id, "user", "Hello **markdown**")
    store.add_message(first.id, "assistant", "```python\nprint(1)\n```")
    second = store.create(title="Second")
    store.add_message(second.id, "user", "Ünïcödé ✓")
    md = store.export(tmp_path / "one.md", first.id).read_text(encoding="utf-8")
    assert md.startswith("# Hello **markdown**")
    assert "**System:**\n\nSys prompt" in md and "```python\nprint(1)\n```" in md
    assert "Second" not in md
    all_md = store.export(tmp_path / "all.md").read_text(encoding="utf-8")
    assert "# Second" in all_md and "# Hello **markdown**" in all_md
    data = json.loads(store.export(tmp_path / "all.json").read_text(encoding="utf-8"))
    assert data["format"] == "slmdesk-conversations"
    assert {c["title"] for c in data["conversations"]} == {"Hello **markdown**", "Second"}
    second_json = next(c for c in data["conversations"] if c["title"] == "Second")
    assert second_json["messages"][0]["text"] == "Ünïcödé ✓"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(ConversationError, match="Cannot write"):
        store.export(tmp_path / "all.md" / "inside-a-file.md")


def test_two_threads_writing_at_once_lose_nothing(store: ConversationStore) -> None:
    conv = store.create()
    reply = store.add_message(conv.id, "assistant", "", finished=False)
    errors: list[BaseException] = []

    def streamer() -> None:  # the inference worker saving a streamed reply
        try:
            for i in range(200):
                store.update_message_text(reply.id, "x" * i)
        except BaseException as exc:
            errors.append(exc)

    def gui() -> None:  # the GUI thread adding conversations and messages meanwhile
        try:
            for i in range(100):
                other = store.create(title=f"c{i}")
                store.add_message(other.id, "user", f"m{i}")
                store.list_conversations("m")
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=streamer, name="slmdesk-test-stream"),
        threading.Thread(target=gui, name="slmdesk-test-gui"),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.get_message(reply.id).text == "x" * 199
    assert len(store.list_conversations()) == 101


def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    with ConversationStore(path) as a, ConversationStore(path) as b:
        conv = a.create(title="from a")
        b.add_message(conv.id, "user", "from b")
        assert [m.text for m in a.get(conv.id).messages] == ["from b"]


CHILD = """
import sys
from pathlib import Path
from slmdesk.chat.conversations import ConversationStore
store = ConversationStore(Path(sys.argv[1]))
conv = store.create(title="crash test")
reply = store.add_message(conv.id, "assistant", "", finished=False)
i = 0
while True:
    i += 1
    store.add_message(conv.id, "user", f"message {i}")
    store.update_message_text(reply.id, f"streamed {i}")
    print(i, flush=True)
"""


def test_a_process_killed_mid_writing_keeps_everything_committed(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert child.stdout is not None
    last = 0
    try:
        for line in child.stdout:
            last = int(line)
            if last >= 40:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert last >= 40
    with ConversationStore(path) as store:
        conv = store.list_conversations()[0]
        messages = store.get(conv.id).messages
        users = [m.text for m in messages if m.role == "user"]
        assert users[:last] == [f"message {i}" for i in range(1, last + 1)]
        reply = messages[0]
        assert not reply.finished
        assert int(reply.text.split()[1]) >= last  # at most the in-flight save is missing
