"""Human-readable numbers for the UI (shared with the CLI)."""

from __future__ import annotations

from slmdesk.commands.output import human_count, human_size

__all__ = ["human_count", "human_duration", "human_size"]


def human_duration(seconds: float) -> str:
    """``1 h 02 min`` / ``3 min 05 s`` / ``12 s`` style durations."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"
