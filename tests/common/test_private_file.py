"""Secret files: owner-only from creation, atomic, read with a bound."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmdesk.chat.connections import Connection, ConnectionStore
from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError
from slmdesk.common.private_file import (
    MAX_PRIVATE_BYTES,
    PrivateFileError,
    load_secret,
    read_private_text,
    save_secret,
    write_private_text,
)
from slmdesk.hub import token as hf_token
from slmdesk.serve import api_key

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that takes nothing away, so a file's mode is the one it was created with."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_private_file_is_created_owner_only(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "nested" / "secret"
    write_private_text(target, "s3cret\n")
    assert _mode(target) == 0o600
    assert read_private_text(target) == "s3cret\n"
    write_private_text(target, "second")  # replacing keeps it private too
    assert _mode(target) == 0o600 and target.read_text(encoding="utf-8") == "second"
    assert [p.name for p in target.parent.iterdir()] == ["secret"]  # no temporary file left


def test_every_secret_is_owner_only_under_an_open_umask(
    slmdesk_home: Path, open_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    hf_token.save_token("hf_abcdefghijklmnop")
    api_key.save_api_key("key-123")
    ConnectionStore().save(Connection("box", "http://10.0.0.5:8000", "sk-secret"))
    for path in (paths.token_path(), paths.server_key_path(), paths.connections_path()):
        assert _mode(path) == 0o600, path


def test_a_failed_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "keys" / "secret"
    write_private_text(target, "old")

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_private_text(target, "new")
    with pytest.raises(SlmdeskError, match=r"^Cannot save the token to .*: no space left"):
        save_secret(target, "new", "the token")
    monkeypatch.undo()
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in target.parent.iterdir()] == ["secret"]


def test_an_over_large_file_is_refused_with_a_sentence(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(b"x" * (MAX_PRIVATE_BYTES + 1))
    with pytest.raises(PrivateFileError) as caught:
        read_private_text(target)
    message = str(caught.value)
    assert message == f"{target} is larger than {MAX_PRIVATE_BYTES} bytes, so it was not read."
    assert load_secret(target) is None
    target.write_bytes(b"\xff\xfe bad")
    with pytest.raises(PrivateFileError, match="is not UTF-8 text"):
        read_private_text(target)


def test_over_large_secret_files_are_not_used(
    slmdesk_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    huge = "k" * (MAX_PRIVATE_BYTES + 1)
    for path in (paths.token_path(), paths.server_key_path()):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(huge, encoding="utf-8")
    assert hf_token.load_token() is None
    assert api_key.load_api_key() is None
    store = ConnectionStore()
    store.path.write_text('{"version": 1, "connections": []}' + " " * MAX_PRIVATE_BYTES)
    assert store.all() == []
    store.save(Connection("a", "http://a"))  # the unreadable file is set aside, not lost
    assert [c.name for c in store.all()] == ["a"]
    assert list(store.path.parent.glob("connections.json.damaged-*"))
