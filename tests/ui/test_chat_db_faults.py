"""The Chat page when the conversation database fails: the reply ends, the reason shows, nothing
typed is lost, and Send works again. Real window, real llama.cpp (tiny model), real SQLite files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from slmdesk.app import AppParts, build_window
from slmdesk.chat.conversations import ConversationStore
from slmdesk.common import paths
from slmdesk.models.library import Library
from tests import fault_tools

TIMEOUT = 60_000


def _close(parts: AppParts) -> None:
    parts.window.close()
    parts.shutdown()


def test_a_damaged_database_is_set_aside_and_the_chat_says_where(qtbot) -> None:
    db_path = paths.database_path()
    db_path.write_bytes(b"this used to be a database " * 200)
    damaged = db_path.read_bytes()
    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    controller = parts.chat_controller
    assert controller is not None  # the chat works, on a new database
    # the database is opened on the task pool; the notice appears once that is done
    qtbot.waitUntil(lambda: "moved to" in controller.view.notice.text(), timeout=10000)
    (aside,) = db_path.parent.glob("conversations-damaged-*.sqlite3")
    assert aside.read_bytes() == damaged
    notice = controller.view.notice.text()
    assert str(aside) in notice and "moved to" in notice
    assert controller.store.take_notice() is None  # shown once
    _close(parts)


# -- a read-only database, in a child process that file permissions apply to -----------------

READ_ONLY_CHILD = """
import json, sys, time
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from slmdesk.app import build_window

app = QApplication([])
parts = build_window(autoload_model=True)
controller = parts.chat_controller


def wait(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        QTest.qWait(20)
    return condition()


wait(lambda: controller.loaded_name is not None, 120)
wait(lambda: controller.view.conversations.count() == 1, 60)
controller.view.conversations.setCurrentRow(0)
wait(lambda: controller.current is not None and controller.view.messages.widgets(), 60)
controller.view.composer.setPlainText("Please keep this text")
controller.send()
wait(lambda: not controller.generating and "read-only" in controller.view.notice.text(), 60)
parts.tasks.wait()
QTest.qWait(50)
print(json.dumps({
    "loaded": controller.loaded_name,
    "generating": controller.generating,
    "notice": controller.view.notice.text(),
    "composer": controller.view.composer.toPlainText(),
    "shown": [w.text for w in controller.view.messages.widgets()],
}))
parts.window.close()
parts.shutdown()
"""


def test_sending_to_a_read_only_database_ends_the_reply_with_the_reason(
    tiny_model: Path,
) -> None:
    Library().import_model(tiny_model)
    with ConversationStore() as store:
        conversation = store.create(title="Earlier chat")
        store.add_message(conversation.id, "user", "an earlier question")
    db_path = paths.database_path()
    before = db_path.read_bytes()
    db_path.chmod(0o444)
    out = subprocess.run(
        [*fault_tools.unprivileged_prefix(), sys.executable, "-c", READ_ONLY_CHILD],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    state = json.loads(out.stdout.strip().splitlines()[-1])
    assert state["loaded"] == "tiny-llama-F16"
    assert state["generating"] is False  # Send works again
    assert "read-only" in state["notice"] and str(db_path) in state["notice"]
    assert state["composer"] == "Please keep this text"  # nothing typed is lost
    assert state["shown"] == ["an earlier question"]
    assert "Traceback" not in out.stderr
    assert db_path.read_bytes() == before


# -- a full disk, on a small tmpfs -------------------------------------------------------------


@pytest.fixture
def home_on_small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """SLMDESK_HOME on a 4 MiB tmpfs (skipped where mounting is not allowed)."""
    with fault_tools.small_disk(tmp_path / "small-home", "4m") as mount_point:
        monkeypatch.setenv("SLMDESK_HOME", str(mount_point))
        yield mount_point


def _send(qtbot, parts: AppParts, text: str) -> None:
    controller = parts.chat_controller
    assert controller is not None
    controller.view.composer.setPlainText(text)
    qtbot.keyClick(controller.view.composer, Qt.Key.Key_Return)


def test_sending_on_a_full_disk_ends_the_reply_and_send_works_after(
    qtbot, tiny_model: Path, home_on_small_disk: Path
) -> None:
    Library().import_model(tiny_model, copy=False)  # the model stays off the small disk
    parts = build_window(autoload_model=True)
    qtbot.addWidget(parts.window)
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: controller.loaded_name == "tiny-llama-F16", timeout=TIMEOUT)
    controller.view.settings_panel.max_tokens.setValue(4)
    _send(qtbot, parts, "first question")
    qtbot.waitUntil(
        lambda: not controller.generating and controller.current is not None, timeout=TIMEOUT
    )
    parts.tasks.wait()
    filler = fault_tools.fill(home_on_small_disk)
    big = "a long pasted text " * 20_000  # far more than the write-ahead log's spare room
    _send(qtbot, parts, big)
    qtbot.waitUntil(
        lambda: not controller.generating and "disk is full" in controller.view.notice.text(),
        timeout=TIMEOUT,
    )
    assert controller.view.composer.toPlainText() == big.strip()  # nothing typed is lost
    shown = controller.view.messages.widgets()
    assert len(shown) == 2 and shown[0].text == "first question"  # the failed one is not shown
    filler.unlink()
    _send(qtbot, parts, "second question")  # Send is not ignored
    qtbot.waitUntil(lambda: controller.generating, timeout=5000)
    qtbot.waitUntil(lambda: not controller.generating, timeout=TIMEOUT)
    parts.tasks.wait()
    with ConversationStore() as store:
        saved = store.get(store.list_conversations()[0].id).messages
    assert [(m.role, m.finished) for m in saved] == [
        ("user", True),
        ("assistant", True),
        ("user", True),
        ("assistant", True),
    ]
    assert [saved[0].text, saved[2].text] == ["first question", "second question"]
    _close(parts)
