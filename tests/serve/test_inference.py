"""The inference queue: first come, first served; a request cancelled while queued is skipped."""

from __future__ import annotations

import asyncio
import threading

from slmdesk.models.library import Library
from slmdesk.serve.errors import ApiError
from slmdesk.serve.inference import InferenceService, ModelHost, Slot
from tests.serve.conftest import TINY


def test_requests_run_in_arrival_order_and_cancelled_ones_are_skipped(library: Library) -> None:
    service = InferenceService(ModelHost(library))
    service.start()
    order: list[int] = []
    first_running = threading.Event()
    release = threading.Event()

    def work_for(i: int) -> object:
        def work(slot: Slot) -> int:
            assert slot.model == TINY and slot.engine.is_loaded
            if i == 0:
                first_running.set()
                assert release.wait(60)
            order.append(i)
            return i

        return work

    async def scenario() -> list[object]:
        tickets = [service.submit(TINY, work_for(i)) for i in range(5)]  # type: ignore[arg-type]
        assert await asyncio.to_thread(first_running.wait, 60)
        assert service.pending() == 4  # the others wait behind the first
        tickets[2].cancel.set()
        release.set()
        outcomes: list[object] = []
        for ticket in tickets:
            try:
                outcomes.append(await ticket.wait())
            except ApiError as exc:
                outcomes.append(exc.status)
        return outcomes

    try:
        outcomes = asyncio.run(scenario())
    finally:
        service.stop()
    assert order == [0, 1, 3, 4]
    assert outcomes == [0, 1, 400, 3, 4]
    assert not service.host.engine.is_loaded  # stopping frees the model
