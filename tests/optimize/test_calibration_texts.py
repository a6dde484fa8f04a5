"""The built-in calibration set: several kinds of text, and nothing shared with the held-out text
the quality report is measured on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slmdesk.common.errors import SlmdeskError
from slmdesk.optimize.calibration import (
    PLAN_TEXT_CHARS,
    builtin_chunks,
    calibration_chunks,
    calibration_text,
    plan_text,
)
from slmdesk.optimize.evaluate import default_text

SPAN = 8


def _word_runs(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + SPAN]) for i in range(len(words) - SPAN + 1)}


def test_calibration_and_evaluation_share_no_eight_word_sequence() -> None:
    heldout = _word_runs(default_text())
    for chunk in builtin_chunks():
        shared = _word_runs(chunk) & heldout
        assert not shared, sorted(" ".join(run) for run in shared)[:5]


def test_the_set_covers_several_kinds_of_text() -> None:
    chunks = builtin_chunks()
    assert len(chunks) >= 5
    joined = "\n".join(chunks)
    assert '"' in joined and "?" in joined  # dialogue
    assert re.search(r"^- ", joined, re.M) and re.search(r"^\d+\. ", joined, re.M)  # lists
    assert "def " in joined and "SELECT " in joined  # code
    assert all(len(chunk) > 1000 for chunk in chunks)
    assert calibration_text() == "\n\n".join(chunks)


def test_a_users_file_replaces_the_set(tmp_path: Path) -> None:
    mine = tmp_path / "mine.txt"
    mine.write_text("my own words " * 50, encoding="utf-8")
    assert calibration_chunks(mine) == [mine.read_text(encoding="utf-8")]
    mine.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SlmdeskError, match="not UTF-8"):
        calibration_chunks(mine)


def test_the_plan_reads_the_start_of_every_chunk_within_its_budget(tmp_path: Path) -> None:
    text = plan_text()
    assert len(text) <= PLAN_TEXT_CHARS + 2 * len(builtin_chunks())  # the joins
    assert len(text) > PLAN_TEXT_CHARS * 0.7
    for chunk in builtin_chunks():
        assert chunk.strip()[:300] in text  # the start of every kind of text is in it
    assert "def " in text and "?" in text
    mine = tmp_path / "mine.txt"
    mine.write_text("One short line.", encoding="utf-8")
    assert plan_text(mine) == "One short line."  # a short file is read whole
    mine.write_text("A sentence that goes on. " * 1000, encoding="utf-8")
    long = plan_text(mine)
    assert len(long) <= PLAN_TEXT_CHARS and long.endswith("goes on.")
