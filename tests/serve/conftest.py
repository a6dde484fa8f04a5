"""A real `slmdesk serve` on a free port, on a thread, with the tiny model in its library."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from slmdesk.models.library import Library
from slmdesk.serve.runner import ServeConfig, Server
from tests.gguf_copy import copy_gguf_with

TINY = "tiny"
API_KEY = "sk-test-key-123"

StartServer = Callable[..., Server]


@pytest.fixture
def library(tiny_model: Path) -> Library:
    """The test's library, holding the tiny model as ``tiny`` (linked, not copied)."""
    lib = Library()
    lib.import_model(tiny_model, copy=False, name=TINY)
    return lib


@pytest.fixture
def start_server(library: Library) -> Iterator[StartServer]:
    """Start servers on free ports (stopped after the test)."""
    started: list[Server] = []

    def start(**options: object) -> Server:
        config = ServeConfig(port=0, **options)  # type: ignore[arg-type]
        server = Server(config, library)
        started.append(server)
        server.preload()
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: StartServer) -> Server:
    """A server with the tiny model loaded and no API key."""
    return start_server(model=TINY)


@pytest.fixture
def client(server: Server) -> Iterator[object]:
    """The official openai client pointed at ``server``."""
    openai = pytest.importorskip("openai")
    with openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as c:
        yield c


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait for ``condition`` (checked every 10 ms); fail after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        time.sleep(0.01)


def copy_with_pooling(source: Path, target: Path, pooling: int = 1) -> Path:
    """A copy of a llama GGUF that declares a pooling method (mean): an embedding model."""
    return copy_gguf_with(source, target, {"llama.pooling_type": pooling})
