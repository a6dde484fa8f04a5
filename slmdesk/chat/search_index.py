"""The full-text index of the conversation database: FTS5 over message text and titles.

Why FTS5 with the trigram tokenizer: it keeps the meaning search had with ``LIKE`` (a term is
found anywhere, even inside a word, ignoring case, in any language, word separators or not)
while a term of three or more characters is looked up in the index instead of scanning every
message. The index tables are *external content* tables: they store only the index, the text
stays in ``messages`` and ``conversations``.

Keeping it in step: triggers on ``messages`` (insert, delete, update of ``text``) and on
``conversations`` (insert, delete, update of ``title``) update the index inside the same
transaction as the change, so it can never lag behind; deletes cascaded from a conversation
fire them too. The triggers' presence is the mark of an index in step: `ensure` rebuilds the
index (one transaction) when the triggers are missing, e.g. after a database was written by a
SQLite without FTS5.

Without FTS5 (a SQLite built without it, or older than 3.34 for trigrams) the triggers are
dropped, because every write would fail on them, and search falls back to ``LIKE`` scans; a log
line says so once per process.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3

from slmdesk.chat.search_text import TRIGRAM_LENGTH, fts_string, like_pattern

__all__ = [
    "MESSAGE_INDEX",
    "TITLE_INDEX",
    "ensure",
    "fts5_available",
    "install",
    "is_installed",
    "term_condition",
]

log = logging.getLogger("slmdesk.chat.search_index")

MESSAGE_INDEX = "message_search"
TITLE_INDEX = "title_search"

_TABLES = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {MESSAGE_INDEX} USING fts5("
    "text, content='messages', content_rowid='id', tokenize='trigram')",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TITLE_INDEX} USING fts5("
    "title, content='conversations', content_rowid='id', tokenize='trigram')",
)


def _triggers(index: str, table: str, column: str) -> dict[str, str]:
    add = f"INSERT INTO {index}(rowid, {column}) VALUES (new.id, new.{column});"
    remove = (
        f"INSERT INTO {index}({index}, rowid, {column}) VALUES ('delete', old.id, old.{column});"
    )
    return {
        f"{index}_insert": f"AFTER INSERT ON {table} BEGIN {add} END",
        f"{index}_delete": f"AFTER DELETE ON {table} BEGIN {remove} END",
        f"{index}_update": f"AFTER UPDATE OF {column} ON {table} BEGIN {remove} {add} END",
    }


TRIGGERS = {
    **_triggers(MESSAGE_INDEX, "messages", "text"),
    **_triggers(TITLE_INDEX, "conversations", "title"),
}


@functools.cache
def fts5_available() -> bool:
    """Whether this process's SQLite has FTS5 with the trigram tokenizer (checked once)."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE probe USING fts5(x, tokenize='trigram')")
    except sqlite3.Error as exc:
        log.warning(
            "SQLite %s has no FTS5 trigram index (%s): chat search scans every message instead",
            sqlite3.sqlite_version,
            exc,
        )
        return False
    finally:
        db.close()
    return True


def is_installed(db: sqlite3.Connection) -> bool:
    """Whether every index trigger exists (the index is then in step with the text)."""
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    return set(TRIGGERS) <= names


def install(db: sqlite3.Connection) -> None:
    """Create the index tables and triggers and fill the index. Call inside a transaction."""
    for statement in _TABLES:
        db.execute(statement)
    for name, body in TRIGGERS.items():
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
        db.execute(f"CREATE TRIGGER {name} {body}")
    for index in (MESSAGE_INDEX, TITLE_INDEX):
        db.execute(f"INSERT INTO {index}({index}) VALUES ('rebuild')")


def _drop_triggers(db: sqlite3.Connection) -> None:
    for name in TRIGGERS:
        db.execute(f"DROP TRIGGER IF EXISTS {name}")


def ensure(db: sqlite3.Connection) -> bool:
    """Bring the index in step with this SQLite; True when FTS5 search can be used.

    Writes only when something must change (one transaction each way). A failure to change it
    (say, a read-only file) is logged and search falls back to scanning; nothing is raised.
    """
    available = fts5_available()
    installed = is_installed(db)
    if available == installed:
        return available
    try:
        db.execute("BEGIN IMMEDIATE")
        if available:
            install(db)
        else:
            _drop_triggers(db)
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        log.warning("could not update the chat search index (%s): search scans instead", exc)
        return False
    if available:
        log.info("built the chat search index")
    else:
        log.warning("chat search index triggers removed: this SQLite has no FTS5")
    return available


def term_condition(term: str, use_index: bool) -> tuple[str, list[str]]:
    """SQL (about conversation ``c``) true when ``term`` is in its title or any message.

    The index answers terms of `TRIGRAM_LENGTH` characters or more; shorter terms (and every
    term without FTS5) are ``LIKE`` scans. The term is always a bound parameter, quoted as one
    FTS5 string, so no user text is ever read as FTS5 query syntax.
    """
    if use_index and len(term) >= TRIGRAM_LENGTH:
        return (
            f"(c.id IN (SELECT rowid FROM {TITLE_INDEX} WHERE {TITLE_INDEX} MATCH ?) "
            "OR c.id IN (SELECT m.conversation_id FROM messages m WHERE m.id IN "
            f"(SELECT rowid FROM {MESSAGE_INDEX} WHERE {MESSAGE_INDEX} MATCH ?)))",
            [fts_string(term), fts_string(term)],
        )
    pattern = like_pattern(term)
    return (
        "(c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m WHERE "
        "m.conversation_id = c.id AND m.text LIKE ? ESCAPE '\\'))",
        [pattern, pattern],
    )
