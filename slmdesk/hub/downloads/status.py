"""What a download is doing, as every part of the download code and its callers see it.

The states, the errors a download can end with, and the `DownloadStatus` snapshot handed to
progress callbacks. No I/O here: these are plain values shared by the store, the transfer, the
job and the manager.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slmdesk.common.errors import SlmdeskError


class State(enum.StrEnum):
    """Where a download is. ``done``, ``failed`` and ``cancelled`` are final."""

    QUEUED = "queued"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATES = frozenset({State.QUEUED, State.DOWNLOADING, State.VERIFYING})


class DownloadError(SlmdeskError):
    """A download failed; ``retryable`` says whether Retry may help."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class VerificationError(DownloadError):
    """The downloaded bytes are not the file the Hub listed (it was deleted)."""


class DiskFullError(DownloadError):
    """The disk filled up while writing; retrying before space is freed cannot help."""


class DownloadStopped(SlmdeskError):
    """The download was paused or cancelled by the user."""

    def __init__(self, cancelled: bool) -> None:
        super().__init__("Download cancelled." if cancelled else "Download paused.")
        self.cancelled = cancelled


def check_stop(stop: threading.Event, cancel: threading.Event) -> None:
    """Raise `DownloadStopped` when the user cancelled or paused (cancel wins).

    Raises:
        DownloadStopped: one of the events is set.
    """
    if cancel.is_set():
        raise DownloadStopped(cancelled=True)
    if stop.is_set():
        raise DownloadStopped(cancelled=False)


@dataclass(frozen=True)
class DownloadStatus:
    """A snapshot of one download, as handed to progress callbacks."""

    task_id: str
    repo_id: str
    name: str
    state: State
    done_bytes: int
    total_bytes: int
    speed_bps: float = 0.0
    eta_seconds: float | None = None
    current_file: str | None = None
    error: str | None = None
    retryable: bool = True
    library_name: str | None = None  # set when done
    path: str | None = None  # the model file, when done
    duplicate_of: str | None = None  # done without a copy: the entry that held these bytes

    @property
    def fraction(self) -> float:
        """Share done, 0..1."""
        return self.done_bytes / self.total_bytes if self.total_bytes else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``pull --json`` contract)."""
        return {
            "task_id": self.task_id,
            "repo_id": self.repo_id,
            "name": self.name,
            "state": self.state.value,
            "done_bytes": self.done_bytes,
            "total_bytes": self.total_bytes,
            "speed_bps": self.speed_bps,
            "eta_seconds": self.eta_seconds,
            "current_file": self.current_file,
            "error": self.error,
            "retryable": self.retryable,
            "library_name": self.library_name,
            "path": self.path,
            "duplicate_of": self.duplicate_of,
        }


ProgressCallback = Callable[[DownloadStatus], None]
