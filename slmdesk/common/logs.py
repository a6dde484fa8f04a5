"""Logging to a rotating file in the logs folder (and to stderr when asked).

Logging must never be the reason a command fails or prints noise: on a full disk or in a
read-only data folder the standard handlers print a ``--- Logging error ---`` traceback to stderr
for every record. slmdesk's handlers drop a record they cannot write instead, and when the log
file cannot even be opened records are discarded (never sent to the user's terminal).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import tempfile
import traceback
from pathlib import Path
from typing import Any

from slmdesk.common import paths

LOG_NAME = "slmdesk.log"
CRASH_LOG_NAME = "native-crash.log"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_configured: tuple[Path | None, bool] | None = None
_file_handler: QuietRotatingFileHandler | None = None
_crash_file: Any = None


class QuietRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file that silently drops a record it cannot write (full disk, I/O error)."""

    def __init__(self, filename: Path, **kwargs: Any) -> None:
        super().__init__(filename, **kwargs)
        self.dropped = 0  # records that could not be written

    def handleError(self, record: logging.LogRecord) -> None:
        """Drop the record: a log line is never worth a traceback on the user's terminal."""
        self.dropped += 1

    def close(self) -> None:
        """Close even when the last lines cannot be flushed (they are lost, as on any write)."""
        try:
            super().close()
        except OSError:
            pass


class QuietStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stderr handler (``verbose``) that drops a record it cannot write (closed pipe)."""

    def handleError(self, record: logging.LogRecord) -> None:
        """Drop the record."""


def _open_log_file() -> QuietRotatingFileHandler | None:
    """The file handler, or None when the log file cannot be opened."""
    try:
        return QuietRotatingFileHandler(
            paths.logs_dir() / LOG_NAME, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
    except OSError:  # includes paths.DataFolderError: a read-only or unusable data folder
        return None


def setup_logging(verbose: bool = False) -> Path | None:
    """Send slmdesk's log records to ``logs/slmdesk.log``; returns that file's path.

    Safe to call more than once. Never fails and never prints: if the log folder cannot be
    written, records are dropped (or go to stderr only when ``verbose``) and None is returned.
    """
    global _configured, _file_handler
    home = paths.home_override()
    if _configured == (home, verbose):
        return _current_log_file()
    logger = logging.getLogger("slmdesk")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    for old in list(logger.handlers):
        if getattr(old, "_slmdesk", False):
            logger.removeHandler(old)
            old.close()
    _file_handler = _open_log_file()
    handler: logging.Handler = _file_handler or logging.NullHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler._slmdesk = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    if verbose:
        stream = QuietStreamHandler()
        stream.setFormatter(logging.Formatter(_FORMAT))
        stream._slmdesk = True  # type: ignore[attr-defined]
        logger.addHandler(stream)
    _enable_native_crash_traces()
    _configured = (home, verbose)
    return _current_log_file()


def _enable_native_crash_traces() -> None:
    """Write the Python stack of every thread to ``logs/native-crash.log`` on a native crash.

    A fatal signal in llama.cpp or Qt (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL) ends the process
    before any Python handler runs; faulthandler still writes which code was running, so a
    crash report says more than "the window vanished".
    """
    global _crash_file
    import faulthandler

    try:
        handle = open(paths.logs_dir() / CRASH_LOG_NAME, "a", encoding="utf-8")  # noqa: SIM115
    except OSError:
        return
    faulthandler.enable(file=handle, all_threads=True)
    if _crash_file is not None:
        with contextlib.suppress(OSError):
            _crash_file.close()
    _crash_file = handle  # kept open: faulthandler writes to its file descriptor


def _current_log_file() -> Path | None:
    return Path(_file_handler.baseFilename) if _file_handler is not None else None


def save_crash_report(exc: BaseException, message: str = "unexpected error") -> Path | None:
    """Keep the traceback of an unexpected error where the user can find it; returns the file.

    It goes to the log file when there is one. Otherwise (a read-only or full data folder) it is
    written to a new private file in the system's temporary folder, so a bug report can still
    include it. Returns None when nothing could be written.
    """
    handler = _file_handler
    if handler is not None:
        dropped = handler.dropped
        handler.handle(_crash_record(exc, message))
        if handler.dropped == dropped:
            return Path(handler.baseFilename)
    text = message + "\n" + "".join(traceback.format_exception(exc))
    try:
        fd, name = tempfile.mkstemp(prefix="slmdesk-error-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError:
        return None
    return Path(name)


def _crash_record(exc: BaseException, message: str) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__)
    return logging.getLogger("slmdesk").makeRecord(
        "slmdesk", logging.ERROR, __file__, 0, "%s", (message,), exc_info
    )
