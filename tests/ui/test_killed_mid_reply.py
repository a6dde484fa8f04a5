"""The app killed mid-reply: on the next start everything but the last second is there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from slmdesk.chat.conversations import ConversationStore
from slmdesk.models.synth import TinyModelSpec, write_tiny_llama

SCRIPT = textwrap.dedent(
    """
    import sys, threading
    from PySide6.QtCore import QTimer
    from slmdesk.app import build_window, make_application
    from slmdesk.chat.conversations import ConversationStore
    from slmdesk.common import settings
    from slmdesk.models.library import Library

    Library().import_model(sys.argv[1])
    settings.update(context_length=32768)  # greedy decoding then runs for many seconds
    app = make_application([])
    parts = build_window()
    parts.window.show()
    chat = parts.chat_controller
    panel = chat.view.settings_panel
    panel.max_tokens.setValue(30000)
    panel.temperature.setValue(0.0)  # this prompt never reaches an end token greedily

    def send_once_loaded():
        if chat.loaded_name is not None and chat.current is None and not chat.generating:
            chat.view.composer.setPlainText("Write forever")
            chat.send()
            watch.start()

    def report_when_saved():
        # a separate connection, as the next start would read it: the reply's text is on disk
        store, done = ConversationStore(), threading.Event()
        while not done.wait(0.05):
            for conversation in store.list_conversations():
                messages = store.get(conversation.id).messages
                if len(messages) == 2 and messages[1].text and not messages[1].finished:
                    print("STREAMING", len(messages[1].text), flush=True)
                    done.set()

    watch = threading.Thread(target=report_when_saved, name="watch", daemon=True)
    timer = QTimer()
    timer.timeout.connect(send_once_loaded)
    timer.start(10)
    app.exec()
    """
)


def test_kill_during_a_reply_keeps_the_conversation(
    qtbot, tmp_path: Path, slmdesk_home: Path
) -> None:
    tiny_model = write_tiny_llama(
        tmp_path / "long-context.gguf", TinyModelSpec(context_length=32768)
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SLMDESK_HOME": str(slmdesk_home)}
    # stderr goes to a file: a pipe nobody reads fills up and blocks a chatty child for ever
    errors = tmp_path / "child-stderr.txt"
    with open(errors, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(tiny_model)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("STREAMING"), errors.read_text(errors="replace")[-4000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    store = ConversationStore()
    (conversation,) = store.list_conversations()
    user, reply = store.get(conversation.id).messages
    assert user.role == "user" and user.text == "Write forever" and user.finished
    assert reply.role == "assistant"
    assert not reply.finished  # it was still streaming when the process died
    assert len(reply.text) > 0  # saved while streaming (at least once a second)

    # reopened, the window shows the saved part of the reply, marked as interrupted
    from slmdesk.app import build_window

    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    chat = parts.chat_controller
    qtbot.waitUntil(lambda: chat.view.conversations.count() == 1, timeout=10000)
    chat.view.conversations.setCurrentRow(0)
    qtbot.waitUntil(lambda: len(chat.view.messages.widgets()) == 2, timeout=10000)
    shown = chat.view.messages.widgets()[1]
    assert shown.text == reply.text
    assert "interrupted" in shown.timings.text()
    parts.window.close()
    parts.shutdown()
