"""Remove a model's control tokens (``<start_of_image>``, ``<|im_end|>``) from text shown to a user.

Small models sometimes write the text of a marker token into a reply. Those markers mean nothing
to a reader, so the prose of a reply is shown without them. Inline code spans (`` `...` ``) are
left untouched: a model explaining a prompt format there means the marker literally. Fenced code
blocks are the caller's to skip (the chat view splits them off first).

Only marker shapes no prose or HTML uses are removed: ``<|name|>`` (ChatML, Llama 3, Phi),
``<start_of_x>`` / ``<end_of_x>`` (Gemma) and a short list of well-known names. A model's own
vocabulary may add exact marker texts (``extra``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_KNOWN_NAMES = (
    "bos",
    "eos",
    "pad",
    "unk",
    "mask",
    "image_soft_token",
    "audio_soft_token",
)
_MARKER = re.compile(
    r"<\|[A-Za-z0-9_.:-]{1,40}\|>"
    r"|</?(?:start|end)_of_[a-z_]{1,24}>"
    r"|<(?:" + "|".join(_KNOWN_NAMES) + r")>"
)
# An inline code span: a run of backticks, then anything up to the same run (CommonMark).
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
_MAX_EXTRA_LENGTH = 64


def _extra_pattern(extra: Iterable[str]) -> re.Pattern[str] | None:
    markers = sorted(
        {m for m in extra if m and len(m) <= _MAX_EXTRA_LENGTH and not m.isspace()},
        key=len,
        reverse=True,  # the longest first, so a marker inside another is not matched alone
    )
    if not markers:
        return None
    return re.compile("|".join(re.escape(m) for m in markers))


def strip_control_tokens(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` without control-token markers outside inline code spans.

    Args:
        text: Prose of a reply (Markdown, without fenced code blocks).
        extra: Exact marker texts the model's vocabulary declares as control tokens.

    Returns:
        The text with every marker removed; code spans and everything else unchanged.
    """
    if "<" not in text and not extra:
        return text  # the common case costs one scan
    extra_pattern = _extra_pattern(extra)

    def clean(part: str) -> str:
        part = _MARKER.sub("", part)
        return extra_pattern.sub("", part) if extra_pattern is not None else part

    pieces: list[str] = []
    position = 0
    for span in _CODE_SPAN.finditer(text):
        pieces.append(clean(text[position : span.start()]))
        pieces.append(span.group(0))
        position = span.end()
    pieces.append(clean(text[position:]))
    return "".join(pieces)
