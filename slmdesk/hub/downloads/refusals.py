"""How a download answers a Hub that misbehaves: wrong sizes, refusals, rate limits, failures.

Each rule turns one kind of hostile or broken answer into a bounded reaction, so no Hub can keep
a download busy forever: a size that disagrees with the listing gets one fresh attempt and then
stops the download; a refusal (404 and most other 4xx) stops it at once; a rate limit is waited
out only as long as `DownloadOptions.max_retry_after` allows; a failing Hub (5xx) is retried a
few times with backoff. The messages say what happened, never that a download "will resume"
when nothing will resume it by itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from slmdesk.common.format import human_duration
from slmdesk.hub.downloads.status import DownloadError
from slmdesk.hub.listing import HubServerError, RemoteFile

# Statuses worth trying again: a request timeout, a rate limit, and any server error.
_TIMEOUT = 408
_RATE_LIMITED = 429


class SizeMismatch(Exception):
    """The Hub sends a different number of bytes than it listed for the file.

    Args:
        sent: what it sends, for the message: a byte count such as ``"1,234"``, or ``"more"``.
    """

    def __init__(self, sent: str) -> None:
        super().__init__(f"the Hub sends {sent} bytes")
        self.sent = sent


def size_mismatch_error(file: RemoteFile, sent: str) -> DownloadError:
    """The final error once a fresh attempt met the same wrong size (not retryable: the Hub lies)."""
    return DownloadError(
        f"The Hub lists {file.size_bytes:,} bytes for {file.filename} but sends {sent}: the "
        "download was stopped and the partial file removed.",
        retryable=False,
    )


def content_range_total(header: str | None) -> int | None:
    """The complete length in a ``Content-Range`` header (``bytes 0-9/10`` or ``bytes */10``)."""
    match = re.fullmatch(r"\s*bytes\s+(?:\d+-\d+|\*)/(\d+)\s*", header or "")
    return int(match.group(1)) if match else None


def check_declared_size(
    file: RemoteFile, status: int, start: int, headers: Mapping[str, str]
) -> None:
    """Refuse an answer whose headers already announce a size other than the listed one.

    Args:
        file: the file as the Hub listed it.
        status: 200 (the whole file) or 206 (from ``start``).
        start: the first byte this answer carries.
        headers: the response headers.

    Raises:
        SizeMismatch: ``Content-Range`` or ``Content-Length`` disagree with the listing.
    """
    if status == 206:
        total = content_range_total(headers.get("Content-Range"))
        if total is not None and total != file.size_bytes:
            raise SizeMismatch(f"{total:,}")
    length = headers.get("Content-Length")
    if length is not None and str(length).strip().isdigit():
        end = start + int(length)
        if end != file.size_bytes:
            raise SizeMismatch(f"{end:,}")


def is_refusal(exc: HubServerError) -> bool:
    """Whether the Hub refused for good (404 and other 4xx, except a timeout or rate limit)."""
    status = exc.status
    return status is not None and 400 <= status < 500 and status not in (_TIMEOUT, _RATE_LIMITED)


def is_rate_limit(exc: HubServerError) -> bool:
    """Whether the Hub asked to slow down (429)."""
    return exc.status == _RATE_LIMITED


def is_server_failure(exc: HubServerError) -> bool:
    """Whether the Hub itself failed (5xx)."""
    return exc.status is not None and exc.status >= 500


def refusal_error(file: RemoteFile, status: int) -> DownloadError:
    """A 4xx that trying again cannot fix; the partial file is removed by the caller."""
    if status in (404, 410):
        return DownloadError(
            f"{file.filename} is no longer on the Hub (HTTP {status}): the download was stopped; "
            "refresh the file list to see what the repository offers now.",
            retryable=False,
        )
    return DownloadError(
        f"The Hub refused to send {file.filename} (HTTP {status}): the download was stopped.",
        retryable=False,
    )


def rate_limit_error(file: RemoteFile, wait: float | None) -> DownloadError:
    """The Hub is still rate-limiting after the waits allowed, or asks for a longer wait."""
    when = f"in {human_duration(wait)}" if wait else "later"
    return DownloadError(
        f"The Hub is rate-limiting downloads of {file.filename}: the download was stopped; "
        f"retry {when} (the bytes already downloaded are kept).",
        retryable=True,
    )


def server_failure_error(file: RemoteFile, status: int | None, attempts: int) -> DownloadError:
    """The Hub kept answering with server errors."""
    return DownloadError(
        f"The Hub is failing (HTTP {status}, {attempts} attempts) for {file.filename}: the "
        "download was stopped; retry later (the bytes already downloaded are kept).",
        retryable=True,
    )
