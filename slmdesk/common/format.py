"""Human-readable numbers and untrusted text made safe to show, for the window and the command line."""

from __future__ import annotations

import unicodedata


def human_size(n_bytes: float | None) -> str:
    """``253.1 MB`` style sizes (decimal units, as file managers show)."""
    if n_bytes is None:
        return "-"
    value = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def human_count(n: float | None) -> str:
    """``268M`` style parameter counts."""
    if not n:
        return "-"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(int(n))


def human_duration(seconds: float) -> str:
    """``1 h 02 min`` / ``3 min 05 s`` / ``12 s`` style durations."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def printable(text: str, keep_newlines: bool = False) -> str:
    """``text`` with every control character shown as a visible escape such as ``\\x1b``.

    Names and descriptions from the Hub are written by strangers: an ANSI escape could recolour
    or rewrite the terminal, a bidi override (U+202E) could make ``evil.exe`` read as something
    else, a lone surrogate could crash the print. Escaping rather than deleting keeps two hostile
    names distinct and shows that something odd is there.

    Args:
        text: the untrusted text.
        keep_newlines: keep line breaks and tabs (for multi-line text such as a model card).
    """
    out = []
    for ch in text:
        if keep_newlines and ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) in _INVISIBLE:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code <= 0xFF
                else f"\\u{code:04x}"
                if code <= 0xFFFF
                else f"\\U{code:08x}"
            )
        else:
            out.append(ch)
    return "".join(out)
