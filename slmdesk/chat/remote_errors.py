"""What can go wrong talking to a remote server, each as one sentence for the user.

The remote engine raises only these (all `SlmdeskError`s), so the chat, the CLI and the
settings page show them as they are. Messages name the server the way the user named it
(the connection's name, or ``host:port``); a server's own error text is cut to one short,
printable line because the server may be anything.
"""

from __future__ import annotations

import errno
import json

from slmdesk.common.errors import SlmdeskError
from slmdesk.common.format import printable

MAX_SERVER_TEXT = 160


class RemoteError(SlmdeskError):
    """A remote server could not give what was asked."""


class RemoteUnreachableError(RemoteError):
    """Nothing answers at the address (refused, unknown host, network down)."""


class RemoteTimeoutError(RemoteError):
    """The server took too long to connect, to start answering, or between two pieces."""


class RemoteAuthError(RemoteError):
    """The server refused the API key (HTTP 401/403)."""


class RemoteModelError(RemoteError):
    """The server has no such model (HTTP 404)."""


class RemoteServerError(RemoteError):
    """The server failed (HTTP 5xx) or refused the request (other 4xx)."""


class RemoteProtocolError(RemoteError):
    """The server's answer is not what the OpenAI API promises (garbage, too big, cut)."""


def connect_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words ("connection refused", "unknown host")."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        number = getattr(current, "errno", None)
        if number == errno.ECONNREFUSED:
            return "connection refused"
        if number in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "the network or host is unreachable"
        text = str(current).lower()
        if "refused" in text:
            return "connection refused"
        if "name or service not known" in text or "nodename nor servname" in text:
            return "the host name is unknown"
        if "temporary failure in name resolution" in text or "getaddrinfo" in text:
            return "the host name cannot be looked up"
        if "certificate" in text or "ssl" in text:
            return "its TLS certificate was not accepted"
        current = current.__cause__ or current.__context__
    return "the connection failed"


def server_text(body: bytes) -> str:
    """The error message inside a server's error body (OpenAI shape or plain), one short line."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", "")
        if isinstance(error, list) and error and isinstance(error[0], dict):
            error = error[0].get("msg", "")
        text = error if isinstance(error, str) else ""
    line = " ".join(printable(text).split())
    if len(line) > MAX_SERVER_TEXT:
        line = line[: MAX_SERVER_TEXT - 1] + "…"
    return line


def status_error(server: str, status: int, body: bytes, model: str, had_key: bool) -> RemoteError:
    """The error for an HTTP status of 400 or more from ``server``."""
    said = server_text(body)
    detail = f": {said}" if said else ""
    if status in (401, 403):
        if had_key:
            return RemoteAuthError(
                f"{server} refused the API key (HTTP {status}): check the key of this connection."
            )
        return RemoteAuthError(
            f"{server} needs an API key (HTTP {status}): add one to this connection."
        )
    if status == 404:
        return RemoteModelError(
            f"{server} has no model named {printable(model[:100])!r} (HTTP 404){detail}."
        )
    if status == 429:
        return RemoteServerError(f"{server} is busy (HTTP 429): try again in a moment.")
    if status >= 500:
        return RemoteServerError(f"{server} failed with a server error (HTTP {status}){detail}.")
    return RemoteServerError(f"{server} refused the request (HTTP {status}){detail}.")
