"""Guardrails on real files: a type that would grow a quantized model is named as such, before
the conversion starts, in the preview, the pipeline's report and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmdesk.optimize import pipeline as opt


@pytest.fixture
def q4_model(tiny_model: Path, tmp_path: Path) -> Path:
    """The tiny model already quantized to Q4_K_M: the source a user re-quantizes by mistake."""
    return opt.quantize(tiny_model, tmp_path / "tiny-q4.gguf", "Q4_K_M")


def test_size_warning_words() -> None:
    from slmdesk.optimize.guardrails import size_warning

    assert size_warning("Q4_K_M", 1000, "Q8_0", 1150) == (
        "Q8_0 would make this model 15 % larger than its Q4_K_M source; "
        "re-quantizing an already-quantized model never improves quality."
    )
    assert "only 4 % smaller than its Q4_K_M source" in (
        size_warning("Q4_K_M", 1000, "Q4_K_S", 960) or ""
    )
    assert "about as large as its F16 source" in (size_warning("F16", 1000, "BF16", 1000) or "")
    assert size_warning("Q4_K_M", 1000, "Q3_K_M", 850) is None
    assert size_warning("F16", 1000, "Q8_0", 530) is None


def test_preview_names_the_types_that_grow_a_quantized_source(q4_model: Path) -> None:
    source_size = q4_model.stat().st_size
    preview = {o.name: o for o in opt.size_preview(q4_model, ["Q8_0", "Q4_K_M", "Q3_K_M"])}
    grown = preview["Q8_0"]
    assert grown.predicted_size_bytes > source_size
    percent = round(100 * (grown.predicted_size_bytes / source_size - 1))
    assert grown.size_warning == (
        f"Q8_0 would make this model {percent} % larger than its Q4_K_M source; "
        "re-quantizing an already-quantized model never improves quality."
    )
    assert "about as large as its Q4_K_M source" in preview["Q4_K_M"].size_warning
    assert preview["Q3_K_M"].size_warning == ""
    # the wizard's choice for this source: neither a remembered Q8_0 nor the usual Q4_K_M
    from slmdesk.optimize.guardrails import preselected_type

    options = list(preview.values())
    assert preselected_type(options, "Q8_0", "Q4_K_M") == "Q3_K_M"


def test_optimize_warns_before_converting_and_reports_the_sizes(q4_model: Path) -> None:
    events: list[str] = []
    result = opt.optimize(
        opt.OptimizeRequest(source=q4_model, quant="Q8_0", name="grown", evaluate=False),
        progress=lambda p: events.append(f"progress {p.stage}"),
        warn=lambda text: events.append(f"warn {text}"),
    )
    warned = [e for e in events if e.startswith("warn ")]
    assert len(warned) == 1 and "Q8_0 would make this model" in warned[0]
    assert "larger than its Q4_K_M source" in warned[0]
    assert events.index(warned[0]) < events.index("progress quantizing")  # before the work
    check = result.report["size_check"]
    assert check["source_size_bytes"] == q4_model.stat().st_size
    assert check["predicted_size_bytes"] > check["source_size_bytes"]
    assert check["change_percent"] > 0
    assert (
        abs(check["predicted_size_bytes"] - result.report["size_after"])
        < 0.02 * (result.report["size_after"])
    )
    assert result.warnings == [warned[0].removeprefix("warn ")]
    assert result.report["warnings"] == result.warnings


def test_a_pruned_result_is_timed_against_the_source_at_the_same_type(tiny_model: Path) -> None:
    steps: list[opt.Progress] = []
    result = opt.optimize(
        opt.OptimizeRequest(
            source=tiny_model, quant="Q8_0", prune_layers=[2], name="pruned", compare=False
        ),
        progress=steps.append,
    )
    speed = result.report["speed"]
    assert speed["baseline_type"] == "Q8_0"  # not the F16 source: the same type as the result
    assert speed["baseline"] == "the source at Q8_0"
    assert speed["tokens_per_second"] > 0 and speed["baseline_tokens_per_second"] > 0
    assert speed["ratio"] == pytest.approx(
        speed["tokens_per_second"] / speed["baseline_tokens_per_second"]
    )
    assert speed["summary"] == f"{speed['ratio']:.2f}× the speed of the source at Q8_0"
    assert "speed" in {p.stage for p in steps}
    # the old figure keeps its meaning: the result against the F16 reference, from the evaluation
    assert result.report["eval"]["tokens_per_second_reference"] > 0
    # the converted baseline was only for this comparison
    from slmdesk.common import paths

    assert not list(paths.cache_dir().glob("compare-*"))


def test_a_plain_conversion_is_timed_against_the_source_as_it_is(tiny_model: Path) -> None:
    result = opt.optimize(opt.OptimizeRequest(source=tiny_model, quant="Q8_0", name="plain"))
    speed = result.report["speed"]
    assert speed["baseline_type"] == "F16"
    assert speed["summary"].endswith("× the speed of the source at F16")


def test_recommended_plan_for_poor_results() -> None:
    from slmdesk.optimize.guardrails import recommended_plan

    pruned_worse = {
        "type": "Q4_K_M",
        "source_quantization": "F16",
        "removed_blocks": [3],
        "eval": {"kld_mean": 0.3},
        "comparison": {"type": "Q3_K_M", "better": "quantized"},
    }
    assert recommended_plan(pruned_worse).quant == "Q3_K_M"  # type: ignore[union-attr]
    pruned_heavy = {**pruned_worse, "comparison": None, "eval": {"kld_mean": 1.2}}
    rec = recommended_plan(pruned_heavy)
    assert rec is not None and rec.quant == "Q4_K_M" and "removing blocks" in rec.reason
    assert rec.label == "Build Q4_K_M without pruning instead"
    plain_heavy = {**pruned_heavy, "removed_blocks": [], "type": "Q2_K"}
    assert recommended_plan(plain_heavy).quant == "Q4_K_M"  # type: ignore[union-attr]
    # nothing better that is still smaller than a Q4_K_M source
    assert recommended_plan({**plain_heavy, "source_quantization": "Q4_K_M"}) is None
    assert recommended_plan({**pruned_worse, "comparison": None}) is None  # a fair result
