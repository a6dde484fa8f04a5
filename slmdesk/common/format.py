"""Human-readable numbers, shared by the window and the command line."""

from __future__ import annotations


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
