"""Fixtures for the optimize tests: a short calibration text and a quantized tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

SHORT_TEXT = (
    "the sun was out and the wind was up, so they all went to the sea. "
    "she said that it was one of the best days of the year, and he did not say no. "
    "when the rain came they ran back up the hill to the house, where the fire was on. "
) * 3


@pytest.fixture
def short_text_file(tmp_path: Path) -> Path:
    """A calibration text long enough for a few hundred tiny-model tokens."""
    path = tmp_path / "calib.txt"
    path.write_text(SHORT_TEXT, encoding="utf-8")
    return path


@pytest.fixture
def short_text() -> str:
    """The short calibration text itself."""
    return SHORT_TEXT
