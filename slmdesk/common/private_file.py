"""Owner-only files for secrets (the Hub token, the server's API key, remote servers' keys).

One way to write them, so no secret is ever readable by others, not even for a moment: the
temporary file is created with mode 0600 from the start (never created wider and narrowed
later), fsynced, then renamed over the target, so a reader sees the old or the new file, never
half. Reads are bounded: a secret file is small, and a huge one is refused with a sentence
instead of being read into memory.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from slmdesk.common.errors import SlmdeskError
from slmdesk.common.fileio import replace_from_temp

log = logging.getLogger(__name__)

PRIVATE_MODE = 0o600
MAX_PRIVATE_BYTES = 1024 * 1024
"""Far above any token or key list slmdesk writes (200 connections with long keys fit)."""


class PrivateFileError(SlmdeskError):
    """A private file cannot be read as what it should be (too large, not text)."""


def write_private_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) in a file only its owner can read or write.

    Raises:
        OSError: the folder or the file cannot be written (the old file is left as it was).
    """
    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    replace_from_temp(os.open(tmp, flags, PRIVATE_MODE), tmp, path, data)


def read_private_text(path: Path, max_bytes: int = MAX_PRIVATE_BYTES) -> str:
    """The text of ``path``, read no further than ``max_bytes``.

    Raises:
        OSError: the file is missing or cannot be read.
        PrivateFileError: it is larger than ``max_bytes`` or is not UTF-8 text.
    """
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PrivateFileError(f"{path} is larger than {max_bytes} bytes, so it was not read.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PrivateFileError(f"{path} is not UTF-8 text, so it was not read.") from None


def write_failure(what: str, path: Path, exc: OSError) -> str:
    """The sentence for a secret that could not be saved: ``Cannot save WHAT to PATH: why.``"""
    reason = (exc.strerror or type(exc).__name__).lower()
    return f"Cannot save {what} to {path}: {reason}."


def load_secret(path: Path, max_bytes: int = MAX_PRIVATE_BYTES) -> str | None:
    """The stripped text of a one-line secret file, or None when there is none to use.

    A missing or unreadable file means no secret; an over-large or non-text one too, with a
    warning in the log (its sentence names the file, never its contents).
    """
    try:
        text = read_private_text(path, max_bytes).strip()
    except OSError:
        return None
    except PrivateFileError as exc:
        log.warning("%s", exc)
        return None
    return text or None


def save_secret(path: Path, text: str, what: str) -> None:
    """Store ``text`` in ``path``, owner-only.

    Raises:
        SlmdeskError: the file cannot be written (`write_failure`'s sentence).
    """
    try:
        write_private_text(path, text)
    except OSError as exc:
        raise SlmdeskError(write_failure(what, path, exc)) from None
