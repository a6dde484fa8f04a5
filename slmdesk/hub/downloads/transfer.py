"""One file's bytes: HEAD, ranged GET resumed from the partial file, retries, size and hash check.

HTTP goes through huggingface_hub's shared session (TLS verification on, its headers and offline
switch): a ``HEAD`` on the ``resolve`` URL gives the signed location, size and hash, then a
streamed ``GET`` with ``Range`` fetches the missing bytes. The token is sent to the Hub only, never
to the CDN it redirects to, and is never logged.

Errors are mapped where they happen: Hub and network errors only around the HTTP calls (so a
network cut is retried with backoff), disk errors only around the file writes (so a full disk
says so and is not retried: writing again cannot succeed until space is freed). What a Hub that
lies or refuses gets in return (a wrong size, 4xx, 429, 5xx) is decided in `refusals`; nothing
is ever written past the listed size.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from slmdesk.hub.downloads.refusals import (
    SizeMismatch,
    check_declared_size,
    content_range_total,
    is_rate_limit,
    is_refusal,
    is_server_failure,
    rate_limit_error,
    refusal_error,
    server_failure_error,
    size_mismatch_error,
)
from slmdesk.hub.downloads.status import (
    DiskFullError,
    DownloadError,
    VerificationError,
    check_stop,
)
from slmdesk.hub.listing import (
    HubOfflineError,
    HubServerError,
    RemoteFile,
    file_url,
    hub_endpoint,
    hub_errors,
    url_origin,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 30.0  # a stalled connection is retried after this long
DEFAULT_RETRIES = 6
DEFAULT_BACKOFF = 1.0  # seconds, doubled per consecutive failure, capped at MAX_BACKOFF
MAX_BACKOFF = 30.0
DEFAULT_SERVER_RETRIES = 4  # a failing Hub gets about 1 + 2 + 4 + 8 s to recover
MAX_RETRY_AFTER = 60.0  # a Hub asking for a longer pause is reported, not waited for
PROGRESS_INTERVAL = 0.1  # seconds between progress callbacks
SPEED_WINDOW = 3.0  # seconds of history behind the speed figure
_HASH_BATCH = 1 << 20  # bytes handed to the hashing thread at once (fewer wake-ups)
_HASH_QUEUE = 8  # batches waiting to be hashed: at most ~8 MiB in memory
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass
class DownloadOptions:
    """Tuning knobs (tests and the benchmark shorten the waits)."""

    retries: int = DEFAULT_RETRIES  # network failures in a row without progress
    backoff: float = DEFAULT_BACKOFF
    read_timeout: float = READ_TIMEOUT
    server_retries: int = DEFAULT_SERVER_RETRIES  # 5xx/429 answers in a row before stopping
    max_retry_after: float = MAX_RETRY_AFTER  # the longest rate-limit wait honoured, seconds


class Meter:
    """Bytes done, speed over a sliding window, ETA; throttles progress callbacks."""

    def __init__(self, total: int, done: int) -> None:
        self.total = total
        self.done = done
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._samples.append((time.monotonic(), done))
        self._last_emit = 0.0

    def add(self, n: int) -> None:
        """Count ``n`` more bytes (negative when bytes on disk were thrown away)."""
        self.done += n

    def speed(self) -> float:
        """Bytes per second over the last `SPEED_WINDOW` seconds."""
        now = time.monotonic()
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW:
            self._samples.popleft()
        t0, b0 = self._samples[0]
        return (self.done - b0) / (now - t0) if now > t0 else 0.0

    def due(self) -> bool:
        """Whether enough time passed since the last progress callback for another."""
        now = time.monotonic()
        if now - self._last_emit >= PROGRESS_INTERVAL:
            self._last_emit = now
            return True
        return False


class _Hasher:
    """SHA-256 (LFS files) or the git blob id (small files) of the bytes, as they arrive.

    Hashing runs on a helper thread (``slmdesk-download-hash``) fed in 1 MiB batches through a
    small bounded queue: hashlib releases the GIL, so the digest is computed while the next bytes
    are read from the network, and at most ``_HASH_QUEUE`` batches wait in memory.
    """

    def __init__(self, file: RemoteFile) -> None:
        self.file = file
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=_HASH_QUEUE)
        self._thread: threading.Thread | None = None
        self._batch: list[bytes] = []
        self._batched = 0
        self._h = self._new()

    def _new(self) -> Any:
        if self.file.sha256:
            return hashlib.sha256()
        return hashlib.sha1(b"blob %d\0" % self.file.size_bytes)

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            for piece in batch:
                self._h.update(piece)

    def _flush(self) -> None:
        if self._batch:
            self._queue.put(self._batch)
            self._batch = []
            self._batched = 0

    def _drain(self) -> None:
        if self._thread is not None:
            self._flush()
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def reset(self) -> None:
        """Start again from the first byte."""
        self._drain()
        self._h = self._new()

    def update(self, data: bytes) -> None:
        """Add the next bytes."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="slmdesk-download-hash", daemon=True
            )
            self._thread.start()
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= _HASH_BATCH:
            self._flush()

    def matches(self) -> bool:
        """Whether all bytes so far hash to the Hub's value."""
        self._drain()
        expected = self.file.sha256 or self.file.blob_id
        return bool(expected) and self._h.hexdigest() == str(expected).lower()

    def close(self) -> None:
        """Stop the helper thread (idempotent)."""
        self._drain()

    def catch_up(self, path: Path, length: int) -> None:
        """Hash the first ``length`` bytes already on disk (after a restart)."""
        self._drain()
        with open(path, "rb") as handle:
            left = length
            while left > 0:
                block = handle.read(min(left, 8 << 20))
                if not block:
                    break
                self._h.update(block)
                left -= len(block)


class _PartialFile:
    """The ``*.incomplete`` file being written; disk errors become one clear sentence."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path = path
        self._handle: BinaryIO = self._guard(lambda: open(path, mode))  # noqa: SIM115

    def _guard(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except OSError as exc:
            raise _disk_error(exc, self.path) from None

    def write(self, data: bytes) -> None:
        """Append ``data``."""
        self._guard(lambda: self._handle.write(data))

    def close(self) -> None:
        """Flush and close (a full disk can first show here, as buffered bytes go out)."""
        self._guard(self._handle.close)

    def __enter__(self) -> _PartialFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
        else:
            with contextlib.suppress(OSError, DownloadError):
                self.close()  # the first error is the one worth reporting


def _disk_error(exc: OSError, path: Path) -> DownloadError:
    name = path.name.removesuffix(".incomplete")
    if exc.errno in _DISK_FULL:
        return DiskFullError(
            f"The disk is full: {name} could not be written to {path.parent}; free some space, "
            "then retry (the download resumes where it stopped).",
            retryable=True,
        )
    return DownloadError(
        f"{name} could not be written to {path.parent}: {exc.strerror or exc}.", retryable=True
    )


class _Transient(Exception):
    """A network hiccup worth retrying."""


@contextlib.contextmanager
def _transient_network() -> Iterator[None]:
    """Network errors while streaming are retried, not reported as 'offline' at once."""
    import httpx2

    try:
        yield
    except (httpx2.TransportError, httpx2.StreamError) as exc:
        raise _Transient(f"network error: {type(exc).__name__}") from None


def _pieces(resp: Any) -> Iterator[bytes]:
    """The response body in pieces; only the network reads are mapped to `_Transient`."""
    raw = resp.iter_raw()
    while True:
        with _transient_network():
            piece = next(raw, None)
        if piece is None:
            return
        yield piece


def _range_starts_at(content_range: str | None, offset: int) -> bool:
    match = re.match(r"bytes (\d+)-", content_range or "")
    return match is not None and int(match.group(1)) == offset


class FileTransfer:
    """Brings one partial file to the complete file whose size and hash the Hub listed.

    Runs on the calling thread. ``stop``/``cancel`` are checked between pieces and end the
    transfer with `DownloadStopped`; bytes already on disk stay there for the next attempt.
    """

    def __init__(
        self,
        repo_id: str,
        revision: str,
        file: RemoteFile,
        partial: Path,
        *,
        token: str | bool,
        options: DownloadOptions,
        meter: Meter,
        stop: threading.Event,
        cancel: threading.Event,
        report: Callable[[bool], None],
    ) -> None:
        self.repo_id = repo_id
        self.revision = revision
        self.file = file
        self.partial = partial
        self.token = token
        self.options = options
        self.meter = meter
        self.stop = stop
        self.cancel = cancel
        self.report = report  # report(force): a progress callback, throttled unless forced

    def run(self) -> None:
        """Download the missing bytes, retrying network failures, then verify the hash.

        Raises:
            DownloadStopped: paused or cancelled.
            VerificationError: the bytes are not the listed file (the partial file is deleted).
            DiskFullError: the disk filled up (not retried).
            DownloadError, HubError: it failed; the message says why.
        """
        size = self.file.size_bytes
        offset = self.partial.stat().st_size if self.partial.exists() else 0
        if offset > size:
            self.partial.unlink()
            self.meter.add(-size)
            offset = 0
        hasher = _Hasher(self.file)
        try:
            if offset:
                hasher.catch_up(self.partial, offset)
            self._fetch(offset, hasher)
            if not hasher.matches():
                self.partial.unlink(missing_ok=True)
                self.meter.add(-size)
                raise VerificationError(
                    f"{self.file.filename} failed verification (its SHA-256 does not match the "
                    "Hub's), so it was deleted; try the download again.",
                    retryable=True,
                )
        finally:
            hasher.close()

    def _fetch(self, offset: int, hasher: _Hasher) -> None:
        """Bring the partial file to the listed size, reacting to each kind of failure.

        Network cuts are retried with backoff (the budget refills whenever bytes arrive); a size
        that disagrees with the listing gets one fresh attempt, then stops the download; the
        Hub's HTTP errors are judged by `refusals` (refused: stop; rate-limited: wait as asked,
        within a bound; failing: back off a few times, then stop).
        """
        failures = 0  # consecutive network failures without progress
        server_failures = 0  # 429 and 5xx answers since the last progress
        fresh_retry_used = False
        while offset < self.file.size_bytes:
            check_stop(self.stop, self.cancel)
            got_before = offset
            try:
                offset = self._attempt(offset, hasher)
            except SizeMismatch as exc:
                self._discard(hasher)
                if fresh_retry_used:
                    raise size_mismatch_error(self.file, exc.sent) from None
                fresh_retry_used = True
                log.info("%s: %s; starting over once", self.file.filename, exc)
                offset = 0
                continue
            except HubServerError as exc:
                offset = self._on_disk()
                if offset > got_before:
                    server_failures = 0
                server_failures += 1
                wait = self._server_wait(exc, server_failures)
                self._pause(wait, exc)
                continue
            except (HubOfflineError, _Transient) as exc:
                # Whatever arrived before the failure is on disk and hashed: continue from there.
                offset = self._on_disk()
                if offset > got_before:
                    failures = 0
                failures += 1
                if failures > self.options.retries:
                    raise DownloadError(
                        f"The download of {self.file.filename} kept failing ({exc}); "
                        "retrying resumes it from where it stopped.",
                        retryable=True,
                    ) from None
                self._pause(self._backoff(failures), exc)
                continue
            if offset > got_before:
                failures = 0
                server_failures = 0

    def _on_disk(self) -> int:
        """Bytes in the partial file (all of them written and hashed)."""
        return self.partial.stat().st_size if self.partial.exists() else 0

    def _discard(self, hasher: _Hasher) -> None:
        """Delete the partial file and forget its bytes (hash and progress)."""
        self.meter.add(-self._on_disk())
        self.partial.unlink(missing_ok=True)
        hasher.reset()

    def _backoff(self, failures: int) -> float:
        return float(min(MAX_BACKOFF, self.options.backoff * 2 ** (failures - 1)))

    def _server_wait(self, exc: HubServerError, failures: int) -> float:
        """How long to wait before asking again after an HTTP error, or the error that ends it.

        Raises:
            DownloadError: refused for good, rate-limited beyond the allowed wait, or failing
                too often.
        """
        file = self.file
        if is_refusal(exc):
            self.meter.add(-self._on_disk())  # nothing can complete it: do not leave it
            self.partial.unlink(missing_ok=True)
            raise refusal_error(file, exc.status or 0) from None
        if is_rate_limit(exc):
            wait = exc.retry_after if exc.retry_after is not None else self._backoff(failures)
            if wait > self.options.max_retry_after or failures > self.options.server_retries:
                raise rate_limit_error(file, exc.retry_after) from None
            return wait
        if is_server_failure(exc):
            if failures > self.options.server_retries:
                raise server_failure_error(file, exc.status, failures) from None
        elif failures > self.options.retries:  # a timeout (408) or an unreadable answer
            raise DownloadError(
                f"The Hub kept failing for {file.filename} ({exc}): the download was stopped; "
                "retry later (the bytes already downloaded are kept).",
                retryable=True,
            ) from None
        wait = self._backoff(failures)
        if exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, self.options.max_retry_after))
        return wait

    def _pause(self, wait: float, exc: Exception) -> None:
        """Wait before the next attempt; a pause or cancel ends the wait at once."""
        log.info("download of %s interrupted (%s); retry in %.1f s", self.file.filename, exc, wait)
        self.report(True)
        if self.stop.wait(wait) or self.cancel.is_set():
            check_stop(self.stop, self.cancel)

    def _check_metadata(self, url: str, endpoint: str) -> str:
        """HEAD the file: refuse a changed file; returns where to GET the bytes."""
        from huggingface_hub import get_hf_file_metadata

        file = self.file
        with hub_errors(self.repo_id, bool(self.token)), _transient_network():
            meta = get_hf_file_metadata(
                url, token=self.token, timeout=CONNECT_TIMEOUT, endpoint=endpoint
            )
        expected = (file.sha256 or file.blob_id or "").lower()
        if meta.etag and file.sha256 and meta.etag.lower() != expected:
            raise DownloadError(
                f"{file.filename} changed on the Hub since it was listed; refresh the list "
                "and download it again.",
                retryable=False,
            )
        if meta.size is not None and meta.size != file.size_bytes:
            # Same checksum, another size: the Hub contradicts itself; no retry can settle it.
            self.meter.add(-self._on_disk())
            self.partial.unlink(missing_ok=True)
            raise size_mismatch_error(file, f"{meta.size:,}")
        return str(meta.location or url)

    def _attempt(self, offset: int, hasher: _Hasher) -> int:
        """One HEAD + ranged GET; returns the new offset (may raise a retryable error)."""
        import httpx2
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        file, partial = self.file, self.partial
        endpoint = hub_endpoint()
        url = file_url(self.repo_id, file.filename, self.revision, endpoint)
        location = self._check_metadata(url, endpoint)
        same_origin = url_origin(location) == url_origin(endpoint)
        headers = build_hf_headers(token=self.token if same_origin else False)
        headers["Accept-Encoding"] = "identity"
        if offset:
            headers["Range"] = f"bytes={offset}-"
        timeout = httpx2.Timeout(self.options.read_timeout, connect=CONNECT_TIMEOUT)
        with contextlib.ExitStack() as stack:
            with hub_errors(self.repo_id, bool(self.token)), _transient_network():
                resp = stack.enter_context(
                    get_session().stream(
                        "GET", location, headers=headers, timeout=timeout, follow_redirects=True
                    )
                )
                if resp.status_code == 416 and offset:
                    # The range starts past the end: the file is shorter than the listing says.
                    total = content_range_total(resp.headers.get("Content-Range"))
                    raise SizeMismatch(f"{total:,}" if total is not None else "fewer")
                if resp.status_code >= 400:
                    resp.read()
                    hf_raise_for_status(resp)
            resumed = bool(offset) and resp.status_code == 206
            check_declared_size(file, resp.status_code, offset if resumed else 0, resp.headers)
            if offset and not resumed:
                # The server ignored Range: restart this file from zero.
                self.meter.add(-offset)
                offset = 0
                hasher.reset()
            elif resumed and not _range_starts_at(resp.headers.get("Content-Range"), offset):
                raise _Transient("the server resumed at the wrong position")
            too_long = False
            with _PartialFile(partial, "ab" if offset else "wb") as out:
                for piece in _pieces(resp):
                    room = file.size_bytes - offset
                    if len(piece) > room:
                        piece, too_long = piece[:room], True  # never write past the listed size
                    out.write(piece)
                    hasher.update(piece)
                    offset += len(piece)
                    self.meter.add(len(piece))
                    self.report(False)
                    if too_long or self.stop.is_set() or self.cancel.is_set():
                        break
        if too_long:
            raise SizeMismatch("more")
        check_stop(self.stop, self.cancel)
        if offset < file.size_bytes:
            if resumed:
                # A clean end short of the listed size, again: the file really ends here.
                raise SizeMismatch(f"{offset:,}")
            raise _Transient("the connection closed early")
        return offset
