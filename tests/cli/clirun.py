"""Helpers for CLI tests: run the real ``python -m slmdesk`` and judge what the user sees."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from collections.abc import Mapping

# "A few hundred characters": what one error line may be at most.
MAX_ERROR_LINE = 400


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    prefix: list[str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m slmdesk ARGS`` (with an optional command prefix such as setpriv)."""
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "slmdesk", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ if env is None else env),
    )


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (line breaks included)."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def assert_clean_failure(
    out: subprocess.CompletedProcess[str], *words: str, after_progress: bool = False
) -> str:
    """Exit 1 and exactly one short, printable ``error: ...`` line; returns that line.

    With ``after_progress``, progress lines the command printed before failing are allowed.
    """
    assert out.returncode == 1, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.splitlines()
    if after_progress:
        assert sum(line.startswith("error") for line in lines) == 1, out.stderr[-3000:]
        lines = lines[-1:]
    assert len(lines) == 1, out.stderr[-3000:]
    line = lines[0]
    assert line.startswith("error: "), line
    assert len(line) <= MAX_ERROR_LINE, len(line)
    assert not has_control(line), repr(line)
    assert "unexpected problem" not in line and "internal error" not in line, line
    for word in words:
        assert word in line, (word, line)
    return line


def assert_no_noise(out: subprocess.CompletedProcess[str]) -> None:
    """No traceback and no logging-module error report in what the user sees."""
    for stream in (out.stdout, out.stderr):
        assert "Traceback" not in stream, stream[-3000:]
        assert "Logging error" not in stream, stream[-3000:]
