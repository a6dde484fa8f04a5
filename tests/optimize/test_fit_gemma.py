"""Integration: make it fit on the real Gemma 3 270M model, kept short (two candidates)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.optimize.fit.run import FitRequest, make_it_fit
from slmdesk.optimize.fit.target import make_target

# The reference, the importance matrix and one build take minutes on a loaded 2-core machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]


def test_gemma3_fit_size_builds_the_embedding_choice_that_fits(gemma_model: Path) -> None:
    """Gemma's 640-wide embedding holds most of its bytes: at IQ4_XS with the importance matrix,
    only a 32-block embedding type below Q8_0 gets under 200 MB."""
    info = read_gguf_info(gemma_model)
    target = make_target(info, fit_size="200MB")
    result = make_it_fit(
        FitRequest(
            gemma_model,
            target,
            types=["IQ4_XS"],
            embeddings=[None, "Q5_0"],
            max_builds=2,
        )
    )
    assert result.winner is not None and result.path is not None
    winner = result.winner
    assert winner.candidate.type == "IQ4_XS" and winner.candidate.imatrix
    assert winner.candidate.embedding_type == "Q5_0"
    assert winner.size_bytes is not None and winner.size_bytes <= 200_000_000
    assert 0 < (winner.kld_mean or 0) < 0.5  # any sane figure: the benchmark keeps the real one
    assert result.path.exists() and not list(result.path.parent.glob(".*optimizing*"))
    too_big = [o for o in result.outcomes if not o.built and "above the" in o.reason]
    assert too_big, "the Q8_0-embedding candidates are predicted above 200 MB and skipped"
    assert "IQ4_XS with importance matrix, embedding Q5_0" in result.reason
    assert os.environ["SLMDESK_HOME"] in str(result.path)
