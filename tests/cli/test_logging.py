"""slmdesk's log handlers on a disk that refuses every write: quiet, and the crash report survives."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmdesk.common import logs


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    """Let a test configure slmdesk's logging, then put everything back as it was."""
    logger = logging.getLogger("slmdesk")
    handlers, level = list(logger.handlers), logger.level
    saved = (logs._configured, logs._file_handler)
    yield
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level)
    logs._configured, logs._file_handler = saved


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_log_on_a_full_disk_is_quiet(
    slmdesk_home: Path, fresh_logging: None, capfd: pytest.CaptureFixture[str]
) -> None:
    (slmdesk_home / "logs").mkdir()
    (slmdesk_home / "logs" / logs.LOG_NAME).symlink_to("/dev/full")  # every write: ENOSPC
    assert logs.setup_logging() == slmdesk_home / "logs" / logs.LOG_NAME
    logging.getLogger("slmdesk.test").warning("a line that cannot be written")
    try:
        raise RuntimeError("a bug")
    except RuntimeError as exc:
        report = logs.save_crash_report(exc, "unexpected error in a test")
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert report is not None and report.parent != slmdesk_home / "logs"
    try:
        text = report.read_text(encoding="utf-8")
        assert "unexpected error in a test" in text and "RuntimeError: a bug" in text
    finally:
        report.unlink()


def test_an_unusable_log_folder_sends_nothing_to_the_terminal(
    slmdesk_home: Path, fresh_logging: None, capfd: pytest.CaptureFixture[str]
) -> None:
    (slmdesk_home / "logs").write_text("a file where the logs folder should be")
    assert logs.setup_logging() is None
    logging.getLogger("slmdesk.test").error("nowhere to go")
    assert capfd.readouterr().err == ""


def test_the_crash_report_goes_to_the_log_file(slmdesk_home: Path, fresh_logging: None) -> None:
    log_file = logs.setup_logging()
    try:
        {}["missing"]
    except KeyError as exc:
        assert logs.save_crash_report(exc) == log_file
    assert log_file is not None
    assert "KeyError: 'missing'" in log_file.read_text(encoding="utf-8")


def test_a_native_crash_leaves_its_trace_in_the_log_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    home = tmp_path / "home"
    code = (
        "import faulthandler\n"
        "from slmdesk.common.logs import setup_logging\n"
        "setup_logging()\n"
        "faulthandler._sigsegv()\n"
    )
    env = {**os.environ, "SLMDESK_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode < 0
    trace = (home / "logs" / "native-crash.log").read_text(encoding="utf-8")
    assert "Segmentation fault" in trace and "<module>" in trace
