"""Human-readable numbers for the UI (the same as the command line prints)."""

from __future__ import annotations

from slmdesk.common.format import human_count, human_duration, human_size

__all__ = ["human_count", "human_duration", "human_size"]
