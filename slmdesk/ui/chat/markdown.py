"""Split a reply into prose and fenced code blocks, so code gets its own widget and Copy button.

An unclosed fence (a reply still streaming) counts as code up to the end of the text; its segment
says so (``closed`` is False), so the view can leave colouring until the block is complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^(```|~~~)\s*([\w+#.-]*)\s*$")


@dataclass(frozen=True)
class Segment:
    """A run of Markdown prose (``kind == "text"``) or one code block (``kind == "code"``)."""

    kind: str
    text: str
    language: str = ""
    closed: bool = True  # False for a code block whose closing fence has not arrived yet


def split_segments(text: str) -> list[Segment]:
    """The segments of ``text`` in order; empty prose between blocks is dropped."""
    segments: list[Segment] = []
    prose: list[str] = []
    code: list[str] = []
    fence: str | None = None
    language = ""
    for line in text.split("\n"):
        match = _FENCE.match(line.strip())
        if fence is None and match:
            if "".join(prose).strip():
                segments.append(Segment("text", "\n".join(prose).strip("\n")))
            prose = []
            fence, language = match.group(1), match.group(2)
            continue
        if fence is not None and line.strip() == fence:
            segments.append(Segment("code", "\n".join(code), language))
            code = []
            fence = None
            continue
        (code if fence is not None else prose).append(line)
    if fence is not None:
        segments.append(Segment("code", "\n".join(code), language, closed=False))
    elif "".join(prose).strip():
        segments.append(Segment("text", "\n".join(prose).strip("\n")))
    return segments
