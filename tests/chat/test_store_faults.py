"""The conversation store when the database file goes wrong: real SQLite files, real faults.

Read-only files are checked in a child process without the file-override capability (tests run
as root, and root ignores permissions); a full disk is a small tmpfs when this sandbox may mount
one, and SQLite's page limit otherwise; damage is real bytes written over a real database.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from slmdesk.chat import conversations
from slmdesk.chat.conversations import ConversationError, ConversationStore
from slmdesk.chat.store_errors import (
    DatabaseDamagedError,
    DatabaseFullError,
    DatabaseLockedError,
    DatabaseReadOnlyError,
    translate,
)
from tests import fault_tools


def _one_sentence(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert message[0].isupper() and message.endswith((".", "again."))


def _filled(path: Path, conversations_count: int = 3, messages: int = 20) -> list[int]:
    """A database at ``path`` with a few conversations (closed afterwards); their ids."""
    with ConversationStore(path) as store:
        ids = []
        for c in range(conversations_count):
            cid = store.create(title=f"chat {c}").id
            for m in range(messages):
                store.add_message(cid, "user" if m % 2 == 0 else "assistant", f"text {c}.{m} " * 20)
            ids.append(cid)
    return ids


# -- read-only ---------------------------------------------------------------------------------


READ_ONLY_CHILD = """
import json, sys
from pathlib import Path
from slmdesk.chat.conversations import ConversationStore
from slmdesk.common.errors import SlmdeskError
out = {}
try:
    store = ConversationStore(Path(sys.argv[1]))
except SlmdeskError as exc:
    out["open_error"] = [type(exc).__name__, str(exc)]
else:
    out["titles"] = sorted(c.title for c in store.list_conversations())
    try:
        store.add_message(store.list_conversations()[0].id, "user", "hello")
    except SlmdeskError as exc:
        out["write_error"] = [type(exc).__name__, str(exc)]
    store.close()
print(json.dumps(out))
"""


def _run_unprivileged(path: Path) -> dict[str, list[str]]:
    out = subprocess.run(
        [*fault_tools.unprivileged_prefix(), sys.executable, "-c", READ_ONLY_CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return dict(json.loads(out.stdout))


def test_a_read_only_database_still_reads_and_says_why_it_cannot_save(tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite3"
    _filled(path)
    before = path.read_bytes()
    path.chmod(0o444)
    result = _run_unprivileged(path)
    assert result["titles"] == ["chat 0", "chat 1", "chat 2"]
    kind, message = result["write_error"]
    assert kind == "DatabaseReadOnlyError"
    assert "read-only" in message and str(path) in message
    _one_sentence(message)
    assert path.read_bytes() == before


def test_a_read_only_folder_is_a_clear_error_at_open(tmp_path: Path) -> None:
    folder = tmp_path / "locked-folder"
    folder.mkdir()
    path = folder / "ro.sqlite3"
    _filled(path)
    folder.chmod(0o555)
    try:
        result = _run_unprivileged(path)
    finally:
        folder.chmod(0o755)
    kind, message = result["open_error"]
    assert kind == "DatabaseReadOnlyError"
    assert "read-only" in message
    _one_sentence(message)
    assert [p.name for p in folder.iterdir()] == ["ro.sqlite3"]  # nothing moved aside


# -- disk full ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted in the test's folder (skipped where mounting is not allowed)."""
    with fault_tools.small_disk(tmp_path / "small-disk", "2m") as mount_point:
        yield mount_point


def test_writing_to_a_full_disk_says_the_disk_is_full(small_disk: Path) -> None:
    path = small_disk / "full.sqlite3"
    with ConversationStore(path) as store:
        cid = store.create(title="kept").id
        store.add_message(cid, "user", "saved before the disk filled")
        filler = fault_tools.fill(small_disk)
        with pytest.raises(DatabaseFullError) as caught:
            for i in range(200):  # far more than the log file's spare room
                store.add_message(cid, "user", f"{i} " + "x" * 20_000)
        message = str(caught.value)
        assert "disk is full" in message and "not a readable" not in message
        _one_sentence(message)
        filler.unlink()
        store.add_message(cid, "assistant", "saved after space was freed")
        texts = [m.text for m in store.get(cid).messages]
    assert texts[0] == "saved before the disk filled"
    assert texts[-1] == "saved after space was freed"
    assert not list(small_disk.glob("full-damaged-*"))


def test_opening_on_a_full_disk_says_full_and_moves_nothing(small_disk: Path) -> None:
    path = small_disk / "full.sqlite3"
    _filled(path, conversations_count=1, messages=4)
    before = path.read_bytes()
    filler = fault_tools.fill(small_disk)
    with pytest.raises(DatabaseFullError, match="disk is full") as caught:
        ConversationStore(path)
    _one_sentence(str(caught.value))
    assert path.read_bytes() == before
    assert not list(small_disk.glob("full-damaged-*"))
    filler.unlink()
    with ConversationStore(path) as store:
        assert [c.title for c in store.list_conversations()] == ["chat 0"]


def test_a_database_at_its_size_limit_says_full_and_keeps_working(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "limit.sqlite3")
    cid = store.create(title="kept").id
    store.add_message(cid, "user", "first")
    pages = store._conn().execute("PRAGMA page_count").fetchone()[0]
    store._conn().execute(f"PRAGMA max_page_count = {pages + 1}")  # what a full disk does
    with pytest.raises(DatabaseFullError, match="disk is full"):
        store.add_message(cid, "user", "y" * 200_000)
    store._conn().execute("PRAGMA max_page_count = 1073741823")
    store.add_message(cid, "user", "after")  # no transaction was left open
    assert [m.text for m in store.get(cid).messages] == ["first", "after"]
    store.close()


# -- damage ------------------------------------------------------------------------------------


def _aside(folder: Path, stem: str) -> Path:
    (found,) = folder.glob(f"{stem}-damaged-*.sqlite3")
    return found


def test_a_database_truncated_to_zero_bytes_is_damaged_not_new(tmp_path: Path) -> None:
    path = tmp_path / "conv.sqlite3"
    _filled(path)
    os.truncate(path, 0)
    with ConversationStore(path) as store:
        notice = store.take_notice()
        assert store.list_conversations() == []
        store.create(title="a new start")  # the new database works
    aside = _aside(tmp_path, "conv")
    assert aside.stat().st_size == 0
    assert notice is not None and str(aside) in notice and "0 bytes" in notice
    _one_sentence(notice)
    with ConversationStore(path) as store:  # the new one is not mistaken for damage again
        assert store.notice is None
        assert [c.title for c in store.list_conversations()] == ["a new start"]


def test_garbage_over_the_header_is_moved_aside_with_its_log(tmp_path: Path) -> None:
    source = tmp_path / "live.sqlite3"
    _filled(source)
    writer = sqlite3.connect(source, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")  # keep the last write in the -wal file
    writer.execute("UPDATE conversations SET title = 'only in the log' WHERE id = 1")
    path = tmp_path / "conv.sqlite3"
    shutil.copyfile(source, path)
    shutil.copyfile(tmp_path / "live.sqlite3-wal", tmp_path / "conv.sqlite3-wal")
    writer.close()
    with open(path, "r+b") as handle:
        handle.write(os.urandom(100))
    damaged, damaged_wal = path.read_bytes(), (tmp_path / "conv.sqlite3-wal").read_bytes()
    with ConversationStore(path) as store:
        notice = store.take_notice()
        assert store.list_conversations() == []
    aside = _aside(tmp_path, "conv")
    assert aside.read_bytes() == damaged
    assert Path(f"{aside}-wal").read_bytes() == damaged_wal  # kept as a pair, never replayed
    assert notice is not None and str(aside) in notice


def test_a_database_that_fails_quick_check_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "conv.sqlite3"
    _filled(path, conversations_count=4, messages=60)
    size = path.stat().st_size
    assert size > 8 * 4096
    with open(path, "r+b") as handle:
        handle.seek((size // 4096 // 2) * 4096)
        handle.write(os.urandom(4096))
    damaged = path.read_bytes()
    with ConversationStore(path) as store:
        notice = store.take_notice()
        assert store.list_conversations() == []
    assert notice is not None and "quick_check" in notice
    assert _aside(tmp_path, "conv").read_bytes() == damaged


def test_a_damaged_database_that_cannot_be_moved_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "read-only-folder"
    folder.mkdir()
    path = folder / "conv.sqlite3"
    path.write_bytes(b"not a database " * 300)
    folder.chmod(0o555)
    try:
        result = _run_unprivileged(path)
    finally:
        folder.chmod(0o755)
    kind, message = result["open_error"]
    assert kind == "DatabaseDamagedError" and "could not be moved aside" in message
    _one_sentence(message)
    assert [p.name for p in folder.iterdir()] == ["conv.sqlite3"]
    assert path.read_bytes() == b"not a database " * 300


# -- migrations --------------------------------------------------------------------------------


def _add_pinned(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")


def _broken_migration(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE no_such_table ADD COLUMN x")


@pytest.fixture
def with_migration(monkeypatch: pytest.MonkeyPatch) -> Callable[[object], int]:
    """Append one migration to the real list (as the next release would); its version."""

    def add(step: object) -> int:
        migrations = [*conversations.MIGRATIONS, step]
        monkeypatch.setattr(conversations, "MIGRATIONS", migrations)
        monkeypatch.setattr(conversations, "SCHEMA_VERSION", len(migrations))
        return len(migrations)

    return add


def test_a_backup_is_kept_before_a_migration(
    tmp_path: Path, with_migration: Callable[[object], int]
) -> None:
    path = tmp_path / "conv.sqlite3"
    ids = _filled(path)
    old_version = conversations.SCHEMA_VERSION
    new_version = with_migration(_add_pinned)
    with ConversationStore(path) as store:
        assert store.schema_version == new_version
        assert store.notice is None
    (backup,) = tmp_path.glob(f"conv-backup-v{old_version}-*.sqlite3")
    raw = sqlite3.connect(backup)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == old_version
    assert raw.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert [r[0] for r in raw.execute("SELECT id FROM conversations ORDER BY id")] == ids
    assert raw.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 60
    raw.close()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_a_failed_migration_leaves_the_database_as_it_was(
    tmp_path: Path, with_migration: Callable[[object], int]
) -> None:
    path = tmp_path / "conv.sqlite3"
    _filled(path)
    old_version = conversations.SCHEMA_VERSION
    with_migration(_broken_migration)
    with pytest.raises(ConversationError, match="no such table") as caught:
        ConversationStore(path)
    _one_sentence(str(caught.value))
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == old_version
    columns = [r[1] for r in raw.execute("PRAGMA table_info(conversations)")]
    assert "pinned" not in columns  # rolled back
    raw.close()
    assert len(list(tmp_path.glob(f"conv-backup-v{old_version}-*.sqlite3"))) == 1


# -- locked ------------------------------------------------------------------------------------


def test_a_locked_database_gives_up_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "conv.sqlite3"
    _filled(path, conversations_count=1, messages=2)
    with ConversationStore(path, busy_timeout=0.5) as store:
        cid = store.list_conversations()[0].id
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            started = time.monotonic()
            with pytest.raises(DatabaseLockedError) as caught:
                store.add_message(cid, "user", "waits for the lock")
            waited = time.monotonic() - started
            assert [c.id for c in store.list_conversations()] == [cid]  # reading still works
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert 0.4 <= waited < 15.0  # the timeout, plus room for a loaded machine
        message = str(caught.value)
        assert "locked" in message and "0.5 s" in message
        _one_sentence(message)
        store.add_message(cid, "user", "after the lock")
        assert store.get(cid).messages[-1].text == "after the lock"


# -- every kind of SQLite failure has its sentence ---------------------------------------------


def _sqlite_error(action: Callable[[], object]) -> sqlite3.Error:
    try:
        action()
    except sqlite3.Error as exc:
        return exc
    raise AssertionError("SQLite did not fail")


def test_real_sqlite_failures_become_one_sentence_each(tmp_path: Path) -> None:
    good = tmp_path / "good.sqlite3"
    _filled(good, conversations_count=1, messages=1)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"junk " * 1000)
    read_only = sqlite3.connect(f"file:{good}?mode=ro", uri=True)
    limited = sqlite3.connect(tmp_path / "small.sqlite3", isolation_level=None)
    limited.execute("CREATE TABLE t (x)")
    limited.execute("PRAGMA max_page_count = 3")
    cases: list[tuple[sqlite3.Error, type[ConversationError], str]] = [
        (
            _sqlite_error(lambda: read_only.execute("DELETE FROM messages")),
            DatabaseReadOnlyError,
            "read-only",
        ),
        (
            _sqlite_error(lambda: sqlite3.connect(junk).execute("PRAGMA user_version")),
            DatabaseDamagedError,
            "damaged",
        ),
        (
            _sqlite_error(
                lambda: [
                    limited.execute("INSERT INTO t VALUES (?)", ("z" * 5000,)) for _ in range(9)
                ]
            ),
            DatabaseFullError,
            "disk is full",
        ),
        (
            _sqlite_error(lambda: sqlite3.connect(tmp_path / "missing" / "x.sqlite3")),
            ConversationError,
            "cannot be opened",
        ),
    ]
    for error, kind, words in cases:
        translated = translate(error, good, 10.0)
        assert type(translated) is kind, (error, translated)
        assert words in str(translated)
        _one_sentence(str(translated))
    read_only.close()
    limited.close()
