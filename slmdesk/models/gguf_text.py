"""Text from model files made safe for messages: short, one line, no terminal escape codes.

Anything read from a GGUF file can hold escape sequences that would rewrite the user's terminal,
or be megabytes long. Every message `gguf_info` and `gguf_checks` build quotes file text through
`printable`/`quoted` and is capped by `one_sentence`.
"""

from __future__ import annotations

import re
import unicodedata

from slmdesk.common.errors import InvalidModelError

# Every error message stays readable on one line.
MAX_MESSAGE_CHARS = 300
_ESCAPE_RE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(\x07|\x1b\\)?|.?)", re.DOTALL)


def printable(text: object, limit: int = 60) -> str:
    """``text`` made safe to show: no terminal escape codes or control characters, at most ``limit`` characters.

    Anything read from a model file can hold escape sequences that would rewrite the user's
    terminal, or be megabytes long; it goes through here before it reaches a message.
    """
    raw = str(text)[: limit * 4 + 16]  # bound the work before cleaning
    raw = _ESCAPE_RE.sub("?", raw)
    cleaned = "".join(
        "?" if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") else ch
        for ch in raw
    )
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def quoted(text: object, limit: int = 60) -> str:
    """``text`` as a short, safe, quoted name for a message: ``'blk.0.attn_q.weight'``."""
    return "'" + printable(text, limit) + "'"


def one_sentence(message: str) -> str:
    """Cap a message at `MAX_MESSAGE_CHARS` on one line (a last guard against huge messages)."""
    flat = " ".join(message.split())
    if len(flat) <= MAX_MESSAGE_CHARS:
        return flat
    return flat[: MAX_MESSAGE_CHARS - 1].rstrip() + "…"


def invalid(message: str) -> InvalidModelError:
    """An `InvalidModelError` whose message is bounded (see `one_sentence`)."""
    return InvalidModelError(one_sentence(message))
