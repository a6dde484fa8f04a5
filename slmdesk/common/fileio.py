"""Crash-safe file writes: write a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old or the new file, never half.

    Secrets are written with `slmdesk.common.private_file` instead (owner-only from the start).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    replace_from_temp(fd, Path(tmp_name), path, data)


def replace_from_temp(fd: int, tmp: Path, path: Path, data: bytes) -> None:
    """Write ``data`` into the new temporary file ``tmp`` (open as ``fd``), fsync, rename it
    over ``path``. On any failure ``tmp`` is removed and ``path`` is left as it was."""
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def json_text(value: Any) -> str:
    """``value`` as the pretty JSON every slmdesk file uses (sorted keys, a final newline)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write_json(path: Path, value: Any) -> None:
    """Write ``value`` as pretty JSON with `atomic_write_bytes`."""
    atomic_write_bytes(path, json_text(value).encode("utf-8"))


def read_json(path: Path, default: Any) -> Any:
    """Read JSON from ``path``; a missing or unreadable file gives ``default``."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default
