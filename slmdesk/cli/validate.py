"""Checks of command-line values, before any work starts.

Numbers are checked by argparse ``type=`` functions, so a bad one is a usage error (exit 2) with
a sentence that names the allowed range. Names and environment values are checked by functions
that raise `SlmdeskError` (exit 1, one line). None of the messages repeats a long or
control-character-laden value back to the terminal: they describe it instead.
"""

from __future__ import annotations

import argparse
import os
import unicodedata
from collections.abc import Callable
from urllib.parse import urlsplit

from slmdesk.common.errors import SlmdeskError

# A model file is NAME.gguf, written first as a hidden ".NAME.gguf.partial-PID" with a
# ".meta.tmp" beside it: 200 bytes of name keeps all of them under the usual 255-byte limit.
MAX_NAME_CHARS = 120
MAX_NAME_BYTES = 200
# Longest library name or path accepted as MODEL (PATH_MAX on Linux is 4096 bytes).
MAX_MODEL_REF_CHARS = 4096
# More threads than this only slows llama.cpp down; far more exhausts the process.
THREADS_PER_CPU = 4
# Context lengths: llama.cpp models top out at about a million tokens today.
MAX_CONTEXT = 1 << 21
MAX_REPLY_TOKENS = 1 << 20
# Hub repository ids are "owner/name", each part at most 96 characters.
MAX_REPO_CHARS = 200
# Characters refused in a name that becomes a file name on one of the supported systems.
_FILE_NAME_FORBIDDEN = set('/\\:*?"<>|')


def max_threads() -> int:
    """The most CPU threads a command accepts: a few per logical CPU of this machine."""
    return THREADS_PER_CPU * (os.cpu_count() or 1)


def _whole_number(text: str) -> int:
    try:
        return int(text.strip().replace("_", ""), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {describe_value(text)}"
        ) from None


def bounded_int(low: int, high: int | Callable[[], int], what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (inclusive).

    Args:
        low: the smallest accepted value.
        high: the largest, or a function giving it (read when the argument is parsed).
        what: the unit named in the message, such as ``"tokens"``.
    """

    def parse(text: str) -> int:
        value = _whole_number(text)
        top = high() if callable(high) else high
        if not low <= value <= top:
            raise argparse.ArgumentTypeError(f"must be from {low:,} to {top:,} {what}")
        return value

    return parse


def positive_int(what: str, high: int = 1 << 31) -> Callable[[str], int]:
    """An argparse type: a whole number of at least 1 (and at most ``high``)."""
    return bounded_int(1, high, what)


thread_count = bounded_int(1, max_threads, "threads (a few per CPU of this computer)")
context_length = positive_int("tokens", MAX_CONTEXT)
reply_tokens = positive_int("tokens", MAX_REPLY_TOKENS)
seed_value = bounded_int(-1, (1 << 32) - 1, "(-1 draws a new seed each time)")


def describe_value(text: str, limit: int = 40) -> str:
    """A short, printable stand-in for a value the user typed (for messages)."""
    if len(text) > limit or has_control_characters(text):
        return f"a {len(text):,}-character value" + (
            " with control characters" if has_control_characters(text) else ""
        )
    return repr(text)


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds newlines, escapes or other invisible control characters."""
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def check_model_name(name: str, option: str = "--name") -> str:
    """A library name the user chose, checked so it can also be a file name everywhere.

    Returns:
        The name without surrounding spaces.

    Raises:
        SlmdeskError: empty, too long, or holding control characters or path separators.
    """
    clean = name.strip()
    if not clean:
        raise SlmdeskError(f"{option} cannot be empty.")
    if has_control_characters(clean):
        raise SlmdeskError(
            f"{option} cannot contain line breaks, tabs or other control characters."
        )
    if any(unicodedata.category(ch) == "Cs" for ch in clean):  # bytes that are not UTF-8
        raise SlmdeskError(f"{option} must be readable text (it holds bytes that are not UTF-8).")
    if len(clean) > MAX_NAME_CHARS or len(clean.encode("utf-8")) > MAX_NAME_BYTES:
        raise SlmdeskError(
            f"{option} is too long ({len(clean):,} characters); use at most {MAX_NAME_CHARS}."
        )
    bad = sorted(_FILE_NAME_FORBIDDEN.intersection(clean))
    if bad:
        raise SlmdeskError(
            f"{option} cannot contain {' '.join(bad)} (a model name is also its file name)."
        )
    if clean.startswith("."):
        raise SlmdeskError(f"{option} cannot start with a dot (that would hide the file).")
    return clean


def check_model_ref(text: str) -> str:
    """A MODEL argument (library name or file path), checked before it reaches the disk.

    Raises:
        SlmdeskError: too long to be a name or path, or holding control characters.
    """
    if not text.strip():
        raise SlmdeskError("No model given: name one from the library or a .gguf file.")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_MODEL_REF_CHARS:
        raise SlmdeskError(
            f"The model name or path is {len(text):,} characters long: too long for either "
            "(see `slmdesk models list`)."
        )
    if has_control_characters(text):
        raise SlmdeskError(
            "The model name or path contains line breaks or other control characters."
        )
    return text


def check_repo_ref(text: str) -> str:
    """A REPO argument, checked for length and control characters before it is sent anywhere.

    Raises:
        SlmdeskError: too long to be ``owner/name``, or holding control characters.
    """
    if len(text) > MAX_REPO_CHARS or has_control_characters(text):
        raise SlmdeskError(
            f"{describe_value(text)} is not a Hub repository name (expected owner/name)."
        )
    return text


def check_hub_endpoint() -> None:
    """``HF_ENDPOINT``, when set, must be an http(s) address with a host (and a valid port).

    Raises:
        SlmdeskError: the variable is set to something that is not a web address.
    """
    value = os.environ.get("HF_ENDPOINT", "").strip()
    if not value:
        return
    example = "such as https://huggingface.co"
    if has_control_characters(value) or any(ch.isspace() for ch in value):
        raise SlmdeskError(
            f"HF_ENDPOINT contains spaces or control characters; set it to a web address {example}."
        )
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise SlmdeskError(
            f"HF_ENDPOINT is {describe_value(value, 80)}, which is not a web address {example}."
        )
