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
    """The calibration chunks as one text (what the pruning plan reads)."""
    return "\n\n".join(calibration_chunks(path))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SlmdeskError(f"{path.name} is not UTF-8 text.") from None
    except OSError as exc:
        raise SlmdeskError(f"Cannot read {path}: {exc.strerror or exc}.") from None
