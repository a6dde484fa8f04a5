"""File names for exported chats, made from their titles and valid on every operating system.

Why: the save dialog should suggest the chat's own title, but a title is free text ("What is
a/b?", emoji, a 300-character first line) and the same export may be copied to Windows, macOS
or Linux. So the name keeps letters, digits and ordinary punctuation in any script, drops what
any of them forbids (``/\\:*?"<>|``, control and format characters), avoids Windows' reserved
device names and trailing dots or spaces, and is bounded in length (in UTF-8 bytes, which is
what most file systems limit).
"""

from __future__ import annotations

import unicodedata

__all__ = ["ALL_CHATS_NAME", "FALLBACK_NAME", "MAX_NAME_BYTES", "export_file_name"]

FALLBACK_NAME = "chat"
ALL_CHATS_NAME = "slmdesk-chats"
# Well under the usual 255-byte limit, leaving room for a suffix and a " (2)" from the dialog.
MAX_NAME_BYTES = 120
FORBIDDEN = set('/\\:*?"<>|')
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{d}{n}" for d in ("COM", "LPT") for n in range(10)}


def _stem(title: str) -> str:
    kept = []
    for char in unicodedata.normalize("NFC", title):
        category = unicodedata.category(char)
        if category == "Cf":
            continue  # invisible: bidi overrides, zero-width characters
        # forbidden, control, private, unassigned characters and separators
        forbidden = char in FORBIDDEN or category[0] == "C" or category[0] == "Z"
        kept.append(" " if forbidden else char)
    # no leading dot (a hidden file) or trailing dot/space (refused by Windows)
    stem = " ".join("".join(kept).replace("…", " ").split()).strip(" .")
    while len(stem.encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    stem = stem.rstrip(" .")
    if stem.split(".")[0].upper() in _RESERVED:
        stem = f"{stem} chat"
    return stem


def export_file_name(title: str | None, suffix: str = ".md") -> str:
    """A file name for exporting the chat called ``title``: ``<clean title><suffix>``.

    Falls back to ``chat`` when nothing usable is left of the title.
    """
    return (_stem(title or "") or FALLBACK_NAME) + suffix
