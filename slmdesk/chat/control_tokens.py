"""Remove a model's control-token markers (``<start_of_image>``, ``<|im_end|>``) from shown text.

Small models sometimes write the text of a marker token into a reply. Those markers mean nothing
to a reader, so the prose of a reply is shown without them. Inline code spans (`` `...` ``) are
left untouched: a model explaining a prompt format there means the marker literally. Fenced code
blocks are the caller's to skip (the chat view splits them off first).

Why a pattern and not the model's vocabulary: the engine already drops tokens typed CONTROL
(their pieces are rendered without special tokens). What still leaks is typed USER_DEFINED, and
Gemma 3 gives that type to ``<start_of_image>`` and ``[multimodal]`` as well as to ``<b>``,
``<code>`` and ``<table>``, which a reply uses legitimately. So only marker shapes that no prose
or HTML uses are removed: ``<|name|>`` (ChatML, Llama 3, Phi), ``<start_of_x>`` / ``<end_of_x>``
(Gemma) and a short list of well-known names.
"""

from __future__ import annotations

import re

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
# An inline code span: a run of backticks, then anything up to a run of the same length.
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)


def strip_control_tokens(text: str) -> str:
    """``text`` without control-token markers outside inline code spans.

    Args:
        text: Prose of a reply (Markdown, without fenced code blocks).

    Returns:
        The text with every marker removed; code spans and everything else unchanged.
    """
    if "<" not in text:
        return text  # the common case costs one scan
    pieces: list[str] = []
    position = 0
    for span in _CODE_SPAN.finditer(text):
        pieces.append(_MARKER.sub("", text[position : span.start()]))
        pieces.append(span.group(0))
        position = span.end()
    pieces.append(_MARKER.sub("", text[position:]))
    return "".join(pieces)
