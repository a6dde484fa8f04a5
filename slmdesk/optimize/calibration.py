"""The calibration text of an optimize run: the built-in set, or the user's own file.

Why a set of chunks: the importance matrix and the pruning plan measure what the model does on this
text, so it should show the kinds of text the model will meet (prose, dialogue, lists, code,
questions), each measured as its own chunk. The quality report uses a different, held-out text
(`slmdesk.optimize.evaluate.default_text`); a test checks that the two share no 8-word sequence.
"""

from __future__ import annotations

from pathlib import Path

from slmdesk.common.errors import SlmdeskError

CALIBRATION_FOLDER = "calibration"


def builtin_chunks() -> list[str]:
    """The shipped calibration set (``resources/calibration/*.txt``), one text per file, in name
    order."""
    from slmdesk.common.resources import resource_path

    folder = resource_path(CALIBRATION_FOLDER)
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise SlmdeskError("The shipped calibration texts are missing: reinstall slmdesk.")
    return [_read(path) for path in files]


def calibration_chunks(path: Path | None = None) -> list[str]:
    """The user's file as one chunk, or the built-in set when ``path`` is None."""
    return [_read(Path(path))] if path is not None else builtin_chunks()


def calibration_text(path: Path | None = None) -> str:
    """The calibration chunks as one text (what the importance matrix reads)."""
    return "\n\n".join(calibration_chunks(path))


# The pruning plan scores every candidate on its text, so its time grows with the text: the
# whole set (13 KB) made a 2-block plan of Gemma 3 270M take about an hour on 2 busy cores. It
# reads the start of every chunk instead, about 1,200 tokens in all, so each kind of text counts.
PLAN_TEXT_CHARS = 4800


def plan_text(path: Path | None = None, budget: int = PLAN_TEXT_CHARS) -> str:
    """The calibration text the pruning plan scores: the start of each chunk, cut at a line or
    sentence end, ``budget`` characters in all."""
    chunks = calibration_chunks(path)
    share = max(1, budget // len(chunks))
    return "\n\n".join(_start_of(chunk, share) for chunk in chunks)


def _start_of(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text.strip()
    head = text[:limit]
    for mark in ("\n", ". ", "? ", "! ", " "):
        cut = head.rfind(mark)
        if cut > limit // 2:
            return head[: cut + len(mark)].strip()
    return head.strip()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SlmdeskError(f"{path.name} is not UTF-8 text.") from None
    except OSError as exc:
        raise SlmdeskError(f"Cannot read {path}: {exc.strerror or exc}.") from None
