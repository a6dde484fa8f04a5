"""Addresses of OpenAI-compatible servers: checked once, then used as an API base.

A user types ``http://host:8080``, ``http://host:8080/`` or ``http://host:8080/v1``; every
server slmdesk talks to (llama-server, vLLM, Ollama, LM Studio, ``slmdesk serve``) serves the API
under ``/v1``, so a bare address gets ``/v1`` added. Any other path is kept as typed, for proxies
that mount the API elsewhere. Only http and https are accepted: a ``file:`` or ``javascript:``
address typed or pasted into the connection list is refused with a sentence.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from slmdesk.common.errors import SlmdeskError
from slmdesk.common.format import printable

MAX_URL_CHARS = 2048


class EndpointError(SlmdeskError):
    """A server address that is not an http(s) URL."""


def api_base(url: str) -> str:
    """The API base for ``url`` (``scheme://host[:port]/…/v1``, no trailing slash).

    Raises:
        EndpointError: not an http(s) URL with a host, or absurdly long.
    """
    text = url.strip()
    shown = printable(text[:80])
    if not text:
        raise EndpointError("The server address is empty: type one such as http://host:8080.")
    if len(text) > MAX_URL_CHARS:
        raise EndpointError(f"The server address is longer than {MAX_URL_CHARS} characters.")
    if any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise EndpointError(f"The server address {shown!r} contains spaces or control characters.")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError:
        raise EndpointError(f"The server address {shown!r} is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise EndpointError(
            f"The server address {shown!r} must start with http:// or https://."
        ) from None
    if not parts.hostname:
        raise EndpointError(f"The server address {shown!r} has no host name.")
    if parts.username or parts.password:
        raise EndpointError(
            "Put the API key in the key field, not in the server address (user:password@)."
        )
    del port
    path = parts.path.rstrip("/")
    if not path:
        path = "/v1"
    return urlunsplit((parts.scheme.lower(), parts.netloc, path, "", ""))


def server_label(url: str) -> str:
    """A short name for a server in messages: ``host:port`` (printable)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.netloc or url
    except ValueError:
        host = url
    return printable(host[:100])


MAX_KEY_CHARS = 1024


def check_api_key(key: str) -> str:
    """``key`` stripped; empty means no key.

    Raises:
        EndpointError: the key holds spaces or control characters (it goes into a header), or
            is absurdly long. The key itself is never part of the message.
    """
    key = key.strip()
    if len(key) > MAX_KEY_CHARS:
        raise EndpointError(f"The API key is longer than {MAX_KEY_CHARS} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ord(ch) > 126 for ch in key):
        raise EndpointError("The API key must be one word of plain ASCII characters, no spaces.")
    return key
