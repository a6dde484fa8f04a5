"""The inference worker on its named thread: newest load wins, storeless replies, bounded stop."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from slmdesk.ui.runtime.inference import GenerateRequest, InferenceClient
from slmdesk.ui.runtime.jobs import JobState

TIMEOUT = 60_000


@pytest.fixture
def client():
    handle = InferenceClient(None)
    yield handle
    assert handle.shutdown()


def _copies(model: Path, folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"model-{i}.gguf"
        shutil.copyfile(model, path)
        paths.append(path)
    return paths


def test_newest_load_wins(qtbot, client: InferenceClient, tiny_model: Path, tmp_path: Path) -> None:
    paths = _copies(tiny_model, tmp_path, 3)
    loaded: list[dict] = []
    failed: list[str] = []
    client.loaded.connect(loaded.append)
    client.load_failed.connect(failed.append)
    jobs = [client.load(path, 512, 1) for path in paths]  # three quick clicks in the picker
    assert client.loading
    qtbot.waitUntil(lambda: not any(job.running for job in jobs), timeout=TIMEOUT)
    assert [job.state for job in jobs] == [
        JobState.CANCELLED,
        JobState.CANCELLED,
        JobState.SUCCEEDED,
    ]
    assert [info["path"] for info in loaded] == [str(paths[2])]
    assert failed == []
    assert not client.loading
    # the worker is idle now: its engine holds the last model and answers with it
    assert client.worker.engine.loaded is not None
    assert client.worker.engine.loaded.path == paths[2]
    with qtbot.waitSignal(client.reply_finished, timeout=TIMEOUT) as finished:
        client.generate(GenerateRequest(0, "hello", {"seed": 1, "max_tokens": 4}))
    assert finished.args[1]["timings"]["generated_tokens"] >= 1


def test_cancelling_the_only_load_leaves_no_model(
    qtbot, client: InferenceClient, tiny_model: Path
) -> None:
    with qtbot.waitSignal(client.load_failed, timeout=TIMEOUT) as failed:
        job = client.load(tiny_model, 512, 1)
        client.cancel_loading()
    assert failed.args == ["Loading was cancelled."]
    assert job.state is JobState.CANCELLED
    with qtbot.waitSignal(client.reply_failed, timeout=TIMEOUT) as reply:
        client.generate(GenerateRequest(0, "hello", {"max_tokens": 4}))
    assert "No model is loaded" in reply.args[1]


def test_in_memory_conversation_keeps_its_turns(
    qtbot, client: InferenceClient, tiny_model: Path
) -> None:
    with qtbot.waitSignal(client.loaded, timeout=TIMEOUT):
        client.load(tiny_model, 512, 1)
    chunks: list[str] = []
    client.chunk.connect(lambda _mid, text: chunks.append(text))
    for prompt in ("hello", "and then?"):
        with qtbot.waitSignal(client.reply_finished, timeout=TIMEOUT) as finished:
            client.generate(GenerateRequest(0, prompt, {"seed": 1, "max_tokens": 8}))
        message = finished.args[1]["message"]
        assert message.id < 0 and message.finished  # not stored anywhere
        assert "".join(chunks) == message.text  # coalesced chunks add up to the reply
        chunks.clear()
    session = client.worker.scratch
    assert session is not None
    assert [m.role for m in session.history] == ["user", "assistant"] * 2
    # the second turn reused the first one's tokens
    assert finished.args[1]["timings"]["reused_tokens"] > 0


def test_shutdown_mid_reply_is_bounded(qtbot, tiny_model: Path) -> None:
    client = InferenceClient(None)
    with qtbot.waitSignal(client.loaded, timeout=TIMEOUT):
        client.load(tiny_model, 2048, 1)
    texts: list[str] = []
    client.chunk.connect(lambda _mid, text: texts.append(text))
    client.generate(
        GenerateRequest(0, "tell me everything", {"temperature": 1.5, "max_tokens": 4000})
    )
    qtbot.waitUntil(lambda: bool(texts), timeout=TIMEOUT)  # tokens are streaming
    started = time.monotonic()
    assert client.shutdown()
    assert time.monotonic() - started < 2.0
    assert client.thread.isFinished()
    assert client.worker.engine.loaded is None  # the model was freed
