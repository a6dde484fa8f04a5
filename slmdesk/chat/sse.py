"""Server-sent events read from a byte stream, with every line and event bounded.

Only what an OpenAI-style stream uses is kept: ``data:`` lines, joined per event. A server that
sends a line longer than `MAX_LINE_BYTES` or an event larger than `MAX_EVENT_BYTES` (no line
break for megabytes, say) is refused instead of filling memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

MAX_LINE_BYTES = 256 * 1024
MAX_EVENT_BYTES = 1024 * 1024


class SSEFormatError(ValueError):
    """The stream breaks the limits or is not text."""


def sse_data(chunks: Iterable[bytes]) -> Iterator[str]:
    """Yield the data of each event in ``chunks`` (raw bytes as they arrive)."""
    pending = b""
    data: list[str] = []
    size = 0
    for chunk in chunks:
        pending += chunk
        while True:
            cut = pending.find(b"\n")
            if cut < 0:
                break
            raw, pending = pending[:cut], pending[cut + 1 :]
            line = _decode(raw.rstrip(b"\r"))
            if not line:
                if data:
                    yield "\n".join(data)
                data, size = [], 0
                continue
            if line.startswith(":"):
                continue  # a comment (keep-alive)
            field, _, value = line.partition(":")
            if field != "data":
                continue
            value = value[1:] if value.startswith(" ") else value
            size += len(value)
            if size > MAX_EVENT_BYTES:
                raise SSEFormatError(f"an event is larger than {MAX_EVENT_BYTES // 1024} KB")
            data.append(value)
        if len(pending) > MAX_LINE_BYTES:
            raise SSEFormatError(f"a line is longer than {MAX_LINE_BYTES // 1024} KB")
    line = _decode(pending.rstrip(b"\r"))
    if line.startswith("data:"):
        value = line[5:]
        data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SSEFormatError("the stream is not UTF-8 text") from None
