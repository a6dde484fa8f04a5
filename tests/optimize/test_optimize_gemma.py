"""Integration: pruning and evaluating the real Gemma 3 270M model."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmdesk.llama.scoring import ModelRunner
from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.optimize import pipeline as opt
from slmdesk.optimize.evaluate import default_text, evaluate
from slmdesk.optimize.prune import swa_layers

pytestmark = pytest.mark.integration


def test_gemma3_prune_one_block_keeps_attention_types_and_generates(
    gemma_model: Path, tmp_path: Path
) -> None:
    source = read_gguf_info(gemma_model)
    original = swa_layers(source)
    assert original is not None and original[5] is False and original[4] is True
    out = opt.quantize(gemma_model, tmp_path / "pruned.gguf", "Q4_K_M", [3])
    info = read_gguf_info(out)
    assert info.block_count == 17
    pattern = info.metadata["gemma3.attention.sliding_window_pattern"]
    # block 5 (global) is now block 4 and must stay global
    assert [bool(v) for v in pattern] == [v for i, v in enumerate(original) if i != 3]
    assert pattern[4] is False or pattern[4] == 0
    with ModelRunner(out, 128) as runner:
        tokens = runner.tokenize("The capital of France is")
        assert runner.decode_speed(tokens, 8) > 0


def test_gemma3_eval_figures_are_sane(gemma_model: Path) -> None:
    reference = opt.make_reference(gemma_model)
    report = evaluate(gemma_model, reference, default_text())
    assert report.n_ctx > 512  # longer than the sliding window
    assert 0 < report.kld_mean < 0.1
    assert report.kld_p99 > report.kld_mean
    assert 0.85 < report.top1_agreement <= 1
    assert 2 < report.ppl < 100 and 2 < report.ppl_reference < 100
    assert report.tokens_per_second and report.tokens_per_second > 0  # any speed: CPUs differ
