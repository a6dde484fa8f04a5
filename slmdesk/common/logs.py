"""Logging to a rotating file in the logs folder (and to stderr when asked)."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from slmdesk.common import paths

_configured: Path | None = None


def setup_logging(verbose: bool = False) -> Path:
    """Send slmdesk's log records to ``logs/slmdesk.log``; returns that file's path.

    Safe to call more than once. Never fails: if the log folder cannot be written, logging goes
    to stderr only.
    """
    global _configured
    log_file = paths.logs_dir() / "slmdesk.log"
    if _configured == log_file:
        return log_file
    logger = logging.getLogger("slmdesk")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    for old in list(logger.handlers):
        if getattr(old, "_slmdesk", False):
            logger.removeHandler(old)
            old.close()
    try:
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
    except OSError:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._slmdesk = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    if verbose:
        stream = logging.StreamHandler()
        stream._slmdesk = True  # type: ignore[attr-defined]
        logger.addHandler(stream)
    _configured = log_file
    return log_file
