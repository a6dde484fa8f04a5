"""Chat search on real SQLite: the FTS5 index, its migration, hostile search text, the fallback."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmdesk.chat import conversations, search_index
from slmdesk.chat.conversations import SCHEMA_VERSION, ConversationStore, make_title
from slmdesk.chat.search_text import MAX_TERMS, parse_terms, snippet


@pytest.fixture
def store() -> Iterator[ConversationStore]:
    with ConversationStore() as s:
        yield s


def _ids(store: ConversationStore, text: str) -> list[int]:
    return [c.id for c in store.list_conversations(search=text)]


def _index_in_step(path: Path) -> None:
    raw = sqlite3.connect(path)
    try:
        for index in (search_index.MESSAGE_INDEX, search_index.TITLE_INDEX):
            # FTS5 compares its index with the content table and raises when they differ
            raw.execute(f"INSERT INTO {index}({index}, rank) VALUES ('integrity-check', 1)")
    finally:
        raw.close()


def test_words_anywhere_in_a_conversation_find_it(store: ConversationStore) -> None:
    volcano = store.create()
    store.add_message(volcano.id, "user", "Tell me about volcanoes")
    store.add_message(volcano.id, "assistant", "Basalt magma rises through long fissures.")
    other = store.create(title="Bread")
    store.add_message(other.id, "user", "How long does dough rise?")
    assert _ids(store, "magma") == [volcano.id]
    # words in another order, not next to each other, even in different messages
    assert _ids(store, "fissures magma") == [volcano.id]
    assert _ids(store, "volcano basalt") == [volcano.id]
    assert _ids(store, "MAGMA") == [volcano.id]
    assert sorted(_ids(store, "long")) == sorted([volcano.id, other.id])
    assert _ids(store, "magma dough") == []
    assert _ids(store, '"rises through"') == [volcano.id]  # a quoted phrase stays together
    assert _ids(store, '"through rises"') == []


def test_hits_carry_a_snippet_of_the_matching_message(store: ConversationStore) -> None:
    conv = store.create(title="Geology")
    store.add_message(conv.id, "user", "Tell me about rocks")
    long_reply = "word " * 60 + "Basalt magma rises through fissures " + "tail " * 60
    store.add_message(conv.id, "assistant", long_reply)
    (hit,) = store.search_conversations("magma")
    assert hit.conversation.id == conv.id
    assert hit.snippet is not None and "magma" in hit.snippet
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…") and len(hit.snippet) < 100
    (title_only,) = store.search_conversations("geolog")
    assert title_only.snippet is None  # found by its title: nothing to quote


def test_the_index_follows_edits_deletes_renames_and_purges(store: ConversationStore) -> None:
    conv = store.create()
    first = store.add_message(conv.id, "user", "alpha question")
    reply = store.add_message(conv.id, "assistant", "", finished=False)
    store.update_message_text(reply.id, "streaming bravo")
    assert _ids(store, "bravo") == [conv.id]
    store.finish_message(reply.id, "final charlie")
    assert _ids(store, "bravo") == [] and _ids(store, "charlie") == [conv.id]
    store.truncate_after(first.id)
    assert _ids(store, "charlie") == []
    store.rename(conv.id, "Delta plans")
    assert _ids(store, "delta") == [conv.id] and _ids(store, "alpha question") == [conv.id]
    _index_in_step(store.path)
    store.delete(conv.id)
    assert _ids(store, "alpha") == []
    store.purge()
    _index_in_step(store.path)
    raw = sqlite3.connect(store.path)
    hits = raw.execute(
        f"SELECT COUNT(*) FROM {search_index.MESSAGE_INDEX} WHERE "
        f"{search_index.MESSAGE_INDEX} MATCH 'alpha'"
    ).fetchone()[0]
    raw.close()
    assert hits == 0


def test_search_uses_the_index_not_a_scan(store: ConversationStore) -> None:
    assert store.full_text_indexed
    sql, params = search_index.term_condition("magma", True)
    raw = sqlite3.connect(store.path)
    plan = [
        str(row[-1])
        for row in raw.execute(
            f"EXPLAIN QUERY PLAN SELECT c.id FROM conversations c WHERE {sql}", params
        )
    ]
    raw.close()
    # both lookups go through the index (a MATCH); no table is read row by row
    assert sum("VIRTUAL TABLE INDEX" in step and ":M" in step for step in plan) == 2, plan
    assert not [step for step in plan if step.startswith("SCAN") and "VIRTUAL" not in step], plan


HOSTILE = [
    '"',
    '""',
    '"unbalanced',
    "a*",
    "*",
    "NEAR",
    "NEAR(a b, 2)",
    "a NEAR/2 b",
    "-",
    "-magma",
    "a AND",
    "OR",
    "NOT x",
    "(",
    ")",
    "(a OR",
    "^start",
    "title:magma",
    "{text}: x",
    "col : x",
    "\\",
    "%",
    "_",
    "'; DROP TABLE messages; --",
    "\x00",
    "a\x00b",
    "\ud800",
    "\u202e evil",
    "   ",
    "\t\n",
    "+",
    "a + b",
    "'",
    "x" * 5000,
    " ".join(["w"] * 500),
    "🙂🙂🙂",
    "ǅungla",
]


def test_hostile_search_text_never_raises(store: ConversationStore) -> None:
    conv = store.create(title='NEAR the (quote) "marks" and 100% e_x')
    store.add_message(conv.id, "user", "text with * and - and ^ and : and 'single' quotes")
    for text in HOSTILE:
        for hit in store.search_conversations(text):
            assert hit.conversation.id == conv.id
    assert _ids(store, '"marks"') == [conv.id]
    assert _ids(store, "(quote)") == [conv.id]
    assert _ids(store, "NEAR") == [conv.id]
    assert _ids(store, "*") == [conv.id]
    assert _ids(store, "'single'") == [conv.id]
    assert _ids(store, "-magma") == []


ALPHABET = "abcAB xy\"*-^:()+%_\\'NEARORAND\t"


def _reference(titles_and_texts: dict[int, list[str]], text: str) -> set[int]:
    """What search must find: every term a case-insensitive substring of the title or a message."""
    terms = [t.lower() for t in parse_terms(text)]
    return {
        cid
        for cid, parts in titles_and_texts.items()
        if all(any(term in part.lower() for part in parts) for term in terms)
    }


@pytest.mark.parametrize("indexed", [True, False], ids=["fts5", "like-fallback"])
def test_random_hostile_searches_match_a_plain_substring_reference(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, indexed: bool
) -> None:
    if not indexed:
        monkeypatch.setattr(search_index, "fts5_available", lambda: False)
    rng = random.Random(20261201)
    contents: dict[int, list[str]] = {}
    with ConversationStore(tmp_path / "conv.sqlite3") as store:
        assert store.full_text_indexed is indexed
        for _ in range(12):
            title = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 12)))
            cid = store.create(title=title.strip() or "t").id
            parts = [store.get(cid).title]
            for _ in range(rng.randint(0, 3)):
                text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
                store.add_message(cid, "user", text)
                parts.append(text)
            contents[cid] = parts
        for _ in range(400):
            text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 10)))
            assert set(_ids(store, text)) == _reference(contents, text), repr(text)


def test_search_terms_are_bounded() -> None:
    assert parse_terms("x " * 1000) == ["x"]
    assert len(parse_terms(" ".join(f"w{i}" for i in range(100)))) == MAX_TERMS
    assert parse_terms('say "hello  there" now') == ["say", "hello there", "now"]
    assert parse_terms('"open ended') == ["open ended"]
    assert parse_terms("a\x00b \ud800c") == ["a", "b", "c"]
    assert snippet("no match here", ["zzz"]) is None


# -- migration and fallback ---------------------------------------------------------------------


def _version_1_database(path: Path) -> dict[str, int]:
    """A database as slmdesk 1 (schema 1) left it: auto titles had title_is_auto cleared."""
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    conversations.MIGRATIONS[0](raw)
    raw.execute("PRAGMA user_version = 1")
    now = time.time()

    def conversation(title: str, auto: int) -> int:
        cur = raw.execute(
            "INSERT INTO conversations (title, title_is_auto, created_at, updated_at) "
            "VALUES (?, ?, ?, ?)",
            (title, auto, now, now),
        )
        return int(cur.lastrowid or 0)

    def message(cid: int, position: int, role: str, text: str) -> None:
        raw.execute(
            "INSERT INTO messages (conversation_id, position, role, text, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (cid, position, role, text, now),
        )

    auto = conversation(make_title("Where do volcanoes form?"), 0)  # titled by version 1
    message(auto, 0, "user", "Where do volcanoes form?")
    message(auto, 1, "assistant", "Along plate boundaries where magma rises.")
    renamed = conversation("My geology notes", 0)  # renamed by the user
    message(renamed, 0, "user", "Sediment layers")
    untitled = conversation("New chat", 1)
    raw.close()
    return {"auto": auto, "renamed": renamed, "untitled": untitled}


def test_a_version_1_database_is_indexed_on_open_and_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "conv.sqlite3"
    ids = _version_1_database(path)
    with ConversationStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 2
        assert store.full_text_indexed
        assert _ids(store, "magma") == [ids["auto"]]
        assert _ids(store, "sediment") == [ids["renamed"]]
        assert store.get(ids["auto"]).title_is_auto
        assert not store.get(ids["renamed"]).title_is_auto
        assert store.get(ids["untitled"]).title_is_auto
        new = store.add_message(ids["untitled"], "user", "Granite or basalt?")
        assert _ids(store, "granite") == [new.conversation_id]
    _index_in_step(path)
    (backup,) = tmp_path.glob("conv-backup-v1-*.sqlite3")
    raw = sqlite3.connect(backup)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    raw.close()


def test_without_fts5_search_scans_and_the_index_is_rebuilt_later(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "conv.sqlite3"
    with ConversationStore(path) as store:
        early = store.create()
        store.add_message(early.id, "user", "indexed words: quartz")
    with monkeypatch.context() as patch:
        patch.setattr(search_index, "fts5_available", lambda: False)
        with ConversationStore(path) as store:
            assert not store.full_text_indexed  # triggers dropped: writes must not need FTS5
            late = store.create()
            store.add_message(late.id, "user", "written without the index: feldspar")
            store.rename(early.id, "Renamed meanwhile")
            assert _ids(store, "feldspar") == [late.id]
            assert _ids(store, "quartz") == [early.id]
        assert "FTS5" in caplog.text
    with ConversationStore(path) as store:
        assert store.full_text_indexed
        assert _ids(store, "feldspar") == [late.id]
        assert _ids(store, "meanwhile") == [early.id]
    _index_in_step(path)


def test_edit_of_the_first_message_retitles_unless_renamed(store: ConversationStore) -> None:
    conv = store.create()
    first = store.add_message(conv.id, "user", "Old question about rain")
    store.add_message(conv.id, "assistant", "answer")
    store.add_message(conv.id, "user", "A follow-up never retitles")
    assert store.get(conv.id).title == "Old question about rain"
    store.truncate_after(first.id, inclusive=True)  # what edit and resend does
    store.add_message(conv.id, "user", "New question about snow")
    assert store.get(conv.id).title == "New question about snow"
    assert _ids(store, "snow") == [conv.id] and _ids(store, "rain") == []
    store.rename(conv.id, "Weather")
    again = store.get(conv.id).messages[0]
    store.truncate_after(again.id, inclusive=True)
    store.add_message(conv.id, "user", "Third wording")
    assert store.get(conv.id).title == "Weather"
