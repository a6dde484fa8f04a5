"""ASGI guards in front of the API: the API key, then the request body's size.

The key is checked before the body is read, so a client without it cannot make the server
buffer anything; the body is read into memory only up to the limit (1 MB by default) whether
or not the client announced its length.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slmdesk.serve.errors import ApiError, too_large, unauthorized

MAX_BODY_BYTES = 1 << 20


async def _refuse(error: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse(error.body(), status_code=error.status)(scope, receive, send)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


class ApiKeyGuard:
    """Refuse ``/v1`` requests without ``Authorization: Bearer KEY`` (when a key is set)."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self._expected = f"Bearer {api_key}".encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._expected is not None
            and scope["type"] == "http"
            and str(scope.get("path", "")).startswith("/v1")
        ):
            given = _header(scope, b"authorization") or b""
            if not secrets.compare_digest(given, self._expected):
                await _refuse(unauthorized(), scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Read a request's body up to ``limit`` bytes, answer 413 past it, then replay it."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _refuse(too_large(self.limit), scope, receive, send)
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body
            body = message.get("body", b"")
            total += len(body)
            if total > self.limit:
                await _refuse(too_large(self.limit), scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def wrap(app: Any, api_key: str | None, limit: int = MAX_BODY_BYTES) -> ASGIApp:
    """``app`` behind both guards (the key first)."""
    return ApiKeyGuard(BodyLimit(app, limit), api_key)
