"""Conversations and their messages, stored in SQLite so nothing typed or generated is lost.

Durability: the database runs in WAL mode with ``synchronous=FULL`` and every call that changes
something commits before it returns, so a message (or a streamed reply saved with
`ConversationStore.update_message_text`) survives the process being killed right after.

Schema changes go through `MIGRATIONS` (one entry per version, applied in order, recorded in
``PRAGMA user_version``). A database written by a newer slmdesk (a higher version than this code
knows) is refused with a clear message and left exactly as it is.

Faults: every ``sqlite3`` error leaves the store as a `ConversationError` subclass with one
sentence (`store_errors`: read-only, disk full, damaged, locked). Opening checks the file with
``PRAGMA quick_check``; a damaged database (corrupt, not a database, or truncated to 0 bytes) is
renamed aside with a timestamp, never deleted, and a new one is started; `ConversationStore.notice`
says where the old one went, for the window to show once. Before any migration a consistent backup
copy is kept beside the database (`store_files`).

Search: `ConversationStore.search_conversations` looks terms up in an FTS5 trigram index over
message text and titles (`search_index`, kept in step by triggers; built by migration 2 or when
it is missing) and scans with ``LIKE`` when this SQLite has no FTS5. The user's text is split
into terms and quoted by `search_text`, never parsed as FTS5 syntax.

Threads: one store may be shared by the GUI thread and the inference worker (which saves the
reply as it streams). It holds one connection guarded by a lock, so calls from any thread are
serialised; each call is short (one small transaction). Separate stores (or processes) on the
same file also work: WAL lets readers and a writer proceed together and ``busy_timeout`` makes
writers wait for each other instead of failing. Opening (and migrating) can wait on the disk or
on another process's lock, so a window creates its store with ``connect=False`` and opens it off
the GUI thread; the connection is made by the first call that needs it, on any thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmdesk.chat import search_index
from slmdesk.chat.search_text import parse_terms, snippet
from slmdesk.chat.store_errors import (
    ConversationError,
    DatabaseDamagedError,
    is_damage,
    translate,
    translate_os_error,
)
from slmdesk.chat.store_files import backup_copy, create_database, set_aside
from slmdesk.common import paths
from slmdesk.common.fileio import atomic_write_bytes

__all__ = [
    "DEFAULT_TITLE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Conversation",
    "ConversationError",
    "ConversationStore",
    "Message",
    "SearchHit",
    "make_title",
]

log = logging.getLogger("slmdesk.chat.conversations")

DEFAULT_TITLE = "New chat"
TITLE_LENGTH = 60
ROLES = ("system", "user", "assistant")
DEFAULT_BUSY_TIMEOUT = 10.0
SNIPPET_HITS = 100  # search hits that get a snippet (the newest; the list shows them first)


class _Damaged(Exception):
    """Raised while opening: the file is damaged, for the reason given (moved aside by the caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _migration_1(db: sqlite3.Connection) -> None:
    # One statement per execute(): executescript() would commit the migration's transaction.
    db.execute(
        """CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            title_is_auto INTEGER NOT NULL DEFAULT 1,
            model TEXT,
            system_prompt TEXT NOT NULL DEFAULT '',
            settings TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            deleted_at REAL
        )"""
    )
    db.execute(
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            role TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            timings TEXT,
            created_at REAL NOT NULL,
            finished INTEGER NOT NULL DEFAULT 1,
            UNIQUE (conversation_id, position)
        )"""
    )
    db.execute("CREATE INDEX conversations_by_update ON conversations(deleted_at, updated_at)")


def _migration_2(db: sqlite3.Connection) -> None:
    """Full-text search, and automatic titles told apart from the user's.

    Before version 2 an automatic title cleared ``title_is_auto`` like a rename did; a title that
    is exactly what `make_title` makes of the first user message is marked automatic again, so
    editing that message re-titles the chat. Then the search index is built (when this SQLite
    has FTS5; `search_index.ensure` builds it later otherwise).
    """
    rows = db.execute(
        "SELECT c.id, c.title, (SELECT m.text FROM messages m WHERE m.conversation_id = c.id "
        "AND m.role = 'user' ORDER BY m.position LIMIT 1) FROM conversations c "
        "WHERE c.title_is_auto = 0"
    ).fetchall()
    for cid, title, first_text in rows:
        if first_text is not None and make_title(str(first_text)) == title:
            db.execute("UPDATE conversations SET title_is_auto = 1 WHERE id = ?", (cid,))
    if search_index.fts5_available():
        search_index.install(db)


# MIGRATIONS[n] upgrades a database from version n to n + 1. Append, never edit.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migration_1, _migration_2]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass
class Message:
    """One turn of a conversation."""

    id: int
    conversation_id: int
    position: int
    role: str
    text: str
    timings: dict[str, Any] | None
    created_at: float
    finished: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (used by the JSON export)."""
        return {
            "id": self.id,
            "position": self.position,
            "role": self.role,
            "text": self.text,
            "timings": self.timings,
            "created_at": self.created_at,
            "finished": self.finished,
        }


@dataclass
class Conversation:
    """A conversation's settings; ``messages`` is filled by `ConversationStore.get`."""

    id: int
    title: str
    model: str | None
    system_prompt: str
    settings: dict[str, Any]
    created_at: float
    updated_at: float
    deleted_at: float | None = None
    # True while the title is automatic (from the first user message), False once the user
    # renamed the chat: only automatic titles follow edits of the first message.
    title_is_auto: bool = True
    messages: list[Message] = field(default_factory=list)

    def as_dict(self, with_messages: bool = True) -> dict[str, Any]:
        """JSON-ready form (the JSON export)."""
        data: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "model": self.model,
            "system_prompt": self.system_prompt,
            "settings": self.settings,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if with_messages:
            data["messages"] = [m.as_dict() for m in self.messages]
        return data

    def chat_messages(self) -> list[dict[str, str]]:
        """The conversation as ``{"role", "content"}`` dicts for the engine, system prompt first."""
        turns = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        turns += [{"role": m.role, "content": m.text} for m in self.messages]
        return turns


@dataclass
class SearchHit:
    """A conversation found by a search, with a line of the first message that matched."""

    conversation: Conversation
    snippet: str | None = None


def make_title(text: str, limit: int = TITLE_LENGTH) -> str:
    """A title from the first user message: its first line, cut at a word near ``limit``."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    if not line:
        return DEFAULT_TITLE
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0]
    return (cut if len(cut) > limit // 2 else line[:limit]).rstrip(" ,.;:") + "…"


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _rollback(db: sqlite3.Connection) -> None:
    """Undo the open transaction, if SQLite has not already (a failed COMMIT on a full disk
    rolls back by itself); a second error here must not hide the first."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


class ConversationStore:
    """The conversations database. Safe to share between threads (see the module docstring)."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        connect: bool = True,
    ) -> None:
        """Open (creating, repairing or upgrading) the database, now or on first use.

        Args:
            path: the database file (default: the user's, from `paths.database_path`).
            busy_timeout: seconds to wait for another connection's write lock before giving up
                with `DatabaseLockedError`, so a stuck second instance never hangs the app.
            connect: open it now. False defers opening (and migrating) to `open` or to the first
                call that needs the database, on whichever thread makes it: a window creates its
                store this way and opens it on a worker thread, never on the GUI thread.

        Raises:
            ConversationError: the file is from a newer slmdesk, is locked, read-only, on a full
                disk, or damaged and cannot be moved aside.
        """
        self.path = Path(path) if path is not None else paths.database_path()
        self.busy_timeout = float(busy_timeout)
        self._notice: str | None = None
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._closed = False
        self._indexed = False  # full-text index in step (else search scans with LIKE)
        if connect:
            self.open()

    @property
    def notice(self) -> str | None:
        """What the user should be told about opening (a damaged database was set aside)."""
        return self._notice

    def take_notice(self) -> str | None:
        """The `notice`, cleared, so it is shown only once."""
        notice, self._notice = self._notice, None
        return notice

    # -- opening and migrating ----------------------------------------------------------------

    def open(self) -> None:
        """Open (creating or upgrading) the database if it is not open yet. Any thread; idempotent.

        Raises:
            ConversationError: as for the constructor, or the store was closed.
        """
        with self._lock:
            self._conn()

    @property
    def is_open(self) -> bool:
        """Whether the database has been opened (and not closed)."""
        return self._db is not None

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            empty = self.path.exists() and self.path.stat().st_size == 0
        except OSError as exc:
            raise translate_os_error(exc, self.path) from None
        if empty:
            # slmdesk never leaves a 0-byte file (new databases are built aside and linked in),
            # so an empty file is a truncated database, not a new one.
            return self._recover("the file was empty (0 bytes)")
        self._create_if_missing()
        try:
            return self._connect()
        except _Damaged as damage:
            return self._recover(damage.reason)

    def _create_if_missing(self) -> None:
        if self.path.exists():
            return
        try:
            create_database(self.path, self._initialise)
        except sqlite3.Error as exc:
            raise translate(exc, self.path, self.busy_timeout) from None
        except OSError as exc:
            raise translate_os_error(exc, self.path) from None

    @staticmethod
    def _initialise(db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        ConversationStore._migrate(db, 0)

    def _recover(self, reason: str) -> sqlite3.Connection:
        """Move the damaged database aside, start a new one and say so in `notice`."""
        try:
            aside = set_aside(self.path)
        except OSError as exc:
            raise DatabaseDamagedError(
                f"The conversation database {self.path} is damaged ({reason}) and could not be "
                f"moved aside ({exc.strerror or exc}); move it away by hand and restart slmdesk."
            ) from None
        log.warning("conversation database damaged (%s): moved to %s", reason, aside)
        self._notice = (
            f"The conversation database was damaged ({reason}), so it was moved to {aside} "
            "and a new, empty one was started."
        )
        self._create_if_missing()
        try:
            return self._connect()
        except _Damaged as damage:
            raise DatabaseDamagedError(
                f"A new conversation database at {self.path} is unusable ({damage.reason})."
            ) from None

    def _connect(self) -> sqlite3.Connection:
        """Check, connect, configure and migrate; damage is raised as `_Damaged`."""
        self._inspect()
        try:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout, check_same_thread=False)
        except sqlite3.Error as exc:
            raise translate(exc, self.path, self.busy_timeout) from None
        try:
            db.isolation_level = None  # explicit transactions only (see _write)
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version < len(MIGRATIONS):
                if self._has_content(db, version):
                    backup = backup_copy(db, self.path, version)
                    log.info("backed up the conversation database to %s before migrating", backup)
                self._migrate(db, version)
            self._indexed = search_index.ensure(db)
        except sqlite3.Error as exc:
            db.close()
            if is_damage(exc):
                raise _Damaged(str(exc)) from None
            raise translate(exc, self.path, self.busy_timeout) from None
        except OSError as exc:
            db.close()
            raise translate_os_error(exc, self.path) from None
        except BaseException:
            db.close()
            raise
        return db

    def _inspect(self) -> None:
        """Look at the file read-only before anything may write to it.

        A database from a newer slmdesk is refused, a damaged one is reported as `_Damaged`.
        Read-only, so both are left exactly as found: a read-write connection would switch the
        journal mode, or checkpoint a write-ahead log into a damaged file when it closes.
        """
        uri = self.path.resolve().as_uri() + "?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout)
        except sqlite3.Error as exc:
            raise translate(exc, self.path, self.busy_timeout) from None
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise ConversationError(
                    f"The conversation database {self.path} was written by a newer version of "
                    f"slmdesk (schema {version}, this version knows up to {len(MIGRATIONS)}); "
                    "update slmdesk to open it. The file was not changed."
                )
            problem = self._integrity_problem(db)
            if problem:
                raise _Damaged(problem)
        except sqlite3.Error as exc:
            if is_damage(exc):
                raise _Damaged(str(exc)) from None
            raise translate(exc, self.path, self.busy_timeout) from None
        finally:
            db.close()

    @staticmethod
    def _integrity_problem(db: sqlite3.Connection) -> str | None:
        """The first problem ``PRAGMA quick_check`` finds, or None (about 4 ms per MB of database)."""
        rows = db.execute("PRAGMA quick_check(1)").fetchall()
        result = str(rows[0][0]) if rows else "no answer from quick_check"
        return None if result == "ok" else f"quick_check: {result}"

    @staticmethod
    def _has_content(db: sqlite3.Connection, version: int) -> bool:
        """Whether a database about to be migrated holds anything worth a backup."""
        if version > 0:
            return True
        return db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None

    @staticmethod
    def _migrate(db: sqlite3.Connection, version: int) -> None:
        while version < len(MIGRATIONS):
            db.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated while we waited for the write lock.
                current = int(db.execute("PRAGMA user_version").fetchone()[0])
                if current > version:
                    db.execute("COMMIT")
                    version = current
                    continue
                MIGRATIONS[version](db)
                db.execute(f"PRAGMA user_version = {version + 1}")
                db.execute("COMMIT")
            except BaseException:
                _rollback(db)
                raise
            version += 1

    def close(self) -> None:
        """Close the database (idempotent). The store cannot be used afterwards."""
        with self._lock:
            self._closed = True
            if self._db is not None:
                db, self._db = self._db, None
                with contextlib.suppress(sqlite3.Error):
                    db.close()

    def __enter__(self) -> ConversationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        with self._read() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    # -- transactions -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """The connection, opened on first use. Call with the lock held."""
        if self._db is None:
            if self._closed:
                raise ConversationError("The conversation database is closed.")
            self._db = self._open()
        return self._db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; SQLite errors leave as `ConversationError`."""
        with self._lock:
            db = self._conn()
            try:
                yield db
            except sqlite3.Error as exc:
                raise translate(exc, self.path, self.busy_timeout) from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction, under the lock; rolled back if the body raises.

        SQLite errors (from BEGIN, the body or COMMIT) leave as `ConversationError`.
        """
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(db)
                raise translate(exc, self.path, self.busy_timeout) from None
            except BaseException:
                _rollback(db)
                raise

    # -- conversations ------------------------------------------------------------------------

    @staticmethod
    def _conversation(row: sqlite3.Row | tuple[Any, ...]) -> Conversation:
        (cid, title, auto, model, system, settings, created, updated, deleted) = row
        return Conversation(
            id=int(cid),
            title=str(title),
            model=model,
            system_prompt=str(system or ""),
            settings=_loads(settings) or {},
            created_at=float(created),
            updated_at=float(updated),
            deleted_at=deleted,
            title_is_auto=bool(auto),
        )

    _CONV_COLUMNS = (
        "c.id, c.title, c.title_is_auto, c.model, c.system_prompt, c.settings, "
        "c.created_at, c.updated_at, c.deleted_at"
    )

    def create(
        self,
        title: str | None = None,
        model: str | None = None,
        system_prompt: str = "",
        settings: dict[str, Any] | None = None,
    ) -> Conversation:
        """A new, empty conversation (committed). Without a title it is auto-titled later."""
        now = time.time()
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO conversations (title, title_is_auto, model, system_prompt, settings,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (title or "").strip() or DEFAULT_TITLE,
                    0 if (title or "").strip() else 1,
                    model,
                    system_prompt,
                    json.dumps(settings or {}),
                    now,
                    now,
                ),
            )
            cid = int(cur.lastrowid or 0)
        return self.get(cid)

    def list_conversations(
        self, search: str | None = None, include_deleted: bool = False
    ) -> list[Conversation]:
        """Conversations, most recently updated first (messages not loaded).

        Args:
            search: when given, only conversations that contain every term of it (see
                `search_conversations`).
            include_deleted: also list conversations in the undo bin.
        """
        if search is not None:
            return [hit.conversation for hit in self.search_conversations(search, include_deleted)]
        return self._listed([] if include_deleted else ["c.deleted_at IS NULL"], [])

    def _listed(self, where: list[str], params: list[Any]) -> list[Conversation]:
        sql = f"SELECT {self._CONV_COLUMNS} FROM conversations c"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY c.updated_at DESC, c.id DESC"
        with self._read() as db:
            return [self._conversation(row) for row in db.execute(sql, params)]

    @property
    def full_text_indexed(self) -> bool:
        """Whether search uses the FTS5 index (False: this SQLite lacks it, search scans)."""
        with self._lock:
            self._conn()
            return self._indexed

    def search_conversations(self, text: str, include_deleted: bool = False) -> list[SearchHit]:
        """Conversations containing every term of ``text``, newest first, with a snippet each.

        Any text is accepted: quotes, ``*``, ``NEAR``, ``-`` or unbalanced syntax are searched
        for as written, never parsed as a query (`search_text`). Blank text lists everything.
        A term is found in the title or any message, as a substring, ignoring case; terms of
        three characters or more are looked up in the full-text index.
        """
        terms = parse_terms(text)
        where = [] if include_deleted else ["c.deleted_at IS NULL"]
        params: list[Any] = []
        with self._lock:
            self._conn()  # opening decides whether the index can be used
            indexed = self._indexed
        for term in terms:
            sql, values = search_index.term_condition(term, indexed)
            where.append(sql)
            params += values
        found = self._listed(where, params)
        snippets = self._snippets([c.id for c in found], terms) if terms else {}
        return [SearchHit(c, snippets.get(c.id)) for c in found]

    def _snippets(self, ids: list[int], terms: list[str]) -> dict[int, str]:
        """A line of the first message that contains a term, for the newest `SNIPPET_HITS` hits.

        Each conversation's messages are read in order only up to the first match: a common
        word then costs one message per conversation, and a rare word only a few conversations.
        """
        lines: dict[int, str] = {}
        with self._read() as db:
            for cid in ids[:SNIPPET_HITS]:
                rows = db.execute(
                    "SELECT text FROM messages WHERE conversation_id = ? ORDER BY position", (cid,)
                )
                for (text,) in rows:
                    line = snippet(str(text), terms)
                    if line:
                        lines[cid] = line
                        break
        return lines

    def get(self, conversation_id: int, with_messages: bool = True) -> Conversation:
        """One conversation with its messages in order.

        Raises:
            ConversationError: no such conversation.
        """
        with self._read() as db:
            row = db.execute(
                f"SELECT {self._CONV_COLUMNS} FROM conversations c WHERE c.id = ?",
                (conversation_id,),
            ).fetchone()
            if row is None:
                raise ConversationError(f"There is no conversation {conversation_id}.")
            conversation = self._conversation(row)
            if with_messages:
                conversation.messages = self._messages(db, conversation_id)
        return conversation

    def rename(self, conversation_id: int, title: str) -> Conversation:
        """Give a conversation a title of the user's choosing (auto-titling stops)."""
        title = " ".join(title.split())
        if not title:
            raise ConversationError("A conversation title cannot be empty.")
        with self._write() as db:
            self._touch(db, conversation_id, "title = ?, title_is_auto = 0", (title,))
        return self.get(conversation_id, with_messages=False)

    def update_settings(
        self,
        conversation_id: int,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Conversation:
        """Change the model, system prompt or sampling settings; None leaves a field as it is."""
        sets: list[str] = []
        values: list[Any] = []
        if model is not None:
            sets.append("model = ?")
            values.append(model)
        if system_prompt is not None:
            sets.append("system_prompt = ?")
            values.append(system_prompt)
        if settings is not None:
            sets.append("settings = ?")
            values.append(json.dumps(settings))
        with self._write() as db:
            self._touch(db, conversation_id, ", ".join(sets) or None, tuple(values))
        return self.get(conversation_id, with_messages=False)

    def delete(self, conversation_id: int) -> None:
        """Move a conversation to the undo bin (hidden from listings); `restore` undoes it."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE conversations SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                (time.time(), conversation_id),
            )
            if cur.rowcount == 0:
                self._require(db, conversation_id)

    def restore(self, conversation_id: int) -> Conversation:
        """Undo `delete`."""
        with self._write() as db:
            self._require(db, conversation_id)
            db.execute(
                "UPDATE conversations SET deleted_at = NULL WHERE id = ?", (conversation_id,)
            )
        return self.get(conversation_id, with_messages=False)

    def purge(self, conversation_id: int | None = None, older_than: float | None = None) -> int:
        """Delete for good: one conversation, or every deleted one (older than ``older_than`` s).

        Returns:
            How many conversations were removed.
        """
        with self._write() as db:
            if conversation_id is not None:
                cur = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            else:
                cutoff = time.time() - (older_than or 0.0)
                cur = db.execute(
                    "DELETE FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?",
                    (cutoff,),
                )
            return int(cur.rowcount)

    # -- messages -----------------------------------------------------------------------------

    @staticmethod
    def _message(row: tuple[Any, ...]) -> Message:
        mid, cid, position, role, text, timings, created, finished = row
        return Message(
            id=int(mid),
            conversation_id=int(cid),
            position=int(position),
            role=str(role),
            text=str(text),
            timings=_loads(timings),
            created_at=float(created),
            finished=bool(finished),
        )

    _MSG_COLUMNS = "id, conversation_id, position, role, text, timings, created_at, finished"

    def _messages(self, db: sqlite3.Connection, conversation_id: int) -> list[Message]:
        rows = db.execute(
            f"SELECT {self._MSG_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY position",
            (conversation_id,),
        )
        return [self._message(row) for row in rows]

    def messages(self, conversation_id: int) -> list[Message]:
        """The messages of a conversation, in order."""
        with self._read() as db:
            self._require(db, conversation_id)
            return self._messages(db, conversation_id)

    def get_message(self, message_id: int) -> Message:
        """One message by id."""
        with self._read() as db:
            row = db.execute(
                f"SELECT {self._MSG_COLUMNS} FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
        if row is None:
            raise ConversationError(f"There is no message {message_id}.")
        return self._message(row)

    def add_message(
        self,
        conversation_id: int,
        role: str,
        text: str,
        *,
        finished: bool = True,
        timings: dict[str, Any] | None = None,
    ) -> Message:
        """Append a message and commit it before returning.

        A reply about to stream is added with ``finished=False`` and empty text, then saved with
        `update_message_text` and closed with `finish_message`. The first user message gives an
        untitled conversation its title.
        """
        if role not in ROLES:
            raise ConversationError(f"Unknown message role {role!r}; use one of {ROLES}.")
        now = time.time()
        with self._write() as db:
            self._require(db, conversation_id)
            position = int(
                db.execute(
                    "SELECT COALESCE(MAX(position), -1) + 1 FROM messages WHERE conversation_id = ?",
                    (conversation_id,),
                ).fetchone()[0]
            )
            cur = db.execute(
                "INSERT INTO messages (conversation_id, position, role, text, timings, created_at,"
                " finished) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    position,
                    role,
                    text,
                    json.dumps(timings) if timings is not None else None,
                    now,
                    int(finished),
                ),
            )
            message_id = int(cur.lastrowid or 0)
            if role == "user" and text.strip():
                # The first user message titles the chat, also when it replaces an edited first
                # message; a title the user gave (title_is_auto = 0) is never overwritten.
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title_is_auto = 1 "
                    "AND NOT EXISTS (SELECT 1 FROM messages WHERE conversation_id = ? "
                    "AND role = 'user' AND position < ?)",
                    (make_title(text), conversation_id, conversation_id, position),
                )
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            )
        return self.get_message(message_id)

    def update_message_text(self, message_id: int, text: str) -> None:
        """Save the text of a message (the streaming reply; call about once a second)."""
        with self._write() as db:
            cur = db.execute("UPDATE messages SET text = ? WHERE id = ?", (text, message_id))
            if cur.rowcount == 0:
                raise ConversationError(f"There is no message {message_id}.")

    def finish_message(
        self, message_id: int, text: str | None = None, timings: dict[str, Any] | None = None
    ) -> Message:
        """Mark a streamed reply as complete (or stopped), with its final text and timings."""
        now = time.time()
        with self._write() as db:
            row = db.execute(
                "SELECT conversation_id FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                raise ConversationError(f"There is no message {message_id}.")
            if text is not None:
                db.execute("UPDATE messages SET text = ? WHERE id = ?", (text, message_id))
            db.execute(
                "UPDATE messages SET finished = 1, timings = ? WHERE id = ?",
                (json.dumps(timings) if timings is not None else None, message_id),
            )
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, row[0]))
        return self.get_message(message_id)

    def truncate_after(self, message_id: int, inclusive: bool = False) -> list[Message]:
        """Delete the messages after ``message_id`` (and it too when ``inclusive``).

        Regenerate: truncate after the last user message. Edit and resend: truncate from the
        edited message inclusive, then add the new text.

        Returns:
            The deleted messages, in order (enough to put them back).
        """
        with self._write() as db:
            row = db.execute(
                "SELECT conversation_id, position FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                raise ConversationError(f"There is no message {message_id}.")
            cid, position = int(row[0]), int(row[1])
            first = position if inclusive else position + 1
            removed = [
                self._message(r)
                for r in db.execute(
                    f"SELECT {self._MSG_COLUMNS} FROM messages WHERE conversation_id = ? "
                    "AND position >= ? ORDER BY position",
                    (cid, first),
                )
            ]
            db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND position >= ?", (cid, first)
            )
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (time.time(), cid))
        return removed

    def unfinished_messages(self) -> list[Message]:
        """Replies that were still streaming when the app stopped (to mark or show them)."""
        with self._read() as db:
            rows = db.execute(
                f"SELECT {self._MSG_COLUMNS} FROM messages WHERE finished = 0 ORDER BY id"
            )
            return [self._message(r) for r in rows]

    # -- export -------------------------------------------------------------------------------

    def _export_set(self, conversation_id: int | None) -> list[Conversation]:
        if conversation_id is not None:
            return [self.get(conversation_id)]
        return [self.get(c.id) for c in self.list_conversations()]

    def to_markdown(self, conversation_id: int | None = None) -> str:
        """One conversation (or all) as Markdown."""
        blocks: list[str] = []
        for conversation in self._export_set(conversation_id):
            lines = [f"# {conversation.title}", ""]
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.created_at))
            lines.append(f"*{created} · model: {conversation.model or 'none'}*")
            lines.append("")
            if conversation.system_prompt:
                lines += ["**System:**", "", conversation.system_prompt, ""]
            for message in conversation.messages:
                who = {"user": "You", "assistant": "Assistant"}.get(message.role, "System")
                suffix = "" if message.finished else " *(interrupted)*"
                lines += [f"**{who}:**{suffix}", "", message.text, ""]
            blocks.append("\n".join(lines).rstrip() + "\n")
        return "\n---\n\n".join(blocks)

    def to_json(self, conversation_id: int | None = None) -> dict[str, Any]:
        """One conversation (or all) as a JSON-ready document."""
        return {
            "format": "slmdesk-conversations",
            "version": 1,
            "exported_at": time.time(),
            "conversations": [c.as_dict() for c in self._export_set(conversation_id)],
        }

    def export(self, target: Path, conversation_id: int | None = None) -> Path:
        """Write one conversation (or all) to ``target``; ``.json`` gives JSON, else Markdown.

        The file is written to a temporary name and renamed, so it is never half-written.
        """
        target = Path(target)
        if target.suffix.lower() == ".json":
            data = json.dumps(self.to_json(conversation_id), indent=2, ensure_ascii=False) + "\n"
        else:
            data = self.to_markdown(conversation_id)
        try:
            atomic_write_bytes(target, data.encode("utf-8"))
        except OSError as exc:
            raise ConversationError(f"Cannot write {target}: {exc.strerror or exc}.") from None
        return target

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _require(db: sqlite3.Connection, conversation_id: int) -> None:
        if db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone():
            return
        raise ConversationError(f"There is no conversation {conversation_id}.")

    def _touch(
        self,
        db: sqlite3.Connection,
        conversation_id: int,
        sets: str | None,
        values: tuple[Any, ...],
    ) -> None:
        self._require(db, conversation_id)
        assignments = f"{sets}, updated_at = ?" if sets else "updated_at = ?"
        db.execute(
            f"UPDATE conversations SET {assignments} WHERE id = ?",
            (*values, time.time(), conversation_id),
        )
