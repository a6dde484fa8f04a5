"""The FastAPI application: OpenAI's routes over the inference queue.

Every route only checks its body, queues a `Ticket` and turns what comes back into OpenAI's
shapes; the model work happens on the inference thread (`slmdesk.serve.inference`). A client
that closes its connection cancels its ticket: a queued request is skipped, a running one stops
within one token. Streams (server-sent events) start only once the request has been accepted,
so an unknown model or a bad value is still an ordinary HTTP error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from slmdesk.models.library import Library
from slmdesk.serve import replies
from slmdesk.serve.backend import Backend
from slmdesk.serve.embeddings import embedding_work
from slmdesk.serve.errors import ApiError, error_body, model_not_found
from slmdesk.serve.generation import (
    TextRequest,
    from_chat,
    from_completion,
    from_responses,
    generation_work,
)
from slmdesk.serve.guards import MAX_BODY_BYTES, wrap
from slmdesk.serve.inference import Ticket
from slmdesk.serve.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ResponsesRequest,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
# Seconds between keep-alive comments on a stream waiting for its first token.
PING_SECONDS = 15


class ClientGone(Exception):
    """The client closed its connection before its answer was ready."""


async def _watch_disconnect(request: Request, ticket: Ticket) -> None:
    """Cancel ``ticket`` when the client closes its connection."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            ticket.cancel.set()
            return


async def _unless_gone(request: Request, ticket: Ticket, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``; if the client leaves first, cancel ``ticket`` and raise ClientGone."""
    work = asyncio.ensure_future(awaitable)
    watcher = asyncio.ensure_future(_watch_disconnect(request, ticket))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            return work.result()
        raise ClientGone
    finally:
        for task in (work, watcher):
            task.cancel()
        if not work.done() or work.cancelled():
            ticket.cancel.set()


def _sse(data: Any, event: str | None = None) -> dict[str, str]:
    item = {"data": data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))}
    if event is not None:
        item["event"] = event
    return item


class _Stream:
    """A ticket's text, with the first piece (or the failure) awaited before the response."""

    def __init__(self, ticket: Ticket) -> None:
        self.ticket = ticket
        self._texts = ticket.texts()
        self.first: str | None = None
        self.error: ApiError | None = None  # a failure after the stream began

    async def start(self) -> None:
        """Wait for the first piece of text (raises the request's ApiError)."""
        with contextlib.suppress(StopAsyncIteration):
            self.first = await self._texts.__anext__()

    async def pieces(self) -> AsyncIterator[str]:
        """All the text, the first piece included; a failure ends it and sets ``error``."""
        try:
            if self.first is not None:
                yield self.first
                async for piece in self._texts:
                    yield piece
        except ApiError as exc:
            self.error = exc
        finally:
            self.ticket.cancel.set()  # a no-op when the reply ended; stops it when not


def create_app(service: Backend, library: Library, max_body: int = MAX_BODY_BYTES) -> FastAPI:
    """The API routes over ``service`` (wrap with `guarded` for the key and body limit)."""
    api = FastAPI(title="slmdesk", docs_url=None, redoc_url=None, openapi_url=None)

    @api.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @api.exception_handler(ClientGone)
    async def _gone(_request: Request, _exc: ClientGone) -> JSONResponse:
        return JSONResponse(error_body("The client closed the connection.", "cancelled"), 499)

    @api.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        reason = str(first.get("msg", "invalid request"))
        if first.get("type") == "json_invalid":
            message, param = "The request body is not valid JSON.", None
        else:
            message = f"Invalid value for {param}: {reason}." if param else f"{reason}."
        return JSONResponse(
            error_body(message, "invalid_request_error", param, "invalid_value"), status_code=400
        )

    @api.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
        message = "No such endpoint." if exc.status_code == 404 else str(exc.detail)
        return JSONResponse(error_body(message, kind), status_code=exc.status_code)

    def model_card(name: str, created: float, loaded: str | None) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": int(created),
            "owned_by": "slmdesk",
            "loaded": name == loaded,
        }

    @api.get("/v1/models")
    def list_models() -> dict[str, Any]:
        loaded = service.loaded_name()
        cards = [model_card(e.name, e.added_at, loaded) for e in library.entries()]
        return {"object": "list", "data": cards}

    @api.get("/v1/models/{name:path}")
    def get_model(name: str) -> dict[str, Any]:
        for entry in library.entries():
            if entry.name.lower() == name.lower():
                return model_card(entry.name, entry.added_at, service.loaded_name())
        raise model_not_found(name)

    async def answer(
        request: Request, model: str | None, text: TextRequest, label: str
    ) -> tuple[str, Any]:
        """The whole reply of a request that is not streamed: (served model, result)."""
        ticket = service.submit(model, generation_work(text), label=label)
        result = await _unless_gone(request, ticket, ticket.wait())
        return ticket.served_model, result

    async def start(request: Request, model: str | None, text: TextRequest, label: str) -> _Stream:
        ticket = service.submit(model, generation_work(text), label=label)
        stream = _Stream(ticket)
        await _unless_gone(request, ticket, stream.start())
        return stream

    @api.post("/v1/chat/completions", response_model=None)
    async def chat_completions(
        body: ChatCompletionRequest, request: Request
    ) -> JSONResponse | EventSourceResponse:
        text = from_chat(body)
        rid = replies.new_id("chatcmpl-")
        if not body.stream:
            served, result = await answer(request, body.model, text, "chat completion")
            return JSONResponse(replies.chat_completion(rid, served, result))
        stream = await start(request, body.model, text, "chat completion")
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        async def events() -> AsyncIterator[dict[str, str]]:
            model = stream.ticket.served_model
            yield _sse(replies.chat_chunk(rid, model, {"role": "assistant", "content": ""}))
            async for piece in stream.pieces():
                yield _sse(replies.chat_chunk(rid, model, {"content": piece}))
            if stream.error is not None:
                yield _sse(stream.error.body())
                return
            result = stream.ticket.result
            yield _sse(replies.chat_chunk(rid, model, {}, replies.finish_reason(result)))
            if include_usage:
                yield _sse(replies.chat_chunk(rid, model, None, use=replies.usage(result)))
            yield _sse("[DONE]")

        return EventSourceResponse(events(), ping=PING_SECONDS)

    @api.post("/v1/completions", response_model=None)
    async def completions(
        body: CompletionRequest, request: Request
    ) -> JSONResponse | EventSourceResponse:
        text = from_completion(body)
        rid = replies.new_id("cmpl-")
        if not body.stream:
            served, result = await answer(request, body.model, text, "completion")
            finish = replies.finish_reason(result)
            use = replies.usage(result)
            return JSONResponse(replies.completion(rid, served, result.text, finish, use))
        stream = await start(request, body.model, text, "completion")
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        async def events() -> AsyncIterator[dict[str, str]]:
            model = stream.ticket.served_model
            async for piece in stream.pieces():
                yield _sse(replies.completion(rid, model, piece, None, None))
            if stream.error is not None:
                yield _sse(stream.error.body())
                return
            result = stream.ticket.result
            use = replies.usage(result) if include_usage else None
            yield _sse(replies.completion(rid, model, "", replies.finish_reason(result), use))
            yield _sse("[DONE]")

        return EventSourceResponse(events(), ping=PING_SECONDS)

    @api.post("/v1/responses", response_model=None)
    async def responses(
        body: ResponsesRequest, request: Request
    ) -> JSONResponse | EventSourceResponse:
        text = from_responses(body)
        rid, mid, created = replies.new_id("resp_"), replies.new_id("msg_"), int(time.time())
        if not body.stream:
            served, result = await answer(request, body.model, text, "response")
            return JSONResponse(
                replies.response(rid, mid, served, result.text, "completed", result, created)
            )
        stream = await start(request, body.model, text, "response")

        async def events() -> AsyncIterator[dict[str, str]]:
            model = stream.ticket.served_model
            seq = 0

            def event(kind: str, **fields: Any) -> dict[str, str]:
                nonlocal seq
                seq += 1
                return _sse({"type": kind, "sequence_number": seq - 1, **fields}, kind)

            shell = replies.response(rid, mid, model, "", "in_progress", None, created)
            yield event("response.created", response=shell)
            yield event("response.in_progress", response=shell)
            where = {"item_id": mid, "output_index": 0}
            item = replies.message_item(mid, "", "in_progress")
            yield event("response.output_item.added", output_index=0, item=item)
            part = replies.output_text("")
            yield event("response.content_part.added", **where, content_index=0, part=part)
            pieces = []
            async for piece in stream.pieces():
                pieces.append(piece)
                yield event(
                    "response.output_text.delta",
                    **where,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            if stream.error is not None:
                failure = stream.error
                yield event("error", code=failure.code, message=failure.message, param=None)
                return
            full = "".join(pieces)
            result = stream.ticket.result
            yield event(
                "response.output_text.done", **where, content_index=0, text=full, logprobs=[]
            )
            part = replies.output_text(full)
            yield event("response.content_part.done", **where, content_index=0, part=part)
            item = replies.message_item(mid, full, "completed")
            yield event("response.output_item.done", output_index=0, item=item)
            final = replies.response(rid, mid, model, full, "completed", result, created)
            yield event(f"response.{final['status']}", response=final)

        return EventSourceResponse(events(), ping=PING_SECONDS)

    @api.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest, request: Request) -> JSONResponse:
        ticket = service.submit(
            body.model, embedding_work(body), purpose="embed", label="embeddings"
        )
        result = await _unless_gone(request, ticket, ticket.wait())
        return JSONResponse(result)

    return api


def guarded(api: FastAPI, api_key: str | None, max_body: int = MAX_BODY_BYTES) -> ASGIApp:
    """``api`` behind the API key and the body size limit."""
    return wrap(api, api_key, max_body)
