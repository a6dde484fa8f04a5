"""Printing helpers shared by the sub-commands: JSON, tables, sizes, progress bars."""

from __future__ import annotations

import json
import sys
import time
import unicodedata
from collections.abc import Sequence
from typing import Any, TextIO

from slmdesk.common.format import human_count, human_size

__all__ = [
    "MAX_ERROR_CHARS",
    "ProgressBar",
    "human_count",
    "human_size",
    "one_line",
    "print_json",
    "print_table",
]

# An error line stays readable in a terminal and a log: longer messages are shortened in the
# middle (the start says what failed, the end often says what to do).
MAX_ERROR_CHARS = 300


def one_line(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``message`` as one printable line of at most ``limit`` characters.

    Messages can quote what the user typed (a name, a path, an environment value), so line
    breaks, terminal escapes and other control characters are replaced by spaces and a very long
    message is shortened in the middle with "...": one ``error:`` line can never become many or drive
    the terminal.
    """
    printable = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in message
    )
    text = " ".join(printable.split())
    if len(text) <= limit:
        return text
    head = (limit - 3) * 2 // 3
    tail = limit - 3 - head
    return text[:head] + "..." + text[len(text) - tail :]


def print_json(value: Any, stream: TextIO | None = None) -> None:
    """Print ``value`` as indented JSON (paths and other objects become strings)."""
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str), file=stream or sys.stdout)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned text table."""
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


class ProgressBar:
    """A one-line terminal progress bar that redraws at most 10 times a second.

    Prints nothing when the stream is not a terminal, except the final line.
    """

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._started = time.monotonic()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, done: int, total: int, detail: str = "") -> None:
        """Redraw for ``done`` of ``total`` units."""
        now = time.monotonic()
        if not self._tty or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        frac = done / total if total else 0.0
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r{self.label} [{bar:<30}] {frac * 100:5.1f}% {detail}\x1b[K")
        self.stream.flush()

    def finish(self, message: str = "") -> None:
        """End the line, with a closing message."""
        elapsed = time.monotonic() - self._started
        end = f"{self.label}: {message or 'done'} ({elapsed:.1f} s)"
        self.stream.write(("\r" + end + "\x1b[K\n") if self._tty else end + "\n")
        self.stream.flush()
