"""The window's server backend: API tickets and chat turns share one inference thread, first come
first served, and a request for another model makes the next chat turn load the user's again."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QThread

from slmdesk.models.library import Library
from slmdesk.serve.inference import Slot, Ticket
from slmdesk.ui.runtime.inference import GenerateRequest, InferenceClient
from slmdesk.ui.runtime.shared_inference import SharedInference

TIMEOUT = 60_000


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop on its own thread, like the server's."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-event-loop")
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def setup(qtbot, tiny_model: Path) -> Iterator[tuple[InferenceClient, SharedInference]]:
    library = Library()
    entry = library.import_model(tiny_model, copy=False)
    client = InferenceClient(None)
    shared = SharedInference(client, library)
    with qtbot.waitSignal(client.loaded, timeout=TIMEOUT):
        client.load(entry.path, 512, 1)
    yield client, shared
    assert client.shutdown()


def _submit(loop: asyncio.AbstractEventLoop, shared: SharedInference, work: Any) -> Ticket:
    """Submit on the event loop thread and return the queued ticket."""

    async def submit() -> Ticket:
        return shared.submit(None, work, label="test")

    return asyncio.run_coroutine_threadsafe(submit(), loop).result(10)


def test_tickets_and_chat_turns_run_in_arrival_order(qtbot, setup, loop) -> None:
    client, shared = setup
    order: list[str] = []
    first_running, release = threading.Event(), threading.Event()
    client.worker.before_reply.append(lambda: order.append("chat"))

    def work(name: str, block: bool = False) -> Any:
        def run(slot: Slot) -> str:
            assert slot.engine is client.worker.engine  # the chat's own engine
            assert QThread.currentThread() is client.thread  # "slmdesk-inference"
            if block:
                first_running.set()
                assert release.wait(60)
            order.append(name)
            return name

        return run

    finished: list[object] = []
    client.reply_finished.connect(lambda _cid, _payload: finished.append(1))
    _submit(loop, shared, work("api-1", block=True))
    assert first_running.wait(60)
    client.generate(GenerateRequest(0, "hello", {"seed": 1, "max_tokens": 4}))
    last = _submit(loop, shared, work("api-2"))
    client.generate(GenerateRequest(0, "again", {"seed": 1, "max_tokens": 4}))
    release.set()
    qtbot.waitUntil(lambda: len(finished) == 2 and shared.served == 2, timeout=TIMEOUT)
    assert asyncio.run_coroutine_threadsafe(last.wait(), loop).result(10) == "api-2"
    assert order == ["api-1", "chat", "api-2", "chat"]


def test_stopping_fails_queued_tickets_and_refuses_new_ones(qtbot, setup, loop) -> None:
    _client, shared = setup
    running, release = threading.Event(), threading.Event()

    def blocking(slot: Slot) -> str:
        running.set()
        release.wait(60)
        return "done" if not slot.cancel.is_set() else "stopped"

    first = _submit(loop, shared, blocking)
    assert running.wait(60)
    queued = _submit(loop, shared, lambda _slot: "never")
    shared.stop_requests()  # the running one is cancelled, the queued one fails at once
    release.set()

    def outcome(ticket: Ticket) -> object:
        async def wait() -> object:
            try:
                return await ticket.wait()
            except Exception as exc:
                return getattr(exc, "status", exc)

        return asyncio.run_coroutine_threadsafe(wait(), loop).result(30)

    assert outcome(first) == "stopped"
    assert outcome(queued) == 503
    assert outcome(_submit(loop, shared, lambda _slot: "late")) == 503
    qtbot.waitUntil(lambda: shared.served == 1, timeout=TIMEOUT)
