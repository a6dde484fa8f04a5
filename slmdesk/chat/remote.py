"""Chat with a model on another machine's OpenAI-compatible server (llama-server, vLLM, Ollama,
LM Studio, another ``slmdesk serve``).

`RemoteEngine` offers what `ChatSession` uses of the local `ChatEngine` — ``is_loaded``,
``reset_cache`` and ``generate(messages, sampling, on_token, stop_event, complete)`` returning a
`GenerationResult` — so chat, stop, regenerate, history and export work the same for both. It
blocks like the local engine; run it on a worker thread.

The server is a stranger, so everything is bounded: connecting (`RemoteLimits.connect_timeout`),
the wait for the first piece of the reply (``first_byte_timeout``), the gap between two pieces
(``chunk_timeout``), the bytes of one reply, of one stream line and of the model list. Every
failure is one sentence (`slmdesk.chat.remote_errors`).

Why a reader thread: the HTTP read blocks, and a stop must end the reply at once even while the
server is still thinking about its first token. The caller waits on a queue (checking the stop
event and the deadlines every few milliseconds); on stop it shuts the connection's socket down,
which wakes the reader, and the server sees the closed connection and stops generating.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slmdesk.chat.endpoint import api_base, check_api_key, server_label
from slmdesk.chat.remote_errors import (
    RemoteError,
    RemoteModelError,
    RemoteProtocolError,
    RemoteServerError,
    RemoteTimeoutError,
    RemoteUnreachableError,
    connect_reason,
    server_text,
    status_error,
)
from slmdesk.chat.sse import SSEFormatError, sse_data
from slmdesk.common.format import printable
from slmdesk.llama.engine import (
    EngineError,
    GenerationResult,
    SamplingSettings,
    Timings,
    TokenCallback,
)

log = logging.getLogger(__name__)

READER_THREAD = "slmdesk-remote-reply"
_POLL = 0.02  # seconds between checks of the stop event while waiting for the server
_ERROR_BODY_BYTES = 64 * 1024
MAX_MODEL_ID_CHARS = 256


@dataclass(frozen=True)
class RemoteLimits:
    """How long to wait and how much to accept from a server."""

    connect_timeout: float = 5.0
    first_byte_timeout: float = 60.0
    chunk_timeout: float = 30.0
    max_reply_bytes: int = 8 * 1024 * 1024
    max_models_bytes: int = 1024 * 1024
    max_models: int = 1000


@dataclass(frozen=True)
class RemoteTarget:
    """A model on a server: where, which, with what key, and what to call it in messages."""

    base_url: str
    model: str
    api_key: str = field(default="", repr=False)  # a secret: never in a repr or a log
    name: str = ""

    @property
    def label(self) -> str:
        """The server as messages name it: the connection's name, else ``host:port``."""
        return printable(self.name[:60]) if self.name else server_label(self.base_url)


def list_models(target: RemoteTarget, limits: RemoteLimits | None = None) -> list[str]:
    """The model ids ``GET /v1/models`` lists (``target.model`` is ignored), sorted.

    Raises:
        RemoteError: unreachable, slow, key refused, no such endpoint, or an unreadable list.
        EndpointError: the address or key is unusable.
    """
    import httpx2

    limits = limits or RemoteLimits()
    base, key = api_base(target.base_url), check_api_key(target.api_key)
    server = target.label
    timeout = httpx2.Timeout(limits.first_byte_timeout, connect=limits.connect_timeout)
    try:
        with (
            httpx2.Client(timeout=timeout) as client,
            client.stream("GET", f"{base}/models", headers=_headers(key)) as resp,
        ):
            body = _read_bounded(resp, limits.max_models_bytes, server, "model list")
            status = resp.status_code
    except httpx2.TransportError as exc:
        raise _transport_error(exc, server, limits) from None
    if status == 404:
        raise RemoteProtocolError(
            f"{server} has no model list at {printable(base[:100])}/models: is this the address "
            "of an OpenAI-compatible server?"
        )
    if status >= 400:
        raise status_error(server, status, body, "", bool(key))
    try:
        data = json.loads(body)
        items = data["data"]
        if not isinstance(items, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise RemoteProtocolError(
            f"{server} sent a model list slmdesk cannot read (not the OpenAI shape)."
        ) from None
    ids = {
        item["id"]
        for item in items[: limits.max_models]
        if isinstance(item, dict)
        and isinstance(item.get("id"), str)
        and 0 < len(item["id"]) <= MAX_MODEL_ID_CHARS
    }
    return sorted(ids)


class RemoteEngine:
    """A model on a server, used like a loaded `ChatEngine` (from one thread at a time)."""

    def __init__(self, target: RemoteTarget, limits: RemoteLimits | None = None) -> None:
        """Check the address and key (raises `EndpointError`); nothing is sent yet."""
        import httpx2

        self.target = target
        self.limits = limits or RemoteLimits()
        self.base = api_base(target.base_url)
        self.key = check_api_key(target.api_key)
        if not target.model.strip():
            raise EngineError("Name the server's model to chat with.")
        # The read timeout is a backstop so the reader thread always ends; the real deadlines
        # are enforced by the waiting caller.
        backstop = max(self.limits.first_byte_timeout, self.limits.chunk_timeout) + 5
        self._client = httpx2.Client(
            timeout=httpx2.Timeout(backstop, connect=self.limits.connect_timeout)
        )

    # -- what ChatSession uses ---------------------------------------------------------------

    @property
    def is_loaded(self) -> bool:
        """Always True: there is nothing to load (the server has the model)."""
        return True

    @property
    def format_description(self) -> str:
        """How prompts are written: by the server, with the model's own template."""
        return f"the prompt format of {self.target.label} (the server applies the template)"

    def reset_cache(self) -> None:
        """Nothing is cached here (the server keeps its own cache)."""

    def unload(self) -> None:
        """Close the connections kept open to the server."""
        self._client.close()

    def generate(
        self,
        messages: Sequence[Mapping[str, Any]],
        sampling: SamplingSettings | None = None,
        on_token: TokenCallback | None = None,
        stop_event: threading.Event | None = None,
        complete: bool = False,
    ) -> GenerationResult:
        """Stream the server's reply to ``messages`` through ``on_token``.

        Same contract as `ChatEngine.generate`: a stop keeps what arrived (``finish_reason``
        ``cancelled``); ``complete`` sends the last message alone to ``/v1/completions``.

        Raises:
            EngineError: an empty conversation or message.
            RemoteError: the server is unreachable, slow, refuses, or sends nonsense (one
                sentence; the text received so far is lost to this call, as with the engine).
        """
        sampling = sampling or SamplingSettings()
        sampling.validate()
        if not messages or messages[-1].get("role") != "user":
            raise EngineError("The conversation must end with a message from you.")
        if not str(messages[-1].get("content") or "").strip():
            raise EngineError("The message is empty: type something first.")
        path, body = self._request(messages, sampling, complete)
        call = _StreamCall(self, path, body, stop_event or threading.Event())
        try:
            return call.run(on_token)
        finally:
            call.close()

    def _request(
        self, messages: Sequence[Mapping[str, Any]], sampling: SamplingSettings, complete: bool
    ) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.target.model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None and sampling.seed >= 0:
            body["seed"] = sampling.seed
        if complete:
            body["prompt"] = str(messages[-1].get("content") or "")
            return "/completions", body
        body["messages"] = [
            {"role": str(m.get("role")), "content": str(m.get("content") or "")} for m in messages
        ]
        return "/chat/completions", body


def _headers(key: str) -> dict[str, str]:
    headers = {"Accept": "text/event-stream, application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _read_bounded(resp: Any, limit: int, server: str, what: str) -> bytes:
    """The whole body of ``resp``, refusing one larger than ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    for piece in resp.iter_bytes():
        size += len(piece)
        if size > limit:
            raise RemoteProtocolError(
                f"{server} sent a {what} larger than {limit // 1024:,} KB; slmdesk stopped reading it."
            )
        parts.append(piece)
    return b"".join(parts)


def _transport_error(exc: BaseException, server: str, limits: RemoteLimits) -> RemoteError:
    """One sentence for a network failure from httpx2."""
    import httpx2

    if isinstance(exc, httpx2.ConnectTimeout | httpx2.PoolTimeout):
        return RemoteTimeoutError(
            f"Cannot reach {server}: no answer within {limits.connect_timeout:g} s."
        )
    if isinstance(exc, httpx2.ConnectError):
        return RemoteUnreachableError(f"Cannot reach {server}: {connect_reason(exc)}.")
    if isinstance(exc, httpx2.TimeoutException):
        return RemoteTimeoutError(f"{server} stopped answering (timed out).")
    if isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError):
        return RemoteProtocolError(
            f"{server} closed the connection before the answer was complete."
        )
    return RemoteUnreachableError(f"Cannot reach {server}: {connect_reason(exc)}.")


class _Stopped(Exception):
    """The user stopped the reply (internal)."""


class _StreamCall:
    """One streamed request: a reader thread feeding a queue, the caller parsing it."""

    def __init__(
        self, engine: RemoteEngine, path: str, body: dict[str, Any], stop: threading.Event
    ) -> None:
        self.engine, self.path, self.body, self.stop = engine, path, body, stop
        self.limits = engine.limits
        self.server = engine.target.label
        self.items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=256)
        self.abandon = threading.Event()
        self._socket: socket.socket | None = None
        self._socket_lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, name=READER_THREAD, daemon=True)

    # -- the reader thread -------------------------------------------------------------------

    def _trace(self, name: str, info: Mapping[str, Any]) -> None:
        """Keep the connection's socket so a stop can wake a blocked read."""
        if name == "connection.connect_tcp.complete" and info.get("return_value") is not None:
            sock = info["return_value"].get_extra_info("socket")
            with self._socket_lock:
                self._socket = sock
                if self.abandon.is_set():
                    self._shutdown_socket()

    def _put(self, item: tuple[str, Any]) -> bool:
        """Hand ``item`` to the caller; False once the caller has gone."""
        while not self.abandon.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        import httpx2

        engine = self.engine
        try:
            with engine._client.stream(
                "POST",
                engine.base + self.path,
                json=self.body,
                headers=_headers(engine.key),
                extensions={"trace": self._trace},
            ) as resp:
                kind = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                if not self._put(("status", (resp.status_code, kind))):
                    return
                if resp.status_code >= 400:
                    body = b""
                    with contextlib.suppress(RemoteError, httpx2.HTTPError):
                        body = _read_bounded(resp, _ERROR_BODY_BYTES, self.server, "error")
                    self._put(("error", body))
                    return
                for piece in resp.iter_raw():
                    if not self._put(("bytes", piece)):
                        return
            self._put(("end", None))
        except Exception as exc:  # handed to the caller, which decides what it means
            if not self.abandon.is_set():
                self._put(("exception", exc))

    # -- the caller's side -------------------------------------------------------------------

    def _shutdown_socket(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """End the reader: wake a blocked read and wait for the thread (bounded)."""
        self.abandon.set()
        with self._socket_lock:
            self._shutdown_socket()
        if self.thread.is_alive():
            self.thread.join(self.limits.connect_timeout + 2)

    def _next(self, deadline: float, late: str) -> tuple[str, Any]:
        """The reader's next item, or `_Stopped` / a timeout error with ``late`` as message."""
        while True:
            if self.stop.is_set():
                raise _Stopped
            wait = min(_POLL, deadline - time.monotonic())
            if wait <= 0:
                raise RemoteTimeoutError(late)
            try:
                return self.items.get(timeout=wait)
            except queue.Empty:
                continue

    def run(self, on_token: TokenCallback | None) -> GenerationResult:
        started = time.monotonic()
        self.thread.start()
        timings = Timings()
        parts: list[str] = []
        first_piece: float | None = None
        try:
            for event in self._events(started):
                if event == "[DONE]":
                    break
                piece, finish, usage = self._parse(event)
                if usage:
                    timings.prompt_tokens = _count(usage.get("prompt_tokens"))
                    timings.generated_tokens = _count(usage.get("completion_tokens"))
                if piece:
                    if first_piece is None:
                        first_piece = time.monotonic()
                    parts.append(piece)
                    if not usage:
                        timings.generated_tokens += 1  # one piece is about one token
                    if on_token is not None:
                        on_token(piece)
                if finish:
                    timings.finish_reason = "length" if finish == "length" else "stop"
        except _Stopped:
            timings.finish_reason = "cancelled"
        ended = time.monotonic()
        first = first_piece if first_piece is not None else ended
        timings.time_to_first_token = round(first - started, 4)
        timings.prompt_seconds = timings.time_to_first_token
        timings.generation_seconds = round(ended - first, 4)
        if timings.generation_seconds > 0 and timings.generated_tokens > 1:
            timings.tokens_per_second = round(
                (timings.generated_tokens - 1) / timings.generation_seconds, 2
            )
        timings.evaluated_tokens = timings.prompt_tokens
        return GenerationResult(
            "".join(parts), timings, format_description=self.engine.format_description
        )

    def _events(self, started: float) -> Iterator[str]:
        """The data of each streamed event (or the one JSON body of a server that won't stream)."""
        limits = self.limits
        first_late = (
            f"{self.server} did not start answering within {limits.first_byte_timeout:g} s."
        )
        kind, status_info = self._next(started + limits.first_byte_timeout, first_late)
        if kind == "exception":
            raise _transport_error(status_info, self.server, limits)
        status, content_type = status_info
        if status >= 400:
            _, body = self._next(time.monotonic() + limits.chunk_timeout, first_late)
            raise status_error(
                self.server, status, body or b"", self.engine.target.model, bool(self.engine.key)
            )
        received = 0
        saw_data = False

        def chunks() -> Iterator[bytes]:
            nonlocal received, saw_data
            while True:
                if saw_data:
                    deadline = time.monotonic() + limits.chunk_timeout
                    late = (
                        f"{self.server} sent nothing for {limits.chunk_timeout:g} s in the middle "
                        "of the reply; it was cut there."
                    )
                else:
                    deadline, late = started + limits.first_byte_timeout, first_late
                kind, value = self._next(deadline, late)
                if kind == "end":
                    return
                if kind == "exception":
                    raise _transport_error(value, self.server, limits)
                received += len(value)
                if received > limits.max_reply_bytes:
                    raise RemoteProtocolError(
                        f"{self.server} sent more than {limits.max_reply_bytes // (1024 * 1024)} "
                        "MB for one reply; it was cut there."
                    )
                saw_data = True
                yield value

        if content_type == "application/json":  # a server that ignores "stream": answer at once
            yield b"".join(chunks()).decode("utf-8", errors="replace")
            return
        ended = False
        try:
            for data in sse_data(chunks()):
                yield data
                if data == "[DONE]":
                    ended = True
                    return
        except SSEFormatError as exc:
            raise RemoteProtocolError(f"{self.server} sent a broken stream ({exc}).") from None
        if not ended and not self._finished:
            raise RemoteProtocolError(
                f"{self.server} closed the connection before the reply was complete."
            )

    _finished = False

    def _parse(self, data: str) -> tuple[str, str | None, dict[str, Any] | None]:
        """(text piece, finish reason, usage) of one event."""
        try:
            event = json.loads(data)
        except ValueError:
            raise RemoteProtocolError(
                f"{self.server} sent a stream slmdesk cannot read (not JSON)."
            ) from None
        if not isinstance(event, dict):
            raise RemoteProtocolError(f"{self.server} sent a stream slmdesk cannot read.")
        if "error" in event:
            said = server_text(json.dumps(event).encode())
            raise RemoteServerError(f"{self.server} stopped the reply with an error: {said}.")
        usage = event.get("usage") if isinstance(event.get("usage"), dict) else None
        choices = event.get("choices")
        if not isinstance(choices, list):
            raise RemoteProtocolError(f"{self.server} sent a stream slmdesk cannot read.")
        if not choices:
            return "", None, usage
        choice = choices[0]
        if not isinstance(choice, dict):
            raise RemoteProtocolError(f"{self.server} sent a stream slmdesk cannot read.")
        piece: Any = ""
        if isinstance(choice.get("delta"), dict):
            piece = choice["delta"].get("content") or ""
        elif isinstance(choice.get("message"), dict):  # a whole, non-streamed answer
            piece = choice["message"].get("content") or ""
        elif "text" in choice:
            piece = choice.get("text") or ""
        if not isinstance(piece, str):
            raise RemoteProtocolError(f"{self.server} sent a stream slmdesk cannot read.")
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            self._finished = True
            return piece, finish, usage
        return piece, None, usage


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


__all__ = [
    "RemoteEngine",
    "RemoteError",
    "RemoteLimits",
    "RemoteModelError",
    "RemoteTarget",
    "list_models",
]
