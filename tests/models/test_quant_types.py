"""The one table of quantization types: its quality order agrees with its own figures."""

from __future__ import annotations

import pytest

from slmdesk.common.errors import SlmdeskError
from slmdesk.models.quant_types import (
    OFFERED_TYPES,
    QUANT_TYPES,
    is_full_precision,
    quality_rank,
    quant_type,
)


def test_quality_order_follows_the_published_perplexity_figures() -> None:
    measured = [
        q
        for q in QUANT_TYPES.values()
        if q.ppl_increase is not None and q.name not in {"F16", "BF16"}
    ]
    by_rank = sorted(measured, key=lambda q: quality_rank(q.name), reverse=True)
    by_ppl = sorted(measured, key=lambda q: q.ppl_increase or 0.0)
    assert [q.name for q in by_rank] == [q.name for q in by_ppl]


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        ("Q4_K_M", "Q4_1"),
        ("Q5_K_M", "Q5_1"),
        ("Q4_K_L", "Q4_K_M"),  # an uploader's variant sits just above its base type...
        ("Q5_0", "Q4_K_L"),  # ...and below the next better one
        ("Q4_K", "Q4_K_S"),  # llama-quantize's alias for Q4_K_M
        ("q8_0", "Q6_K"),
    ],
)
def test_quality_rank_orders_file_names(better: str, worse: str) -> None:
    assert quality_rank(better) > quality_rank(worse) > 0


def test_unknown_and_full_precision_names() -> None:
    assert quality_rank("Q9_Z") == 0 and quality_rank(None) == 0
    assert is_full_precision("fp16") and is_full_precision("BF16")
    assert not is_full_precision("Q8_0") and not is_full_precision(None)


def test_types_slmdesk_only_runs_are_not_offered() -> None:
    assert "MXFP4" not in OFFERED_TYPES and "TQ1_0" not in OFFERED_TYPES
    with pytest.raises(SlmdeskError, match="cannot make them"):
        quant_type("TQ2_0")
    assert quant_type("q4_k").name == "Q4_K_M"
